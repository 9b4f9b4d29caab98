import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseTokenFile } from "./auth.js";

describe("token file", () => {
  it("parses token,user,uid and quoted groups", () => {
    const tokens = parseTokenFile('# comment\nabc,alice,1,"system:masters,devs"\nxyz,bob,2\n');
    assert.deepEqual(tokens.get("abc"), { name: "alice", uid: "1", groups: ["system:masters", "devs"] });
    assert.deepEqual(tokens.get("xyz"), { name: "bob", uid: "2", groups: [] });
  });

  it("rejects short lines", () => {
    assert.throws(() => parseTokenFile("onlytoken\n"), /line 1/);
  });
});
