import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { run } from "../../lib/exec.js";
import { isRunning, type ProcessRef, startDaemon, stopProcess, waitFor } from "../../lib/process.js";
import { LabApi } from "../controllers/test-cluster.js";
import { cgroup2Mount, podNetnsName } from "./sandbox.js";

/**
 * End to end through the real lab API server: the kubelet binary started inside a node netns (as
 * the lab does), pods created via the API, kubectl logs / exec [-i] [-t] proxied by the API server.
 */

const rand = randomBytes(2).toString("hex");
const x = Number.parseInt(rand.slice(0, 2), 16);
const nodeNetns = `ka${rand}node`;
const podPrefix = `ka${rand}p`;
const hostVeth = `ka${rand}h`;
const nodeVeth = `ka${rand}n`;
const apiIp = `10.251.${x}.1`;
const nodeIp = `10.251.${x}.2`;
const subnet = `10.252.${x}`;
const cgroupRoot = join(cgroup2Mount(), `clustermesh-test-${rand}`);
const kubeletMain = fileURLToPath(new URL("./main.js", import.meta.url));

describe("lab kubelet through the lab API server and kubectl (root)", { timeout: 90_000 }, () => {
  const lab = new LabApi();
  let kubelet: ProcessRef | undefined;
  let core: CoreV1Api;
  let adminKubeconfig = "";

  /** Async on purpose: the API server runs in this process and must keep serving meanwhile. */
  const exec = (
    file: string,
    args: string[],
    input = "",
  ): Promise<{ status: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve, reject) => {
      const child = spawn(file, args, { timeout: 30_000 });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c) => {
        stdout += c;
      });
      child.stderr.on("data", (c) => {
        stderr += c;
      });
      child.on("error", reject);
      child.on("close", (status) => resolve({ status, stdout, stderr }));
      child.stdin.end(input);
    });
  const kubectl = (args: string[], input?: string) =>
    exec("kubectl", ["--kubeconfig", adminKubeconfig, ...args], input);

  async function running(name: string): Promise<V1Pod> {
    return waitFor(
      `pod ${name} Running`,
      async () => {
        const pod = await core.readNamespacedPod({ name, namespace: "default" });
        return pod.status?.phase === "Running" && pod.status.podIP ? pod : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
  }

  before(async () => {
    await run(["ip", "netns", "add", nodeNetns]);
    await run(["ip", "link", "set", "lo", "up"], { netns: nodeNetns });
    await run(["ip", "link", "add", hostVeth, "type", "veth", "peer", "name", nodeVeth, "netns", nodeNetns]);
    await run(["ip", "addr", "add", `${apiIp}/30`, "dev", hostVeth]);
    await run(["ip", "link", "set", hostVeth, "up"]);
    await run(["ip", "addr", "add", `${nodeIp}/30`, "dev", nodeVeth], { netns: nodeNetns });
    await run(["ip", "link", "set", nodeVeth, "up"], { netns: nodeNetns });
    await lab.start({ bindAddress: apiIp, nodes: [{ name: "node-a", ip: nodeIp }] });
    adminKubeconfig = lab.kubeconfigFor("admin", lab.pki.admin);
    core = lab.kubeConfig("admin", lab.pki.admin).makeApiClient(CoreV1Api);
    const confDir = join(lab.dir, "cni-conf");
    mkdirSync(confDir, { recursive: true });
    writeFileSync(
      join(confDir, "10-labnet.conflist"),
      JSON.stringify({
        cniVersion: "1.0.0",
        name: "labnet",
        plugins: [
          {
            type: "bridge",
            bridge: `ka${rand}br`,
            isGateway: true,
            ipam: {
              type: "host-local",
              ranges: [[{ subnet: `${subnet}.0/24` }]],
              dataDir: join(lab.dir, "ipam"),
            },
          },
        ],
      }),
    );
    const kubeletPki = lab.pki.kubelets["node-a"];
    kubelet = startDaemon({
      netns: nodeNetns,
      logFile: join(lab.dir, "kubelet.log"),
      argv: [
        process.execPath,
        kubeletMain,
        "--kubeconfig",
        lab.kubeconfigFor("kubelet-node-a", kubeletPki),
        "--node-name",
        "node-a",
        "--node-ip",
        nodeIp,
        "--cluster-name",
        "c9",
        "--cni-conf-dir",
        confDir,
        "--cni-bin-dir",
        "/usr/lib/cni",
        "--netns-prefix",
        podPrefix,
        "--cgroup-root",
        cgroupRoot,
        "--state-dir",
        join(lab.dir, "kubelet-state"),
        "--port",
        "10250",
        "--tls-cert-file",
        kubeletPki.cert,
        "--tls-private-key-file",
        kubeletPki.key,
        "--client-ca-file",
        kubeletPki.ca,
      ],
    });
  });

  after(async () => {
    if (kubelet) await stopProcess(kubelet, 15_000);
    if (process.env.KEEP_KUBELET_LOG) console.log(readFileSync(join(lab.dir, "kubelet.log"), "utf8"));
    await lab.stop().catch((error) => console.error("teardown:", error));
    for (const name of readdirSync("/run/netns").filter((n) => n.startsWith(`ka${rand}`))) {
      await run(["ip", "netns", "delete", name]).catch((error) => console.error("teardown:", error));
    }
    // the veth goes with its netns when the lab stopped cleanly: then this fails, and that is fine
    await run(["ip", "link", "delete", hostVeth]).catch(() => undefined);
    if (existsSync(cgroupRoot)) rmdirSync(cgroupRoot);
  });

  it("registers a Ready node, runs pods that reach each other, and serves kubectl logs and exec", async () => {
    const node = await waitFor(
      "node-a Ready",
      async () => {
        const n = await core.readNode({ name: "node-a" });
        return n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ? n : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 100 },
    );
    assert.equal(node.status?.daemonEndpoints?.kubeletEndpoint?.Port, 10250);
    for (const name of ["echo-a", "echo-b"]) {
      await core.createNamespacedPod({
        namespace: "default",
        body: {
          metadata: { name },
          spec: { nodeName: "node-a", containers: [{ name: "echo", image: "clustermesh/echo" }] },
        },
      });
    }
    const a = await running("echo-a");
    const b = await running("echo-b");
    const netnsA = podNetnsName(podPrefix, a.metadata?.uid ?? "");
    const body = await waitFor(
      "echo-b answers echo-a",
      async () =>
        JSON.parse(
          await run(["curl", "-s", "--max-time", "2", `http://${b.status?.podIP}:8080/`], { netns: netnsA }),
        ),
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    assert.deepEqual([body.pod, body.node, body.cluster], ["echo-b", "node-a", "c9"]);

    const logs = await kubectl(["logs", "echo-a"]);
    assert.equal(logs.status, 0, logs.stderr);
    assert.match(logs.stdout, /echo: default\/echo-a on node-a \(c9\)/);

    const ok = await kubectl(["exec", "echo-a", "--", "sh", "-c", "ip -4 -o addr show eth0"]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`inet ${a.status?.podIP}/`));
    const failing = await kubectl(["exec", "echo-a", "--", "sh", "-c", "echo bad >&2; exit 5"]);
    assert.equal(failing.status, 5, failing.stderr);
    assert.match(failing.stderr, /bad/);
    const piped = await kubectl(["exec", "-i", "echo-a", "--", "sh", "-c", "cat; exit 3"], "through stdin\n");
    assert.equal(piped.status, 3, piped.stderr);
    assert.match(piped.stdout, /through stdin/);
    // -it needs a terminal on kubectl's side: give it one with script(1).
    const tty = await exec("script", [
      "-q",
      "-e",
      "-c",
      `kubectl --kubeconfig ${adminKubeconfig} exec -it echo-a -- sh -c 'tty; exit 4'`,
      "/dev/null",
    ]);
    assert.equal(tty.status, 4, tty.stdout + tty.stderr);
    assert.match(tty.stdout, /\/dev\/pts\//);

    const deleted = await kubectl(["delete", "pod", "echo-a", "echo-b", "--wait=true", "--timeout=30s"]);
    assert.equal(deleted.status, 0, deleted.stderr);
    assert.deepEqual(
      readdirSync("/run/netns").filter((n) => n.startsWith(podPrefix)),
      [],
    );
    assert.ok(kubelet && isRunning(kubelet));
  });
});
