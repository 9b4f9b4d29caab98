import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseApiPath } from "./paths.js";

describe("API paths", () => {
  it("parses namespaced, cluster-scoped and subresource paths", () => {
    assert.deepEqual(parseApiPath("/api/v1/namespaces/default/pods/p1/status"), {
      kind: "resource",
      path: {
        group: "",
        version: "v1",
        namespace: "default",
        resource: "pods",
        name: "p1",
        subresource: "status",
      },
    });
    assert.deepEqual(parseApiPath("/apis/apps/v1/namespaces/ns/deployments"), {
      kind: "resource",
      path: {
        group: "apps",
        version: "v1",
        namespace: "ns",
        resource: "deployments",
        name: undefined,
        subresource: undefined,
      },
    });
    assert.deepEqual(parseApiPath("/api/v1/namespaces/kube-system"), {
      kind: "resource",
      path: { group: "", version: "v1", resource: "namespaces", name: "kube-system", subresource: undefined },
    });
    assert.deepEqual(parseApiPath("/api/v1/namespaces/ns1/status"), {
      kind: "resource",
      path: { group: "", version: "v1", resource: "namespaces", name: "ns1", subresource: "status" },
    });
    assert.deepEqual(parseApiPath("/api/v1/pods"), {
      kind: "resource",
      path: { group: "", version: "v1", resource: "pods", name: undefined, subresource: undefined },
    });
  });

  it("recognises discovery paths", () => {
    assert.deepEqual(parseApiPath("/api"), { kind: "root", legacy: true });
    assert.deepEqual(parseApiPath("/apis"), { kind: "root", legacy: false });
    assert.deepEqual(parseApiPath("/apis/apps"), { kind: "group", group: "apps" });
    assert.deepEqual(parseApiPath("/apis/apps/v1"), { kind: "groupVersion", group: "apps", version: "v1" });
    assert.deepEqual(parseApiPath("/healthz"), { kind: "unknown" });
  });
});
