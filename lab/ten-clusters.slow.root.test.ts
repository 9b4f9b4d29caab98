/**
 * Ten one-node clusters on one machine, as a user types it: `meshctl lab up --clusters 10` comes
 * up connected as a full mesh (every node programmed with the 9 others), and a global service
 * whose only backend is in cluster1 answers a client in cluster10. ~10 min on a loaded 2-core
 * machine: not in `npm test`; run it with
 *   node scripts/run-tests.mjs --filter ten-clusters     (or --slow for every slow test)
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runJson } from "../lib/exec.js";
import { waitFor } from "../lib/process.js";
import { echoDeploymentYaml } from "../testing/echo-deployment.js";
import { MESHCTL } from "../testing/lab-fixture.js";
import { meshProgress } from "./connect-mesh.js";
import { listNetns } from "./network.js";
import { LabJournal } from "./state.js";

const CLUSTERS = 10;
const NS = "tenmesh";
const UP_TIMEOUT_MS = 1_500_000;

describe(`meshctl lab up --clusters ${CLUSTERS} (root, slow)`, { timeout: UP_TIMEOUT_MS + 600_000 }, () => {
  const name = `ten${Math.random().toString(36).slice(2, 6)}`;
  const dir = mkdtempSync(join(tmpdir(), `mesh-${name}-`));
  const env = { ...process.env, KUBECONFIG: join(dir, "kubeconfig") };
  let upOutput = "";
  let prefixes: string[] = [];

  const kubectl = (cluster: string, args: string[], input?: string): string => {
    const result = spawnSync("kubectl", ["--context", `${name}-${cluster}`, ...args], {
      encoding: "utf8",
      env,
      input,
      timeout: 120_000,
    });
    assert.equal(result.status, 0, `kubectl ${args.join(" ")} in ${cluster}: ${result.stderr}`);
    return result.stdout;
  };

  before(
    async () => {
      // asynchronous: the test runner keeps its own deadline meanwhile
      upOutput = await new Promise<string>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          [MESHCTL, "lab", "up", "--name", name, "--clusters", `${CLUSTERS}`],
          {
            env,
            stdio: ["ignore", "pipe", "pipe"],
          },
        );
        let output = "";
        child.stdout.on("data", (chunk) => {
          output += chunk;
        });
        child.stderr.on("data", (chunk) => {
          output += chunk;
        });
        const timer = setTimeout(() => child.kill("SIGINT"), UP_TIMEOUT_MS);
        child.on("exit", (code) => {
          clearTimeout(timer);
          if (code === 0) resolve(output);
          else reject(new Error(`lab up exited ${code}:\n${output}`));
        });
      });
      const journal = LabJournal.open(name);
      assert.ok(journal, "lab journal");
      prefixes = journal.snapshot.plan.blackholes.map((b) => b.prefix);
    },
    { timeout: UP_TIMEOUT_MS + 60_000 },
  );

  after(async () => {
    const down = spawnSync(process.execPath, [MESHCTL, "lab", "down", "--name", name], {
      encoding: "utf8",
      env,
      timeout: 300_000,
    });
    rmSync(dir, { recursive: true, force: true });
    assert.equal(down.status, 0, `lab down: ${down.stderr}`);
    assert.deepEqual(
      (await listNetns()).filter((ns) => ns.startsWith(`${name}-`)),
      [],
      "network namespaces left",
    );
    const routes = await runJson<{ dst: string }[]>(["ip", "-j", "route", "show", "table", "all"]);
    for (const prefix of prefixes) assert.ok(!routes.some((r) => r.dst === prefix), `route ${prefix} left`);
  });

  it("comes up as ten one-node clusters with their own ids and subnets, connected as a full mesh", async () => {
    const journal = LabJournal.open(name);
    assert.ok(journal);
    const { plan } = journal.snapshot;
    assert.deepEqual(
      plan.clusters.map((c) => [c.name, c.id, c.nodes.length]),
      Array.from({ length: CLUSTERS }, (_, i) => [`cluster${i + 1}`, i + 1, 1]),
    );
    assert.equal(new Set(prefixes).size, 2 * CLUSTERS, "distinct pod and service subnets");
    assert.match(upOutput, new RegExp(`Connected ${CLUSTERS} clusters as a full mesh`));
    const progress = await meshProgress(plan);
    assert.deepEqual(progress.pending, []);
    assert.equal(progress.programmed, CLUSTERS * (CLUSTERS - 1));
    assert.equal(progress.expected, CLUSTERS * (CLUSTERS - 1));
  });

  it("answers a global service of cluster1 from cluster10, without SNAT", async () => {
    const service = `apiVersion: v1
kind: Service
metadata: {name: echo, namespace: ${NS}, annotations: {service.cilium.io/global: "true"}}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: http}]
`;
    const namespace = `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}}\n---\n`;
    kubectl("cluster1", ["apply", "-f", "-"], `${namespace}${echoDeploymentYaml(NS, 1)}---\n${service}`);
    kubectl(
      "cluster10",
      ["apply", "-f", "-"],
      `${namespace}${service}---\napiVersion: v1\nkind: Pod\nmetadata: {name: client, namespace: ${NS}}\nspec:\n  containers: [{name: client, image: clustermesh/client}]\n`,
    );
    kubectl("cluster1", ["-n", NS, "wait", "--for=condition=Available", "deploy/echo", "--timeout=180s"]);
    kubectl("cluster10", ["-n", NS, "wait", "--for=condition=Ready", "pod/client", "--timeout=180s"]);
    const clientIp = kubectl("cluster10", [
      "-n",
      NS,
      "get",
      "pod",
      "client",
      "-o",
      "jsonpath={.status.podIP}",
    ]);
    const clusterIp = kubectl("cluster10", [
      "-n",
      NS,
      "get",
      "svc",
      "echo",
      "-o",
      "jsonpath={.spec.clusterIP}",
    ]);
    // the remote backend reaches cluster10's agent through the mesh: wait for it, then ask
    const answers = await waitFor(
      "cluster1's echo answering in cluster10",
      () => {
        const out = spawnSync(
          "kubectl",
          [
            "--context",
            `${name}-cluster10`,
            "-n",
            NS,
            "exec",
            "client",
            "--",
            "sh",
            "-c",
            `for i in 1 2 3 4 5; do curl -s -m 3 http://${clusterIp}/; echo; done`,
          ],
          { encoding: "utf8", env, timeout: 60_000 },
        ).stdout;
        const lines = (out ?? "").split("\n").filter((line) => line.startsWith("{"));
        return lines.length === 5 ? lines.map((line) => JSON.parse(line)) : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 2_000 },
    );
    for (const answer of answers) {
      assert.equal(answer.cluster, "cluster1");
      assert.equal(answer.client, clientIp, "no SNAT across clusters");
    }
  });
});
