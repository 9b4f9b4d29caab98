import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CniError } from "../../lib/api/cni-protocol.js";
import type { EndpointManager } from "../endpoints/manager.js";
import { type AgentPhase, cniHandlers, cniServed } from "./handlers.js";

describe("CNI commands by agent phase", () => {
  it("serves DEL once the endpoints are restored, everything else only when ready, nothing while stopping", () => {
    for (const command of ["add", "check", "gc"] as const) {
      assert.equal(cniServed(command, "starting", true), false, command);
      assert.equal(cniServed(command, "ready", true), true, command);
    }
    assert.equal(cniServed("del", "starting", true), true);
    assert.equal(cniServed("del", "starting", false), false, "DEL before the restore");
    for (const command of ["add", "del", "check", "gc"] as const)
      assert.equal(cniServed(command, "stopping", true), false, command);
  });

  it("answers STATUS and refused commands with try-again-later (11)", async () => {
    let phase: AgentPhase = "starting";
    const deleted: string[] = [];
    const endpoints = {
      podCidr: "10.244.1.0/24",
      del: async (request: { containerId: string }) => {
        deleted.push(request.containerId);
      },
    } as unknown as EndpointManager;
    const handlers = cniHandlers({ phase: () => phase, endpoints: () => endpoints });
    const request = { containerId: "c1", config: {} } as Parameters<typeof handlers.add>[0];
    assert.throws(
      () => handlers.status(),
      (error: unknown) => error instanceof CniError && error.code === 11,
    );
    await assert.rejects(
      async () => handlers.add(request),
      (error: unknown) => error instanceof CniError && error.code === 11,
    );
    await handlers.del(request);
    assert.deepEqual(deleted, ["c1"]);
    phase = "ready";
    handlers.status();
    phase = "stopping";
    await assert.rejects(async () => handlers.del(request), CniError);
  });
});
