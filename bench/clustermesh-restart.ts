/**
 * An agent restart at scale (issue 18, item 4), root, on a fresh two-cluster lab: c1-worker's agent
 * is synced to c2 and to a large fake remote (50k endpoints, 10k services × 10 backends: the
 * writer of bench/fake-remote.ts), and a client pod on c1-worker requests a global service whose
 * backends are c2's echo pods, ten times a second, all along. The agent is restarted (`meshctl lab
 * restart agent`); reported: requests and failed requests from the restart until 20 requests after
 * the resync, and restart → the agent answers its status → every remote listed again with all of
 * its endpoints, services and nodes → every endpoint in its BPF ipcache; agent RSS before and
 * after. Goal: zero failures, resynced in ≤ 5 s. Everything is removed at the end, also on failure.
 *
 *   npx tsc -p . && node dist/bench/clustermesh-restart.js [--services 10000] [--backends 10]
 *     [--endpoints 50000] [-o json]
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { agentSocketPath } from "../lab/agent-socket.js";
import { containerProcess, MESH_POD_ROLES, meshPods } from "../lab/mesh-pods.js";
import { LabJournal } from "../lab/state.js";
import { type AgentStatus, getAgentStatus } from "../lib/api/agent-status.js";
import { waitFor } from "../lib/process.js";
import { echoDeploymentYaml } from "../testing/echo-deployment.js";
import { kubectl, labFixture, labUpArgs, meshctl, meshctlAsync } from "../testing/lab-fixture.js";
import { cleanup, cleanupOnSignals, cleanups } from "./cleanups.js";
import { addToRemotesSecret, type FakeRemote, startFakeRemote } from "./fake-remote.js";

const { values } = parseArgs({
  options: {
    services: { type: "string", default: "10000" },
    backends: { type: "string", default: "10" },
    endpoints: { type: "string", default: "50000" },
    output: { type: "string", short: "o", default: "text" },
  },
});
const size = {
  services: Number(values.services),
  backends: Number(values.backends),
  endpoints: Number(values.endpoints),
  nodes: 50,
  identities: 500,
};
const NS = "restart";
const OBSERVER = "c1-worker";
const FAKE = { name: "bigremote", id: 99 };

cleanupOnSignals();
const say = (line: string) => process.stderr.write(`${line}\n`);
const rssMb = (pid: number) => {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) / 1024 : Number.NaN;
};

/** c2: two echo pods behind the global Service; c1: the Service alone and the client on OBSERVER. */
function manifest(cluster: "c1" | "c2", clusterIp?: string): string {
  const service = `apiVersion: v1
kind: Service
metadata: {name: echo, namespace: ${NS}, annotations: {service.cilium.io/global: "true"}}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: 8080}]
`;
  const namespace = `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}}\n---\n`;
  if (cluster === "c2") return `${namespace}${service}---\n${echoDeploymentYaml(NS, 2)}`;
  if (!clusterIp) return `${namespace}${service}`;
  // one line per request: "<ms since epoch> <curl's exit code>"
  const loop = `while true; do curl -s -m 1 -o /dev/null http://${clusterIp}/; code=$?; echo "$(date +%s%3N) $code"; sleep 0.1; done`;
  return `apiVersion: v1
kind: Pod
metadata: {name: client, namespace: ${NS}}
spec:
  nodeName: ${OBSERVER}
  containers: [{name: client, image: clustermesh/client, command: [sh, -c, '${loop}']}]
`;
}

interface Figures {
  requests: number;
  failed: number;
  statusAnswerSeconds: number;
  remotesListedSeconds: number;
  ipcacheProgrammedSeconds: number;
  rssBeforeMb: number;
  rssAfterMb: number;
}

async function main(): Promise<Figures> {
  const fixture = await labFixture([{ workers: 1 }, { workers: 1 }]);
  cleanups.push(() => {
    meshctl(["lab", "down", "--name", fixture.name], fixture.env);
    fixture.cleanup();
  });
  say(`bringing up lab ${fixture.name} (two clusters) …`);
  // lab up is slow on a loaded machine: a longer deadline than meshctl()'s
  const up = meshctl(labUpArgs(fixture), fixture.env, 600_000);
  if (up.status !== 0) throw new Error(`lab up failed: ${up.stderr}${up.stdout}`);
  const journal = LabJournal.open(fixture.name);
  if (!journal) throw new Error("no lab journal");
  const apply = (cluster: string, yaml: string) => {
    const result = kubectlApply(fixture.env, `${fixture.name}-${cluster}`, yaml);
    if (result.status !== 0) throw new Error(`kubectl apply in ${cluster}: ${result.stderr}`);
  };
  const connect = meshctl(
    [
      "clustermesh",
      "connect",
      "--context",
      `${fixture.name}-c1`,
      "--destination-context",
      `${fixture.name}-c2`,
    ],
    fixture.env,
  );
  if (connect.status !== 0) throw new Error(`connect failed: ${connect.stderr}`);
  apply("c2", manifest("c2"));
  apply("c1", manifest("c1"));
  const clusterIp = kubectl(fixture, "c1", [
    "-n",
    NS,
    "get",
    "svc",
    "echo",
    "-o",
    "jsonpath={.spec.clusterIP}",
  ]).stdout;
  const status = (timeoutMs = 30_000): Promise<AgentStatus> =>
    getAgentStatus(agentSocketPath(fixture.name, OBSERVER), timeoutMs);
  await waitFor(
    `c2's two echo backends behind ${clusterIp}:80 in ${OBSERVER}`,
    async () =>
      ((await status()).services.find((s) => s.frontend === `${clusterIp}:80/TCP`)?.backends.length ?? 0) >=
      2,
    { timeoutMs: 180_000, intervalMs: 500 },
  );
  apply("c1", manifest("c1", clusterIp));

  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(fixture.kubeconfig);
  kubeConfig.setCurrentContext(`${fixture.name}-c1`);
  const core1 = kubeConfig.makeApiClient(CoreV1Api);
  const fake: FakeRemote = await startFakeRemote(journal, FAKE, size, say);
  cleanups.push(() => fake.stop());
  await addToRemotesSecret(core1, fake);
  say(`waiting for ${OBSERVER} to sync ${FAKE.name} (${size.endpoints} endpoints) …`);
  const synced = (s: AgentStatus) => {
    const remotes = s.clustermesh.remoteClusters;
    const big = remotes.find((r) => r.name === FAKE.name);
    return (
      remotes.length === 2 &&
      remotes.every((r) => r.ready) &&
      big?.numEndpoints === size.endpoints &&
      big.numSharedServices === size.services &&
      big.numNodes === size.nodes
    );
  };
  const programmed = (s: AgentStatus) => s.ipcache.filter((e) => e.remoteCluster).length >= size.endpoints;
  await waitFor(
    "synced and programmed",
    async () => {
      const s = await status();
      return synced(s) && programmed(s);
    },
    { timeoutMs: 600_000, intervalMs: 1000 },
  );

  const agentPid = async () => {
    const [pod] = await meshPods(journal, "c1", MESH_POD_ROLES.agent, OBSERVER);
    const ref = pod && containerProcess(journal, pod, "agent");
    if (!ref) throw new Error(`no running agent container on ${OBSERVER}`);
    return ref.pid;
  };
  const before = await agentPid();
  const rssBeforeMb = rssMb(before);
  // the client must be answering before the restart: its first successful line
  const clientLines = () =>
    kubectl(fixture, "c1", ["-n", NS, "logs", "client"])
      .stdout.split("\n")
      .map((line) => line.trim().split(" ").map(Number))
      .filter((fields) => fields.length === 2 && Number.isFinite(fields[0]));
  await waitFor("the client's requests answered", () => clientLines().some(([, code]) => code === 0), {
    timeoutMs: 60_000,
    intervalMs: 500,
  });

  say(`restarting ${OBSERVER}'s agent …`);
  const restartAt = Date.now();
  const restart = meshctlAsync(
    ["lab", "restart", "agent", "--name", fixture.name, "--node", OBSERVER],
    fixture.env,
  );
  const restarted = new Promise<number | null>((resolve) => restart.once("exit", resolve));
  const answered = await waitFor(
    "the restarted agent's status",
    async () => {
      if ((await agentPid().catch(() => before)) === before) return undefined;
      return status(2_000).then(
        () => Date.now(),
        () => undefined,
      );
    },
    { timeoutMs: 120_000, intervalMs: 50 },
  );
  const listed = await waitFor(
    "every remote listed again",
    async () => ((await status().then(synced, () => false)) ? Date.now() : undefined),
    { timeoutMs: 120_000, intervalMs: 50 },
  );
  const inIpcache = await waitFor(
    "every remote endpoint in the BPF ipcache",
    async () => ((await status().then(programmed, () => false)) ? Date.now() : undefined),
    { timeoutMs: 120_000, intervalMs: 100 },
  );
  if ((await restarted) !== 0) throw new Error("meshctl lab restart agent failed");
  const last = inIpcache;
  await waitFor(
    "20 requests after the resync",
    () => clientLines().filter(([at]) => at > last).length >= 20,
    {
      timeoutMs: 60_000,
      intervalMs: 500,
    },
  );
  const during = clientLines().filter(([at]) => at >= restartAt);
  return {
    requests: during.length,
    failed: during.filter(([, code]) => code !== 0).length,
    statusAnswerSeconds: (answered - restartAt) / 1000,
    remotesListedSeconds: (listed - restartAt) / 1000,
    ipcacheProgrammedSeconds: (inIpcache - restartAt) / 1000,
    rssBeforeMb,
    rssAfterMb: rssMb(await agentPid()),
  };
}

function kubectlApply(env: NodeJS.ProcessEnv, context: string, yaml: string) {
  return spawnSync("kubectl", ["--context", context, "apply", "-f", "-"], {
    input: yaml,
    encoding: "utf8",
    env,
  });
}

try {
  const figures = await main();
  if (values.output === "json") process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
  else {
    const rows: [string, string][] = [
      [
        `requests to a global service from ${OBSERVER}, restart → 20 after the resync`,
        `${figures.requests}, ${figures.failed} failed (goal 0)`,
      ],
      ["restart → the agent answers its status", `${figures.statusAnswerSeconds.toFixed(1)} s`],
      [
        `restart → every remote listed again (c2 and ${FAKE.name}: ${size.endpoints} endpoints, ${size.services} services)`,
        `${figures.remotesListedSeconds.toFixed(1)} s (goal ≤ 5 s)`,
      ],
      [
        "restart → every remote endpoint in the BPF ipcache",
        `${figures.ipcacheProgrammedSeconds.toFixed(1)} s`,
      ],
      [
        "agent RSS before → after",
        `${figures.rssBeforeMb.toFixed(0)} MB → ${figures.rssAfterMb.toFixed(0)} MB`,
      ],
    ];
    const width = Math.max(...rows.map(([key]) => key.length));
    process.stdout.write(
      `\n| ${"measurement".padEnd(width)} | value |\n|${"-".repeat(width + 2)}|-------|\n`,
    );
    for (const [key, value] of rows) process.stdout.write(`| ${key.padEnd(width)} | ${value} |\n`);
  }
} catch (error) {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? error}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
