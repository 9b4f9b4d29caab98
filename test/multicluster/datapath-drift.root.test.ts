/**
 * `meshctl clustermesh status` proves the datapath (issue 17, item 4): two connected lab clusters;
 * an ipcache entry that came from c2 is deleted by hand from a c1 node's pinned BPF map, behind the
 * agent's back. Status must show the drift on that node with the entry in the sample (the sessions
 * are all up: only the maps tell), `--wait` must give up naming it, and once the agent's periodic
 * datapath resync has rewritten the entry, `--wait` must succeed. Lab only (the pinned maps).
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  type IpcacheKey,
  type IpcacheValue,
  ipcacheKeyCodec,
  ipcacheValueCodec,
} from "../../bpf/datapath/codecs.js";
import { MapName, mapsDirectory } from "../../bpf/datapath/maps.js";
import { BpfMap } from "../../bpf/libbpf-ts/index.js";
import { nodePinRoot } from "../../lab/node-files.js";
import { LabJournal } from "../../lab/state.js";
import type { AgentStatus } from "../../lib/api/agent-status.js";
import { waitFor } from "../../lib/process.js";
import { echoDeploymentYaml } from "../../testing/echo-deployment.js";
import type { CliResult } from "../../testing/lab-fixture.js";
import { type MeshProvider, meshProvider } from "./provider.js";

const NS = `drift-${Math.random().toString(36).slice(2, 7)}`;

/** c2 runs the echo pods; both clusters have the global Service (c1's only gets c2's backends). */
function manifest(withPods: boolean): string {
  const service = `apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: ${NS}
  annotations: {service.cilium.io/global: "true"}
spec:
  selector: {app: echo}
  ports:
  - {name: http, port: 80, targetPort: http}
`;
  const deployment = `---
${echoDeploymentYaml(NS, 1)}`;
  return `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}}\n---\n${service}${withPods ? deployment : ""}`;
}

interface StatusJson {
  connectivity: {
    fullyConnected: number;
    totalNodes: number;
    drift: {
      node: string;
      cluster?: string;
      missing: number;
      sample: { entry: string; problem: string }[];
    }[];
    datapath: { node: string; cluster: string; datapath: { published: Record<string, number> } }[];
  };
}

describe("clustermesh status reads the BPF maps (root: two-cluster lab)", {
  skip: process.env.MESH_E2E_PROVIDER === "kind",
}, () => {
  let mesh: MeshProvider;
  let ipcache: BpfMap<IpcacheKey, IpcacheValue> | undefined;
  let node = "";
  let podIp = "";

  const ok = (result: CliResult, what: string) => {
    assert.equal(result.status, 0, `${what}: ${result.stderr}${result.stdout}`);
    return result.stdout;
  };
  const status = (...args: string[]) =>
    mesh.meshctl(["clustermesh", "status", "--context", mesh.context("c1"), ...args]);
  /** The report, healthy (exit 0) or not (exit 1: drift is a finding here, not a failure). */
  const statusJson = (): StatusJson => {
    const result = status("-o", "json");
    assert.ok(result.status === 0 || result.status === 1, `clustermesh status -o json: ${result.stderr}`);
    return JSON.parse(result.stdout);
  };
  const agent = (): Promise<AgentStatus> => {
    assert.ok(mesh.lab);
    return mesh.lab.agentStatus(node);
  };
  const key = (): IpcacheKey => ({ prefix: `${podIp}/32`, clusterId: 0 });
  /**
   * The pod's own /32 entry. Not `get`: the ipcache is an LPM trie, and with the /32 deleted a
   * lookup answers the remote node's pod-CIDR entry (identity world, same tunnel endpoint).
   */
  const podEntry = (): IpcacheValue | undefined => {
    for (const [entryKey, value] of ipcache?.entries() ?? [])
      if (entryKey.prefix === key().prefix && entryKey.clusterId === 0) return value;
    return undefined;
  };

  before(async () => {
    mesh = await meshProvider();
    try {
      assert.ok(mesh.lab, "needs the lab: the test deletes from a node's pinned map");
      for (const [cluster, withPods] of [
        ["c1", false],
        ["c2", true],
      ] as const) {
        const file = join(mesh.dir, `drift-${cluster}.yaml`);
        writeFileSync(file, manifest(withPods));
        ok(mesh.kubectl(cluster, ["apply", "-f", file]), `kubectl apply ${cluster}`);
      }
      ok(
        mesh.meshctl([
          "clustermesh",
          "connect",
          "--context",
          mesh.context("c1"),
          "--destination-context",
          mesh.context("c2"),
        ]),
        "meshctl clustermesh connect",
      );
      podIp = await waitFor(
        "the c2 echo pod ready",
        () => {
          const pods = JSON.parse(ok(mesh.kubectl("c2", ["-n", NS, "get", "pods", "-o", "json"]), "get pods"))
            .items as {
            status: { podIP?: string; conditions?: { type: string; status: string }[] };
          }[];
          const ready = pods.find((p) =>
            p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
          );
          return ready?.status.podIP;
        },
        { timeoutMs: 120_000, intervalMs: 500 },
      );
      node = ok(mesh.kubectl("c1", ["get", "nodes", "-o", "name"]), "get nodes")
        .split("\n")
        .map((line) => line.replace("node/", "").trim())
        .filter((name) => name.includes("worker"))[0];
      assert.ok(node, "c1 has a worker");
      const journal = LabJournal.open(mesh.lab.name);
      assert.ok(journal, "the lab's journal");
      ipcache = BpfMap.openPinned(
        join(mapsDirectory(nodePinRoot(journal.path(), node)), MapName.ipcache),
        ipcacheKeyCodec,
        ipcacheValueCodec,
      );
    } catch (error) {
      mesh.down();
      throw error;
    }
  });

  after(() => {
    ipcache?.close();
    mesh?.down();
  });

  it("--wait returns once the sessions are up and every node's maps hold what c2 published", async () => {
    const started = Date.now();
    ok(status("--wait", "--wait-duration", "2m"), "clustermesh status --wait");
    console.log(`# clustermesh status --wait: in sync after ${Date.now() - started} ms`);
    assert.ok(podEntry(), `${podIp}/32 is in ${node}'s ipcache`);
    const report = statusJson();
    assert.deepEqual(report.connectivity.drift, []);
    const row = report.connectivity.datapath.find((d) => d.node === node && d.cluster === "c2");
    assert.ok(row, `a datapath row for ${node}/c2`);
    assert.ok(row.datapath.published.ipcache >= 3, "c2's nodes and its pod");
    assert.ok(row.datapath.published.backends >= 1, "c2's echo pod behind c1's global Service");
    // what a status costs: meshctl end to end, and the agent's own answer (one read of the maps)
    const samples: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      await agent();
      samples.push(performance.now() - t);
    }
    const t = performance.now();
    statusJson();
    console.log(
      `# agent GET /v1/status: ${samples.map((s) => s.toFixed(1)).join(", ")} ms; meshctl clustermesh status -o json: ${(performance.now() - t).toFixed(0)} ms`,
    );
  });

  it("an entry deleted from a node's map behind the agent's back is drift on that node, and --wait fails naming it", async () => {
    // The agent's periodic resync (30 s) repairs the map. The observations are valid when the entry
    // is still missing after them (nothing puts it back but a repair, so it was missing throughout);
    // otherwise a repair overlapped them and they are repeated with a fresh deletion. (Other
    // datapath runs may overlap: they write what changed and leave the missing entry missing.)
    for (let attempt = 1; ; attempt++) {
      assert.ok(attempt <= 4, "a datapath run overlapped every attempt");
      if (!ipcache?.delete(key())) {
        // absent already: a datapath run is rewriting it; wait for it and try again
        await waitFor(`${podIp}/32 back in ${node}'s ${MapName.ipcache}`, () => podEntry(), {
          timeoutMs: 60_000,
          intervalMs: 200,
        });
        continue;
      }
      const report = statusJson();
      const waited = status("--wait", "--wait-duration", "3s");
      const text = status();
      const agentText = mesh.meshctl(["agent", "status", "--name", mesh.lab?.name ?? "", "--node", node]);
      if (podEntry() !== undefined) {
        await waitFor("the resync to have rewritten the entry", () => podEntry(), {
          timeoutMs: 60_000,
          intervalMs: 200,
        });
        continue;
      }
      assert.equal(
        report.connectivity.fullyConnected,
        report.connectivity.totalNodes,
        "the sessions are all up",
      );
      const escaped = podIp.replaceAll(".", "\\.");
      const drift = report.connectivity.drift.find((d) => d.node === node && d.cluster === "c2");
      assert.ok(drift, `drift on ${node} for c2: ${JSON.stringify(report.connectivity.drift)}`);
      assert.equal(drift.missing, 1);
      assert.deepEqual(
        drift.sample.map((e) => [e.problem, e.entry]),
        [["missing", `${podIp}/32`]],
      );
      assert.equal(report.connectivity.drift.length, 1, "the other node's maps are whole");
      assert.equal(waited.status, 1, `--wait must fail while ${node} drifts: ${waited.stdout}`);
      assert.match(
        waited.stderr,
        new RegExp(`${node}, remote cluster c2: 1 missing.*\\n.*missing ipcache ${escaped}/32`),
      );
      assert.equal(text.status, 1);
      console.log(`# drift observed on attempt ${attempt}; meshctl clustermesh status:`);
      console.log(text.stdout.replace(/^/gm, "# "));
      assert.match(agentText.stdout, /c2\s.*1 missing, 0 extra, 0 different/);
      assert.match(agentText.stdout, new RegExp(`c2: missing ipcache ${escaped}/32`));
      assert.match(text.stdout, new RegExp(`${node}\\s+c2\\s.*1 missing, 0 extra, 0 different`));
      return;
    }
  });

  it("the agent's periodic datapath resync repairs its maps, and --wait then succeeds", async () => {
    const started = Date.now();
    ok(status("--wait", "--wait-duration", "75s"), "clustermesh status --wait after the repair");
    console.log(`# drift repaired and seen by --wait after ${Date.now() - started} ms`);
    assert.ok(podEntry()?.tunnelEndpoint, `${podIp}/32 is back, tunneled`);
  });
});
