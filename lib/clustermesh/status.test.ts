import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RemoteClusterStatus, RemoteDatapathStatus } from "../api/agent-status.js";
import { summarizeConnectivity } from "./status.js";

const counts = { nodes: 2, ipcache: 6, identities: 2, services: 1, backends: 2 };
const inSyncDatapath: RemoteDatapathStatus = {
  published: counts,
  programmed: counts,
  drift: { missing: 0, extra: 0, different: 0, sample: [] },
  lastAppliedAt: "2026-12-05T08:00:00.000Z",
};

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
  datapath: inSyncDatapath,
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

  it("lists every node/remote pair whose BPF maps drift, and unowned remote entries", () => {
    const missing = { kind: "ipcache" as const, entry: "10.2.1.7/32", problem: "missing" as const };
    const drifting: RemoteDatapathStatus = {
      ...inSyncDatapath,
      programmed: { ...counts, ipcache: 5 },
      drift: { missing: 1, extra: 0, different: 0, sample: [missing] },
    };
    const unownedEntry = { kind: "ipcache" as const, entry: "10.9.0.1/32", problem: "extra" as const };
    const summary = summarizeConnectivity(
      ["c2"],
      [
        { node: "n1", remoteClusters: [remote("c2")] },
        { node: "n2", remoteClusters: [remote("c2", { datapath: drifting })] },
        { node: "n3", remoteClusters: [remote("c2")], unowned: { count: 1, sample: [unownedEntry] } },
      ],
    );
    assert.equal(summary.fullyConnected, 3, "the sessions are up everywhere: drift is reported apart");
    assert.equal(summary.datapath.length, 3);
    assert.deepEqual(summary.drift, [
      { node: "n2", cluster: "c2", missing: 1, extra: 0, different: 0, sample: [missing] },
      { node: "n3", missing: 0, extra: 1, different: 0, sample: [unownedEntry] },
    ]);
  });

  it("a connected remote without a report of the BPF maps is an error, not a pass", () => {
    const summary = summarizeConnectivity(
      ["c2"],
      [{ node: "n1", remoteClusters: [remote("c2", { datapath: undefined })] }],
    );
    assert.match(summary.errors[0].message, /did not report its BPF maps/);
  });
});
