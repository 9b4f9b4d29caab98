// The TypeScript layouts must match the compiled C structs byte for byte (sizes and offsets from BTF).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Btf } from "../libbpf-ts/index.js";
import { backendCodec, ctKeyCodec, ipcacheKeyCodec, serviceKeyCodec } from "./codecs.js";
import { STRUCT_LAYOUTS } from "./layout.js";
import { DEFAULT_OBJECT_DIR } from "./loader.js";

// every struct is used by from_pod or sock_lb; checking two objects also catches per-object drift.
// The policy structs exist only in the objects that enforce policy (dp_policy.h).
const OBJECTS = ["from_pod.bpf.o", "sock_lb.bpf.o"];
const POLICY_ONLY = new Set(["policy_key", "policy_entry", "policy_drop_key", "policy_ct_entry"]);

describe("C struct layouts vs TypeScript codecs", () => {
  for (const object of OBJECTS) {
    const path = join(DEFAULT_OBJECT_DIR, object);
    it(`${object}: every struct's size and member offsets match layout.ts`, () => {
      assert.ok(existsSync(path), `${path} missing: run make -C bpf`);
      const btf = Btf.parse(path);
      try {
        for (const [name, spec] of Object.entries(STRUCT_LAYOUTS)) {
          if (object === "sock_lb.bpf.o" && POLICY_ONLY.has(name)) continue;
          const actual = btf.structLayout(name);
          assert.equal(actual.size, spec.size, `sizeof(struct ${name})`);
          assert.deepEqual(
            Object.fromEntries(actual.members),
            spec.members,
            `member offsets of struct ${name}`,
          );
        }
      } finally {
        btf.close();
      }
    });
  }

  it("codec sizes are the struct sizes", () => {
    assert.equal(serviceKeyCodec.size, STRUCT_LAYOUTS.lb_service_key.size);
    assert.equal(backendCodec.size, STRUCT_LAYOUTS.lb_backend.size);
    assert.equal(ctKeyCodec.size, STRUCT_LAYOUTS.ct_key.size);
    assert.equal(ipcacheKeyCodec.size, STRUCT_LAYOUTS.ipcache_key.size);
  });
});
