import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RemoteClusterStatus } from "../api/agent-status.js";
import { summarizeConnectivity } from "./status.js";

const remote = (name: string, extra: Partial<RemoteClusterStatus> = {}): RemoteClusterStatus => ({
  name,
  connected: true,
  ready: true,
  status: "connected",
  config: { required: true, retrieved: true, clusterId: 2, syncedCanaries: true },
  synced: { nodes: true, services: true, identities: true, endpoints: true },
  numNodes: 2,
  numSharedServices: 1,
  numIdentities: 3,
  numEndpoints: 4,
  numFailures: 0,
  rejectedTotal: {},
  rejectedNow: {},
  ignoredNow: {},
  ...extra,
});

describe("clustermesh status summary", () => {
  it("counts nodes connected to every cluster, with min/avg/max", () => {
    const summary = summarizeConnectivity(
      ["c2", "c3"],
      [
        { node: "n1", remoteClusters: [remote("c2"), remote("c3")] },
        {
          node: "n2",
          remoteClusters: [
            remote("c2"),
            remote("c3", {
              ready: false,
              synced: { nodes: true, services: false, identities: true, endpoints: false },
            }),
          ],
        },
      ],
      (node) => `meshctl agent status --name l2 --node ${node}`,
    );
    assert.equal(summary.fullyConnected, 1);
    assert.deepEqual(summary.connected, { min: 1, avg: 1.5, max: 2 });
    assert.deepEqual(summary.clusters.c3, { configured: 2, connected: 1 });
    assert.deepEqual(summary.errors, [
      {
        node: "n2",
        cluster: "c3",
        message: "synchronization in progress for services, endpoints",
        hint: "meshctl agent status --name l2 --node n2",
      },
    ]);
  });

  it("explains disconnected nodes and unreachable agents", () => {
    const summary = summarizeConnectivity(
      ["c2"],
      [
        {
          node: "n1",
          remoteClusters: [
            remote("c2", { connected: false, ready: false, lastFailure: "connection refused" }),
          ],
        },
        { node: "n2", error: "ECONNREFUSED" },
        { node: "n3", remoteClusters: [] },
      ],
    );
    assert.equal(summary.fullyConnected, 0);
    assert.match(summary.errors[0].message, /not connected: connection refused/);
    assert.match(summary.errors[1].message, /agent status unavailable: ECONNREFUSED/);
    assert.match(summary.errors[2].message, /not configured/);
  });
});
