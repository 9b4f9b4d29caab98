import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Json, jsonMergePatch, jsonPatch, PatchError, strategicMergePatch } from "./patch.js";

describe("JSON merge patch", () => {
  it("merges objects, deletes nulls, replaces lists", () => {
    const out = jsonMergePatch({ a: 1, b: { c: 2, d: 3 }, l: [1, 2] }, { b: { c: null, e: 4 }, l: [3] });
    assert.deepEqual(out, { a: 1, b: { d: 3, e: 4 }, l: [3] });
  });
});

describe("JSON patch", () => {
  const doc: Json = { metadata: { labels: { a: "1" } }, spec: { replicas: 1, items: ["x", "y"] } };

  it("applies add/replace/remove/move/copy/test", () => {
    const out = jsonPatch(doc, [
      { op: "add", path: "/metadata/labels/b~1c", value: "2" },
      { op: "replace", path: "/spec/replicas", value: 3 },
      { op: "add", path: "/spec/items/-", value: "z" },
      { op: "remove", path: "/spec/items/0" },
      { op: "copy", from: "/spec/replicas", path: "/spec/copy" },
      { op: "move", from: "/spec/copy", path: "/spec/moved" },
      { op: "test", path: "/spec/moved", value: 3 },
    ]);
    assert.deepEqual(out, {
      metadata: { labels: { a: "1", "b/c": "2" } },
      spec: { replicas: 3, items: ["y", "z"], moved: 3 },
    });
    assert.deepEqual(doc, { metadata: { labels: { a: "1" } }, spec: { replicas: 1, items: ["x", "y"] } });
  });

  it("fails on missing paths, failed tests and non-arrays", () => {
    assert.throws(() => jsonPatch(doc, [{ op: "remove", path: "/nope" }]), PatchError);
    assert.throws(() => jsonPatch(doc, [{ op: "test", path: "/spec/replicas", value: 2 }]), PatchError);
    assert.throws(() => jsonPatch(doc, { op: "add" }), PatchError);
  });
});

describe("strategic merge patch", () => {
  const deployment: Json = {
    metadata: { finalizers: ["a"] },
    spec: {
      template: {
        spec: {
          containers: [
            { name: "web", image: "v1", ports: [{ containerPort: 80 }], env: [{ name: "A", value: "1" }] },
            { name: "side", image: "s1" },
          ],
        },
      },
    },
  };

  it("merges containers by name and env by name", () => {
    const out = strategicMergePatch(deployment, {
      spec: {
        template: { spec: { containers: [{ name: "web", image: "v2", env: [{ name: "B", value: "2" }] }] } },
      },
    }) as {
      spec: { template: { spec: { containers: { name: string; image: string; env?: unknown[] }[] } } };
    };
    const containers = out.spec.template.spec.containers;
    assert.equal(containers.length, 2);
    assert.equal(containers[0].image, "v2");
    assert.deepEqual(containers[0].env, [
      { name: "A", value: "1" },
      { name: "B", value: "2" },
    ]);
  });

  it("honours $patch: delete, $setElementOrder and $deleteFromPrimitiveList", () => {
    const out = strategicMergePatch(deployment, {
      metadata: { "$deleteFromPrimitiveList/finalizers": ["a"] },
      spec: {
        template: {
          spec: {
            "$setElementOrder/containers": [{ name: "side" }, { name: "web" }],
            containers: [
              { name: "web", $patch: "delete" },
              { name: "side", image: "s2" },
            ],
          },
        },
      },
    });
    assert.deepEqual(out, {
      metadata: { finalizers: [] },
      spec: { template: { spec: { containers: [{ name: "side", image: "s2" }] } } },
    });
  });

  it("unions finalizers and merges service ports by port", () => {
    const out = strategicMergePatch(
      { metadata: { finalizers: ["a"] }, spec: { ports: [{ port: 80, name: "http" }] } },
      { metadata: { finalizers: ["b"] }, spec: { ports: [{ port: 443, name: "https" }] } },
    );
    assert.deepEqual(out, {
      metadata: { finalizers: ["a", "b"] },
      spec: {
        ports: [
          { port: 80, name: "http" },
          { port: 443, name: "https" },
        ],
      },
    });
  });

  it("rejects unknown directives", () => {
    assert.throws(() => strategicMergePatch({}, { $bogus: 1 }), PatchError);
  });
});
