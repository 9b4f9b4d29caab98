import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { CoordinationV1Api, CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import {
  type CertificateBundle,
  createCa,
  issueClientCert,
  issueLeafCert,
  issueServerCert,
} from "../../certs/authority.js";
import { run } from "../../lib/exec.js";
import { freePort } from "../../lib/free-port.js";
import {
  isRunning,
  type ProcessRef,
  startDaemon,
  stopProcess,
  WaitAborted,
  waitFor,
} from "../../lib/process.js";
import { controlPlaneBinaries } from "../kubernetes/binaries.js";
import { cgroup2Mount, podNetnsName } from "./sandbox.js";

/**
 * The lab kubelet against the REAL kube-apiserver (v1.33, built by scripts/go-build.sh into
 * ~/.cache/clustermesh/bin) with etcd 3.5 and kube-scheduler: Node and NodeRestriction admission,
 * its own system:node certificate, node Lease, pod status through pods/status, and kubectl logs /
 * exec / port-forward, which kube-apiserver turns into SPDY/3.1 calls to the kubelet.
 * The binaries are built on first use (lab/kubernetes/binaries.ts).
 */

const rand = randomBytes(2).toString("hex");
const x = Number.parseInt(rand.slice(0, 2), 16);
const nodeNetns = `kr${rand}node`;
const podPrefix = `kr${rand}p`;
const hostVeth = `kr${rand}h`;
const nodeVeth = `kr${rand}n`;
const apiIp = `10.253.${x}.1`;
const nodeIp = `10.253.${x}.2`;
const subnet = `10.254.${x}`;
const cgroupRoot = join(cgroup2Mount(), `clustermesh-test-${rand}`);
const kubeletMain = fileURLToPath(new URL("./main.js", import.meta.url));
const NODE = "node-r";

// Built on first use by scripts/go-build.sh (a cold build takes many CPU-minutes; it prints progress).
const built = await controlPlaneBinaries((line) => process.stderr.write(`${line}\n`));
const binaries = { apiserver: built.kubeApiserver, etcd: built.etcd };
const scheduler: string | undefined = built.kubeScheduler;

function kubeconfigFile(path: string, server: string, ca: string, user: CertificateBundle): string {
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: "real",
          cluster: { server, "certificate-authority-data": Buffer.from(ca).toString("base64") },
        },
      ],
      users: [
        {
          name: "user",
          user: {
            "client-certificate-data": Buffer.from(user.certPem).toString("base64"),
            "client-key-data": Buffer.from(user.keyPem).toString("base64"),
          },
        },
      ],
      contexts: [{ name: "real", context: { cluster: "real", user: "user" } }],
      "current-context": "real",
    }),
    { mode: 0o600 },
  );
  return path;
}

describe("lab kubelet against the real kube-apiserver (root)", {
  timeout: 240_000,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), `kubelet-real-${rand}-`));
  const processes: { name: string; ref: ProcessRef; log: string }[] = [];
  let core: CoreV1Api;
  let coordination: CoordinationV1Api;
  let adminKubeconfig = "";
  const confDir = join(dir, "cni-conf");

  const exec = (
    file: string,
    args: string[],
    input = "",
  ): Promise<{ status: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve, reject) => {
      const child = spawn(file, args, { timeout: 60_000 });
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

  const start = (name: string, argv: string[], netns?: string) => {
    const log = join(dir, `${name}.log`);
    processes.push({ name, ref: startDaemon({ argv, logFile: log, netns }), log });
  };
  const alive = () => {
    for (const p of processes)
      if (!isRunning(p.ref))
        throw new WaitAborted(
          `${p.name} exited: ${readFileSync(p.log, "utf8").trim().split("\n").slice(-15).join("\n")}`,
        );
  };

  before(async () => {
    mkdirSync(confDir, { recursive: true });
    await run(["ip", "netns", "add", nodeNetns]);
    await run(["ip", "link", "set", "lo", "up"], { netns: nodeNetns });
    await run(["ip", "link", "add", hostVeth, "type", "veth", "peer", "name", nodeVeth, "netns", nodeNetns]);
    await run(["ip", "addr", "add", `${apiIp}/30`, "dev", hostVeth]);
    await run(["ip", "link", "set", hostVeth, "up"]);
    await run(["ip", "addr", "add", `${nodeIp}/30`, "dev", nodeVeth], { netns: nodeNetns });
    await run(["ip", "link", "set", nodeVeth, "up"], { netns: nodeNetns });

    // PKI as kubeadm lays it out: one CA; the API server's kubelet client certificate is a
    // cluster admin; each kubelet is system:node:<name> in system:nodes.
    const ca = createCa({ commonName: "kubernetes" });
    const file = (name: string, content: string) => {
      writeFileSync(join(dir, name), content, { mode: 0o600 });
      return join(dir, name);
    };
    const caFile = file("ca.crt", ca.certPem);
    const serving = issueServerCert(ca, {
      commonName: "kube-apiserver",
      dnsNames: ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "localhost"],
      ipAddresses: [apiIp, "127.0.0.1", "10.96.0.1"],
    });
    const kubeletClient = issueClientCert(ca, {
      commonName: "kube-apiserver-kubelet-client",
      organizations: ["system:masters"],
    });
    const admin = issueClientCert(ca, { commonName: "kubernetes-admin", organizations: ["system:masters"] });
    const node = issueClientCert(ca, { commonName: `system:node:${NODE}`, organizations: ["system:nodes"] });
    const kubeletServing = issueLeafCert(ca, {
      commonName: `system:node:${NODE}`,
      ipAddresses: [nodeIp],
      dnsNames: [NODE],
      serverAuth: true,
    });
    const sa = generateKeyPairSync("rsa", { modulusLength: 2048 });

    const etcdPort = await freePort();
    const peerPort = await freePort();
    start("etcd", [
      binaries.etcd,
      "--name=default",
      `--data-dir=${join(dir, "etcd")}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
      `--initial-cluster-token=kubelet-test-${rand}`,
    ]);
    start("kube-apiserver", [
      binaries.apiserver,
      `--advertise-address=${apiIp}`,
      `--bind-address=${apiIp}`,
      "--secure-port=6443",
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      `--client-ca-file=${caFile}`,
      `--tls-cert-file=${file("apiserver.crt", serving.certPem)}`,
      `--tls-private-key-file=${file("apiserver.key", serving.keyPem)}`,
      "--authorization-mode=Node,RBAC",
      "--enable-admission-plugins=NodeRestriction",
      `--kubelet-client-certificate=${file("kubelet-client.crt", kubeletClient.certPem)}`,
      `--kubelet-client-key=${file("kubelet-client.key", kubeletClient.keyPem)}`,
      `--kubelet-certificate-authority=${caFile}`,
      "--kubelet-preferred-address-types=InternalIP",
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-account-key-file=${file("sa.pub", sa.publicKey.export({ type: "spki", format: "pem" }).toString())}`,
      `--service-account-signing-key-file=${file("sa.key", sa.privateKey.export({ type: "pkcs8", format: "pem" }).toString())}`,
      "--service-cluster-ip-range=10.96.0.0/16",
      "--profiling=false",
    ]);
    const server = `https://${apiIp}:6443`;
    adminKubeconfig = kubeconfigFile(join(dir, "admin.kubeconfig"), server, ca.certPem, admin);
    const kc = new KubeConfig();
    kc.loadFromFile(adminKubeconfig);
    core = kc.makeApiClient(CoreV1Api);
    coordination = kc.makeApiClient(CoordinationV1Api);
    await waitFor(
      "kube-apiserver ready",
      async () => {
        alive();
        return (await kubectl(["get", "--raw", "/readyz"])).stdout.trim() === "ok";
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    if (scheduler)
      start("kube-scheduler", [
        scheduler,
        `--kubeconfig=${adminKubeconfig}`,
        `--authentication-kubeconfig=${adminKubeconfig}`,
        `--authorization-kubeconfig=${adminKubeconfig}`,
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        `--secure-port=${await freePort()}`,
      ]);
    // kube-controller-manager is not running here: do what its service-account controller and
    // root-ca-cert-publisher would, so the kube-api-access volume the ServiceAccount admission adds
    // to every pod can be filled (the kubelet refuses to start a pod whose volume source is missing).
    await core.createNamespacedServiceAccount({
      namespace: "default",
      body: { metadata: { name: "default" } },
    });
    await core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "kube-root-ca.crt" }, data: { "ca.crt": ca.certPem } },
    });

    start(
      "kubelet",
      [
        process.execPath,
        kubeletMain,
        "--kubeconfig",
        kubeconfigFile(join(dir, "kubelet.kubeconfig"), server, ca.certPem, node),
        "--node-name",
        NODE,
        "--node-ip",
        nodeIp,
        "--cluster-name",
        "real",
        "--cni-conf-dir",
        confDir,
        "--cni-bin-dir",
        "/usr/lib/cni",
        "--netns-prefix",
        podPrefix,
        "--cgroup-root",
        cgroupRoot,
        "--state-dir",
        join(dir, "kubelet-state"),
        "--port",
        "10250",
        "--tls-cert-file",
        file("kubelet.crt", kubeletServing.certPem),
        "--tls-private-key-file",
        file("kubelet.key", kubeletServing.keyPem),
        "--client-ca-file",
        caFile,
        "--control-plane",
      ],
      nodeNetns,
    );
  });

  after(async () => {
    for (const p of [...processes].reverse())
      await stopProcess(p.ref, 15_000).catch((error) => console.error("teardown:", error));
    if (process.env.KEEP_LOGS)
      for (const p of processes) console.log(`--- ${p.name}\n${readFileSync(p.log, "utf8").slice(-5000)}`);
    for (const name of readdirSync("/run/netns").filter((n) => n.startsWith(`kr${rand}`)))
      await run(["ip", "netns", "delete", name]).catch((error) => console.error("teardown:", error));
    // the veth goes with its namespace when that was deleted first
    await run(["ip", "link", "delete", hostVeth]).catch(() => undefined);
    if (existsSync(cgroupRoot)) rmdirSync(cgroupRoot);
    rmSync(dir, { recursive: true, force: true });
  });

  const readyCondition = async () =>
    (await core.readNode({ name: NODE })).status?.conditions?.find((c) => c.type === "Ready");

  it("registers its Node with its own credentials, NotReady until a CNI config exists, and holds a Lease", async () => {
    const notReady = await waitFor(
      "node registered",
      async () => {
        alive();
        return await readyCondition();
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    assert.equal(notReady.status, "False");
    assert.match(notReady.message ?? "", /NetworkReady=false reason:NetworkPluginNotReady/);
    const node = await core.readNode({ name: NODE });
    // NodeRestriction keeps node-role labels from kubelets; the taint is the kubelet's to set.
    assert.equal(node.metadata?.labels?.["node-role.kubernetes.io/control-plane"], undefined);
    assert.equal(node.metadata?.labels?.["kubernetes.io/hostname"], NODE);
    // The TaintNodesByCondition admission adds node.kubernetes.io/not-ready (kube-controller-manager,
    // not running here, would lift it once Ready).
    assert.ok(
      node.spec?.taints?.some(
        (t) => t.key === "node-role.kubernetes.io/control-plane" && t.effect === "NoSchedule",
      ),
      JSON.stringify(node.spec?.taints),
    );
    assert.deepEqual({ ...node.status?.addresses?.[0] }, { type: "InternalIP", address: nodeIp });
    assert.ok(Number(node.status?.allocatable?.pods) > 0);
    // The kubelet creates its Lease once its Node exists: wait for it rather than race it.
    const lease = await waitFor(
      "node lease",
      async () => {
        alive();
        return await coordination
          .readNamespacedLease({ name: NODE, namespace: "kube-node-lease" })
          .catch((error: { code?: number }) => {
            if (error.code === 404) return undefined;
            throw error;
          });
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    assert.equal(lease.spec?.holderIdentity, NODE);
    assert.equal(lease.spec?.leaseDurationSeconds, 40);
    assert.equal(lease.metadata?.ownerReferences?.[0].uid, node.metadata?.uid);

    writeFileSync(
      join(confDir, "10-labnet.conflist"),
      JSON.stringify({
        cniVersion: "1.0.0",
        name: "labnet",
        plugins: [
          {
            type: "bridge",
            bridge: `kr${rand}br`,
            isGateway: true,
            ipam: {
              type: "host-local",
              ranges: [[{ subnet: `${subnet}.0/24` }]],
              dataDir: join(dir, "ipam"),
            },
          },
        ],
      }),
    );
    await waitFor("node Ready", async () => (await readyCondition())?.status === "True", {
      timeoutMs: 20_000,
      intervalMs: 200,
    });
    const renewed = await waitFor(
      "lease renewed",
      async () => {
        const now = await coordination.readNamespacedLease({ name: NODE, namespace: "kube-node-lease" });
        return new Date(now.spec?.renewTime ?? 0) > new Date(lease.spec?.renewTime ?? 0) ? now : undefined;
      },
      { timeoutMs: 25_000, intervalMs: 500 },
    );
    const gap =
      new Date(renewed.spec?.renewTime ?? 0).getTime() - new Date(lease.spec?.renewTime ?? 0).getTime();
    assert.ok(gap >= 9_000 && gap <= 15_000, `renewal every ~10 s, saw ${gap} ms`);
  });

  it("runs a scheduled pod and serves kubectl logs, exec and port-forward through the API server", async () => {
    const created = await kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "echo", namespace: "default" },
        spec: {
          ...(scheduler ? {} : { nodeName: NODE }),
          tolerations: [
            { key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" },
            // No kube-controller-manager here to lift the admission's not-ready taint.
            { key: "node.kubernetes.io/not-ready", effect: "NoSchedule" },
          ],
          containers: [{ name: "echo", image: "clustermesh/echo" }],
        },
      }),
    );
    assert.equal(created.status, 0, created.stderr);
    const ticker = await kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "ticker", namespace: "default" },
        spec: {
          nodeName: NODE,
          containers: [
            {
              name: "c",
              image: "busybox",
              command: ["sh", "-c", "while true; do echo tick; sleep 0.3; done"],
            },
          ],
        },
      }),
    );
    assert.equal(ticker.status, 0, ticker.stderr);
    const pod = await waitFor(
      "pod echo Running and Ready",
      async () => {
        alive();
        const p = await core.readNamespacedPod({ name: "echo", namespace: "default" });
        const ready = p.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
        return p.status?.phase === "Running" && ready ? p : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    assert.equal(pod.spec?.nodeName, NODE, scheduler ? "bound by kube-scheduler" : "bound by the test");
    assert.equal(pod.status?.hostIP, nodeIp);
    assert.match(pod.status?.podIP ?? "", new RegExp(`^${subnet.replace(/\./g, "\\.")}\\.`));
    assert.deepEqual(
      pod.status?.podIPs?.map((p) => p.ip),
      [pod.status?.podIP],
    );
    assert.equal(pod.status?.containerStatuses?.[0].ready, true);
    assert.ok(pod.status?.containerStatuses?.[0].state?.running);

    const logs = await kubectl(["logs", "echo", "--tail=1", "--timestamps"]);
    assert.equal(logs.status, 0, logs.stderr);
    assert.match(logs.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z echo: default\/echo on node-r/);
    assert.equal(logs.stdout.trim().split("\n").length, 1);

    // logs -f: lines the container prints later arrive on the open stream.
    const follow = spawn("kubectl", ["--kubeconfig", adminKubeconfig, "logs", "-f", "ticker"]);
    let followed = "";
    follow.stdout.on("data", (c) => {
      followed += c;
    });
    try {
      await waitFor("logs -f connected", () => followed.includes("tick"), { timeoutMs: 15_000 });
      const seen = followed.split("\n").length;
      await waitFor("more lines on the followed stream", () => followed.split("\n").length >= seen + 3, {
        timeoutMs: 15_000,
      });
    } finally {
      follow.kill("SIGTERM");
    }

    const exited = await kubectl(["exec", "echo", "--", "sh", "-c", "echo hi; exit 3"]);
    assert.equal(exited.status, 3, exited.stderr);
    assert.equal(exited.stdout, "hi\n");
    const piped = await kubectl(["exec", "-i", "echo", "--", "sh", "-c", "cat; echo err >&2"], "via stdin\n");
    assert.equal(piped.status, 0, piped.stderr);
    assert.equal(piped.stdout, "via stdin\n");
    assert.match(piped.stderr, /err/);
    // -it needs a terminal on kubectl's side: script(1) gives it one.
    const tty = await exec("script", [
      "-q",
      "-e",
      "-c",
      `kubectl --kubeconfig ${adminKubeconfig} exec -it echo -- sh -c 'echo hi; tty; exit 3'`,
      "/dev/null",
    ]);
    assert.equal(tty.status, 3, tty.stdout + tty.stderr);
    assert.match(tty.stdout, /hi\r?\n\/dev\/pts\//);

    // port-forward: kubectl (WebSocket or SPDY) -> API server -> SPDY -> kubelet -> pod localhost:8080.
    const forward = spawn("kubectl", ["--kubeconfig", adminKubeconfig, "port-forward", "pod/echo", ":8080"]);
    let forwardOut = "";
    forward.stdout.on("data", (c) => {
      forwardOut += c;
    });
    forward.stderr.on("data", (c) => {
      forwardOut += c;
    });
    try {
      const localPort = await waitFor(
        "port-forward listening",
        () => /Forwarding from 127\.0\.0\.1:(\d+)/.exec(forwardOut)?.[1],
        { timeoutMs: 20_000 },
      );
      for (const path of ["first", "second"]) {
        const body = JSON.parse(
          await run(["curl", "-s", "--max-time", "5", `http://127.0.0.1:${localPort}/${path}`]),
        );
        assert.equal(body.pod, "echo");
      }
    } finally {
      forward.kill("SIGTERM");
    }
  });

  it("deletes a pod gracefully: stops it, then removes the object with grace 0", async () => {
    const pod = await core.readNamespacedPod({ name: "echo", namespace: "default" });
    const netns = podNetnsName(podPrefix, pod.metadata?.uid ?? "");
    assert.ok(existsSync(`/run/netns/${netns}`));
    const deleted = await kubectl(["delete", "pod", "echo", "ticker", "--wait=true", "--timeout=60s"]);
    assert.equal(deleted.status, 0, deleted.stderr);
    await assert.rejects(core.readNamespacedPod({ name: "echo", namespace: "default" }), /404|not found/i);
    assert.ok(!existsSync(`/run/netns/${netns}`));
    alive();
  });
});
