import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RemoteDatapathStatus } from "../../lib/api/agent-status.js";
import type { ConnectivitySummary } from "../../lib/clustermesh/status.js";
import { driftLines, isHealthy, type MeshStatusReport, renderStatus } from "./clustermesh-status.js";

const counts = { nodes: 2, ipcache: 6, identities: 2, services: 1, backends: 2 };
const datapath = (missing: number): RemoteDatapathStatus => ({
  published: counts,
  programmed: { ...counts, ipcache: counts.ipcache - missing },
  drift: {
    missing,
    extra: 0,
    different: 0,
    sample: missing
      ? [
          {
            kind: "ipcache",
            entry: "10.2.1.7/32",
            problem: "missing",
            detail: "identity 70001 via 172.18.1.2",
          },
        ]
      : [],
  },
  lastAppliedAt: "2026-12-05T08:00:00.000Z",
});

function report(missing: number): MeshStatusReport {
  const connectivity: ConnectivitySummary = {
    expectedClusters: ["c2"],
    totalNodes: 2,
    fullyConnected: 2,
    connected: { min: 1, avg: 1, max: 1 },
    clusters: { c2: { configured: 2, connected: 2 } },
    errors: [],
    datapath: [
      { node: "c1-control-plane", cluster: "c2", datapath: datapath(0) },
      { node: "c1-worker", cluster: "c2", datapath: datapath(missing) },
    ],
    drift: missing ? [{ node: "c1-worker", cluster: "c2", ...datapath(missing).drift }] : [],
  };
  return {
    access_information: {
      cluster_name: "c1",
      cluster_id: "1",
      service_type: "NodePort",
      endpoints: ["https://172.18.0.2:32379"],
      max_connected_clusters: 255,
      encryption: "disabled",
    },
    apiserver: { ready: true, detail: "ok" },
    connectivity,
  };
}

describe("clustermesh status text", () => {
  const now = Date.parse("2026-12-05T08:00:42.000Z");

  it("shows published/programmed per node and remote and the age of the last applied change", () => {
    const text = renderStatus(report(0), now);
    assert.match(
      text,
      /NODE\s+REMOTE\s+NODES\s+IPCACHE\s+IDENTITIES\s+SERVICES\s+BACKENDS\s+LAST CHANGE APPLIED\s+DRIFT/,
    );
    assert.match(text, /c1-worker\s+c2\s+2\/2\s+6\/6\s+2\/2\s+1\/1\s+2\/2\s+42s ago\s+none/);
    assert.match(text, /Every node's BPF maps hold what every remote cluster published/);
    assert.ok(isHealthy(report(0)));
  });

  it("drift: names the node, the remote and the sampled entries, and is not healthy", () => {
    const text = renderStatus(report(1), now);
    assert.match(text, /c1-worker\s+c2\s+2\/2\s+6\/5 .*1 missing, 0 extra, 0 different/);
    assert.deepEqual(driftLines(report(1)), [
      "  ❌ c1-worker, remote cluster c2: 1 missing, 0 extra, 0 different in the BPF maps",
      "       missing ipcache 10.2.1.7/32 (identity 70001 via 172.18.1.2)",
    ]);
    assert.ok(!isHealthy(report(1)), "connected sessions with drifting maps are not healthy");
  });
});
