// Hubble's protos come from the pinned Cilium module, at the version the interop tests pin.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import {
  CILIUM_MODULE_VERSION,
  goModuleCache,
  HubbleProtoError,
  hubbleProtoRoot,
  loadHubbleApi,
} from "./proto.js";

describe("Hubble protos", () => {
  it("the version is the interop wrapper module's pin", () => {
    const goMod = readFileSync(new URL("../../../test/interop/cilium-v1.18/go.mod", import.meta.url), "utf8");
    assert.match(
      goMod,
      new RegExp(`github.com/cilium/cilium ${CILIUM_MODULE_VERSION.replaceAll(".", "\\.")}\\b`),
    );
  });

  it("finds the module cache like `go env GOMODCACHE`", () => {
    assert.equal(goModuleCache({ GOMODCACHE: "/x" }), "/x");
    assert.equal(goModuleCache({ GOPATH: "/g:/h" }), "/g/pkg/mod");
    assert.equal(goModuleCache({ HOME: "/home/u" }), "/home/u/go/pkg/mod");
    assert.equal(
      hubbleProtoRoot({ GOMODCACHE: "/x" }),
      `/x/github.com/cilium/cilium@${CILIUM_MODULE_VERSION}/api/v1`,
    );
  });

  it("a missing module says how to fetch it", () => {
    assert.throws(
      () => loadHubbleApi("/nonexistent/api/v1"),
      (error: unknown) => error instanceof HubbleProtoError && /go mod download/.test(error.message),
    );
  });

  it("loads observer.Observer with GetFlows, ServerStatus and GetNodes", () => {
    const api = loadHubbleApi();
    for (const method of ["GetFlows", "ServerStatus", "GetNodes"])
      assert.ok(api.observerService[method], method);
    assert.equal(api.observerService.GetFlows.responseStream, true);
  });
});
