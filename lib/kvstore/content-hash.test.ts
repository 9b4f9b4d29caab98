import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { contentHash } from "./content-hash.js";

describe("contentHash", () => {
  it("is the same for the same bytes and differs for every small change", () => {
    const value = Buffer.from('{"IP":"10.2.0.7","Mask":null,"HostIP":"172.18.0.5","ID":131080,"Key":0}');
    assert.equal(contentHash(value), contentHash(Buffer.from(value)));
    const seen = new Set([contentHash(value)]);
    // every one-byte change and every truncation of the value gets a fingerprint of its own
    for (let i = 0; i < value.length; i++) {
      const changed = Buffer.from(value);
      changed[i] ^= 1;
      seen.add(contentHash(changed));
      seen.add(contentHash(value.subarray(0, i)));
    }
    assert.equal(seen.size, 1 + 2 * value.length);
    // swapped bytes (same multiset) differ too
    assert.notEqual(contentHash(Buffer.from("ab")), contentHash(Buffer.from("ba")));
    assert.ok(Number.isSafeInteger(contentHash(value)));
  });
});
