import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import WebSocket from "ws";
import { createCa, issueClientCert, issueServerCert } from "../../certs/authority.js";
import { run } from "../../lib/exec.js";
import { silentLogger } from "../../lib/log.js";
import { isRunning, waitFor } from "../../lib/process.js";
import { CniRuntime } from "./cni.js";
import { FakeKubeletApi } from "./fake-api.js";
import { Kubelet } from "./kubelet.js";
import { cgroup2Mount, cgroupPids, netnsExists, podCgroupName, podNetnsName } from "./sandbox.js";
import { KubeletServer } from "./server.js";
import { SpdyTestClient } from "./spdy/test-client.js";
import { StateStore } from "./state.js";

/**
 * The pod runner against Debian's reference CNI plugins (bridge + host-local), in a node netns
 * created for this run. The kubelet logic runs in-process with a fake API; plugins run in the node
 * netns (as they do when the kubelet itself is started there).
 */

const rand = randomBytes(2).toString("hex");
const nodeNetns = `kl${rand}node`;
const podPrefix = `kl${rand}p`;
const bridge = `kl${rand}br`;
const subnet = `10.250.${Number.parseInt(rand.slice(0, 2), 16)}`;
const dir = mkdtempSync(join(tmpdir(), `kubelet-test-${rand}-`));
const confDir = join(dir, "cni-conf");
const cgroupRoot = join(cgroup2Mount(), `clustermesh-test-${rand}`);
const ca = createCa();
const serverCert = issueServerCert(ca, { commonName: "system:node:test" });
const clientCert = issueClientCert(ca, { commonName: "apiserver" });

const conflist = {
  cniVersion: "1.0.0",
  name: "labnet",
  plugins: [
    {
      type: "bridge",
      bridge,
      isGateway: true,
      ipMasq: false,
      ipam: { type: "host-local", ranges: [[{ subnet: `${subnet}.0/24` }]], dataDir: join(dir, "ipam") },
    },
  ],
};

const api = new FakeKubeletApi();
let kubelet: Kubelet;
let server: KubeletServer;
let port = 0;

function podNamed(name: string): V1Pod | undefined {
  return api.pods.get(name);
}

async function waitRunning(name: string): Promise<V1Pod> {
  return waitFor(
    `pod ${name} running with an IP`,
    () => {
      const pod = podNamed(name);
      return pod?.status?.phase === "Running" && pod.status.podIP ? pod : undefined;
    },
    { timeoutMs: 15_000 },
  );
}

function httpsGet(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path, ca: ca.certPem, cert: clientCert.certPem, key: clientCert.keyPem },
      (res) => {
        let body = "";
        res.on("data", (c) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** Runs an exec over the WebSocket protocol; returns stdout, stderr and the error-channel status. */
function wsExec(
  pod: string,
  command: string[],
  stdin?: string,
): Promise<{ stdout: string; stderr: string; status: string }> {
  const query = new URLSearchParams();
  for (const c of command) query.append("command", c);
  query.set("stdout", "true");
  query.set("stderr", "true");
  if (stdin !== undefined) query.set("stdin", "true");
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(
      `wss://127.0.0.1:${port}/api/v1/namespaces/default/pods/${pod}/exec?${query}`,
      ["v5.channel.k8s.io"],
      {
        ca: ca.certPem,
        cert: clientCert.certPem,
        key: clientCert.keyPem,
      },
    );
    let stdout = "";
    let stderr = "";
    let status = "";
    ws.on("open", () => {
      if (stdin !== undefined) {
        ws.send(Buffer.concat([Buffer.from([0]), Buffer.from(stdin)]));
        ws.send(Buffer.from([255, 0]));
      }
    });
    ws.on("message", (data: Buffer) => {
      const text = data.subarray(1).toString();
      if (data[0] === 1) stdout += text;
      else if (data[0] === 2) stderr += text;
      else if (data[0] === 3) status += text;
    });
    ws.on("close", () => resolve({ stdout, stderr, status }));
    ws.on("error", reject);
  });
}

const tls = { ca: ca.certPem, cert: clientCert.certPem, key: clientCert.keyPem };

/**
 * An exec over SPDY/3.1 the way kube-apiserver runs it against a kubelet: the kubelet's query
 * names (input/output/error=1), streams opened error, stdin, stdout, stderr, stdin half-closed.
 */
async function spdyExec(
  pod: string,
  command: string[],
  stdin?: string,
): Promise<{ protocol: string; stdout: string; stderr: string; status: string }> {
  const query = new URLSearchParams();
  for (const c of command) query.append("command", c);
  query.set("output", "1");
  query.set("error", "1");
  if (stdin !== undefined) query.set("input", "1");
  const client = await SpdyTestClient.connect({
    host: "127.0.0.1",
    port,
    path: `/exec/default/${pod}/echo?${query}`,
    protocols: ["v5.channel.k8s.io", "v4.channel.k8s.io"],
    tls,
  });
  try {
    const error = client.openStream({ streamType: ["error"] });
    const input = stdin !== undefined ? client.openStream({ streamType: ["stdin"] }) : undefined;
    const stdout = client.openStream({ streamType: ["stdout"] });
    const stderr = client.openStream({ streamType: ["stderr"] });
    await Promise.all([error.replied, input?.replied, stdout.replied, stderr.replied]);
    if (input) {
      client.write(input, stdin ?? "");
      client.end(input);
    }
    const [out, err, status] = await Promise.all([stdout.ended, stderr.ended, error.ended]);
    return {
      protocol: client.protocol,
      stdout: out.toString(),
      stderr: err.toString(),
      status: status.toString(),
    };
  } finally {
    client.close();
  }
}

describe("lab kubelet with bridge + host-local (root)", { timeout: 120_000 }, () => {
  before(async () => {
    mkdirSync(confDir, { recursive: true });
    await run(["ip", "netns", "add", nodeNetns]);
    await run(["ip", "link", "set", "lo", "up"], { netns: nodeNetns });
    kubelet = new Kubelet({
      identity: {
        name: "node-a",
        ips: ["192.0.2.10"],
        port: 10250,
        controlPlane: false,
        taints: [],
        labels: {},
      },
      clusterName: "c1",
      netnsPrefix: podPrefix,
      cgroupRoot,
      cni: new CniRuntime(confDir, ["/usr/lib/cni"], nodeNetns),
      state: new StateStore(join(dir, "state")),
      api,
      log: silentLogger(),
      networkCheckMs: 100,
      restartBackoffMs: 200,
      sandboxRetryMs: 3_000,
    });
    server = new KubeletServer({
      tls: { cert: serverCert.certPem, key: serverCert.keyPem, ca: ca.certPem },
      address: "127.0.0.1",
      port: 0,
      pods: kubelet,
      log: silentLogger(),
    });
    port = await server.listen();
    await kubelet.start();
  });

  after(async () => {
    await kubelet?.stop().catch((error) => console.error("teardown:", error));
    await server?.close().catch((error) => console.error("teardown:", error));
    // Whatever a failed test left: pod netns of this run, the node netns, cgroups, files.
    for (const name of readdirSync("/run/netns").filter((n) => n.startsWith(`kl${rand}`))) {
      await run(["ip", "netns", "delete", name]).catch((error) => console.error("teardown:", error));
    }
    if (existsSync(cgroupRoot)) {
      for (const child of readdirSync(cgroupRoot, { withFileTypes: true }).filter((d) => d.isDirectory())) {
        const path = join(cgroupRoot, child.name);
        if (cgroupPids(path).length) writeFileSync(join(path, "cgroup.kill"), "1");
        // if it never empties, rmdirSync below fails with EBUSY and names the cgroup
        await waitFor("cgroup empty", () => cgroupPids(path).length === 0).catch(() => undefined);
        rmdirSync(path);
      }
      rmdirSync(cgroupRoot);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("reports the node Ready only once the CNI config dir has a valid config", async () => {
    const ready = () => api.node?.status?.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready()?.status, "False");
    assert.match(ready()?.message ?? "", /NetworkReady=false.*no network config/);
    assert.equal(api.node?.status?.daemonEndpoints?.kubeletEndpoint?.Port, 10250);
    assert.deepEqual(api.node?.status?.addresses?.[0], { type: "InternalIP", address: "192.0.2.10" });
    writeFileSync(join(confDir, "10-labnet.conflist"), JSON.stringify(conflist));
    await waitFor("node Ready", () => ready()?.status === "True", { timeoutMs: 5_000 });
  });

  it("starts two pods through CNI that reach each other, with logs and exec", async () => {
    const echo = { containers: [{ name: "echo", image: "clustermesh/echo" }] };
    api.createPod("echo-a", "node-a", echo);
    api.createPod("echo-b", "node-a", echo);
    const a = await waitRunning("echo-a");
    const b = await waitRunning("echo-b");
    assert.match(a.status?.podIP ?? "", new RegExp(`^${subnet.replace(/\./g, "\\.")}\\.`));
    assert.notEqual(a.status?.podIP, b.status?.podIP);
    assert.equal(a.status?.hostIP, "192.0.2.10");
    const netnsA = podNetnsName(podPrefix, a.metadata?.uid ?? "");
    assert.ok(netnsExists(netnsA));
    // HTTP from pod A to pod B, inside A's namespace.
    const answer = await waitFor(
      "echo-b to answer echo-a",
      async () =>
        run(["curl", "-s", "--max-time", "2", `http://${b.status?.podIP}:8080/hello`], { netns: netnsA }),
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    const body = JSON.parse(answer);
    assert.equal(body.pod, "echo-b");
    assert.equal(body.namespace, "default");
    assert.equal(body.node, "node-a");
    assert.equal(body.cluster, "c1");
    assert.equal(body.client, a.status?.podIP);
    await run(["ping", "-c", "1", "-W", "2", b.status?.podIP ?? ""], { netns: netnsA });

    // Logs through the HTTPS endpoint (mutual TLS).
    // (the container's output reaches its log file asynchronously: wait for the start-up line)
    let logs = { status: 0, body: "" };
    await waitFor(
      "echo-a's start-up line in its log",
      async () => {
        logs = await httpsGet("/api/v1/namespaces/default/pods/echo-a/log?tailLines=5");
        return logs.status === 200 && /echo: default\/echo-a on node-a \(c1\)/.test(logs.body);
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    ).catch((error) => {
      throw new Error(
        `${(error as Error).message}; last answer ${logs.status} ${JSON.stringify(logs.body)}`,
        {
          cause: error,
        },
      );
    });

    // Exec over WebSocket v5: runs in the pod netns, stdin works, exit codes come back.
    const ok = await wsExec("echo-a", ["sh", "-c", "cat; ip -4 -o addr show eth0; hostname"], "from-stdin\n");
    assert.match(ok.stdout, /from-stdin/);
    assert.match(ok.stdout, /^echo-a$/m, "the container's UTS namespace has the pod's hostname");
    assert.match(ok.stdout, new RegExp(`inet ${a.status?.podIP}/`));
    assert.match(ok.status, /"Success"/);
    const failed = await wsExec("echo-a", ["sh", "-c", "echo oops >&2; exit 7"]);
    assert.match(failed.stderr, /oops/);
    const status = JSON.parse(failed.status);
    assert.equal(status.reason, "NonZeroExitCode");
    assert.equal(status.details.causes[0].message, "7");
  });

  it("serves exec and port-forward over SPDY/3.1 as kube-apiserver calls them, and renews its lease", async () => {
    const a = podNamed("echo-a") as V1Pod;
    const ok = await spdyExec("echo-a", ["sh", "-c", "cat; ip -4 -o addr show eth0"], "from-stdin\n");
    assert.equal(ok.protocol, "v4.channel.k8s.io");
    assert.match(ok.stdout, /from-stdin/);
    assert.match(ok.stdout, new RegExp(`inet ${a.status?.podIP}/`));
    assert.deepEqual(JSON.parse(ok.status), { metadata: {}, status: "Success" });
    const failed = await spdyExec("echo-a", ["sh", "-c", "echo hi; echo oops >&2; exit 3"]);
    assert.equal(failed.stdout, "hi\n");
    assert.equal(failed.stderr, "oops\n");
    const status = JSON.parse(failed.status);
    assert.equal(status.reason, "NonZeroExitCode");
    assert.deepEqual(status.details.causes, [{ reason: "ExitCode", message: "3" }]);

    // Port-forward: an error and a data stream per connection; HTTP to the echo server on the
    // pod's localhost:8080.
    const client = await SpdyTestClient.connect({
      host: "127.0.0.1",
      port,
      path: "/portForward/default/echo-a",
      protocols: ["portforward.k8s.io"],
      tls,
    });
    try {
      assert.equal(client.protocol, "portforward.k8s.io");
      for (const requestId of ["0", "1"]) {
        const error = client.openStream({ streamType: ["error"], port: ["8080"], requestID: [requestId] });
        const data = client.openStream({ streamType: ["data"], port: ["8080"], requestID: [requestId] });
        await Promise.all([error.replied, data.replied]);
        // The client half-closes after its request, as `nc -N` does; the answer still comes.
        client.write(data, `GET /via-port-forward-${requestId} HTTP/1.0\r\nHost: x\r\n\r\n`, true);
        const response = (await data.ended).toString();
        assert.match(response, /^HTTP\/1\.[01] 200/);
        assert.equal(JSON.parse(response.slice(response.indexOf("\r\n\r\n") + 4)).pod, "echo-a");
        assert.equal((await error.ended).toString(), "");
      }
      // Nothing listens on 9 in the pod: the error stream says so and both streams are reset.
      const error = client.openStream({ streamType: ["error"], port: ["9"], requestID: ["2"] });
      const data = client.openStream({ streamType: ["data"], port: ["9"], requestID: ["2"] });
      assert.match(
        (await error.ended).toString(),
        /error forwarding port 9 to pod echo-a, uid .*connection refused/,
      );
      await data.ended;
      assert.ok(data.reset);
      // A stream without a port is refused.
      const bad = client.openStream({ streamType: ["data"] });
      await assert.rejects(bad.replied, /reset/);
    } finally {
      client.close();
    }

    // Attach: the container's output from now on, on the stdout stream.
    api.createPod("ticker", "node-a", {
      containers: [
        { name: "c", image: "busybox", command: ["sh", "-c", "while true; do echo tick; sleep 0.2; done"] },
      ],
    });
    await waitRunning("ticker");
    const attach = await SpdyTestClient.connect({
      host: "127.0.0.1",
      port,
      path: "/attach/default/ticker/c?output=1&error=1",
      protocols: ["v4.channel.k8s.io"],
      tls,
    });
    try {
      const streams = ["error", "stdout", "stderr"].map((type) => attach.openStream({ streamType: [type] }));
      await Promise.all(streams.map((s) => s.replied));
      await waitFor("ticks on the attached stdout", () =>
        /tick\ntick\n/.test(Buffer.concat(streams[1].received).toString()),
      );
    } finally {
      attach.close();
    }
    api.requestDelete("ticker", 1);
    await waitFor("ticker deleted", () => !api.pods.has("ticker"), { timeoutMs: 10_000 });

    // No common protocol: 403 naming what the kubelet accepts.
    await assert.rejects(
      SpdyTestClient.connect({
        host: "127.0.0.1",
        port,
        path: "/exec/default/echo-a/echo?command=true&output=1",
        protocols: ["v9.channel.k8s.io"],
        tls,
      }),
      /403 Forbidden: unable to upgrade: unable to negotiate protocol/,
    );
    assert.ok(api.leaseRenewals.length >= 1);
    assert.equal(api.leaseRenewals[0].durationSeconds, 40);
  });

  it("deleting the pods leaves no netns, process, cgroup or record behind", async () => {
    const pods = ["echo-a", "echo-b"].map((name) => podNamed(name) as V1Pod);
    const uids = pods.map((p) => p.metadata?.uid ?? "");
    const state = new StateStore(join(dir, "state"));
    const processes = uids.flatMap((uid) => state.loadPod(uid)?.processes ?? []);
    assert.equal(processes.length, 2);
    for (const pod of pods) api.requestDelete(pod.metadata?.name ?? "");
    await waitFor("pods deleted by the kubelet", () => api.pods.size === 0, { timeoutMs: 15_000 });
    for (const uid of uids) {
      assert.ok(!netnsExists(podNetnsName(podPrefix, uid)));
      assert.ok(!existsSync(join(cgroupRoot, podCgroupName(uid))));
      assert.equal(state.loadPod(uid), undefined);
    }
    for (const ref of processes) assert.ok(!isRunning(ref), `PID ${ref.pid} still running`);
    // host-local released the addresses (CNI DEL ran).
    const leases = readdirSync(join(dir, "ipam", "labnet")).filter((f) => f.startsWith(subnet));
    assert.deepEqual(leases, []);
  });

  it("restarts a failing container per restartPolicy and gates Ready on a readiness probe", async () => {
    api.createPod("crasher", "node-a", {
      restartPolicy: "OnFailure",
      containers: [{ name: "c", image: "busybox", command: ["sh", "-c", "echo started; exit 3"] }],
    });
    api.createPod("probed", "node-a", {
      containers: [
        {
          name: "c",
          image: "clustermesh/client",
          // the container sees the test's directory only through a hostPath volume
          volumeMounts: [{ name: "flags", mountPath: "/flags" }],
          readinessProbe: { exec: { command: ["test", "-f", "/flags/ready-flag"] }, periodSeconds: 1 },
        },
      ],
      volumes: [{ name: "flags", hostPath: { path: dir, type: "Directory" } }],
    });
    await waitFor(
      "crasher restarted twice",
      () => (podNamed("crasher")?.status?.containerStatuses?.[0].restartCount ?? 0) >= 2,
      {
        timeoutMs: 15_000,
      },
    );
    const crasher = podNamed("crasher");
    assert.equal(crasher?.status?.containerStatuses?.[0].lastState?.terminated?.exitCode, 3);
    const probed = await waitRunning("probed");
    assert.equal(probed.status?.conditions?.find((c) => c.type === "Ready")?.status, "False");
    writeFileSync(join(dir, "ready-flag"), "");
    await waitFor(
      "probed Ready",
      () => podNamed("probed")?.status?.conditions?.find((c) => c.type === "Ready")?.status === "True",
      {
        timeoutMs: 5_000,
      },
    );
    api.requestDelete("crasher");
    api.requestDelete("probed");
    await waitFor("pods deleted", () => api.pods.size === 0, { timeoutMs: 15_000 });
  });

  it("runs init containers first, mounts configMap/secret/emptyDir/downwardAPI/projected token volumes, fills env refs, and shows no host state", async () => {
    api.configMaps.set("default/settings", { "app.conf": "level=debug\n" });
    api.secrets.set("default/creds", { password: "s3cret" });
    api.createPod("volumes", "node-a", {
      initContainers: [
        {
          name: "prepare",
          image: "busybox",
          command: ["sh", "-c", "echo prepared > /scratch/ready"],
          volumeMounts: [{ name: "work", mountPath: "/scratch" }],
        },
      ],
      containers: [
        {
          name: "c",
          image: "clustermesh/client",
          env: [
            { name: "PASSWORD", valueFrom: { secretKeyRef: { name: "creds", key: "password" } } },
            { name: "ME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
          ],
          volumeMounts: [
            { name: "work", mountPath: "/scratch" },
            { name: "settings", mountPath: "/etc/app", readOnly: true },
            { name: "creds", mountPath: "/etc/creds/password", subPath: "password" },
            { name: "info", mountPath: "/etc/podinfo" },
            { name: "token", mountPath: "/var/run/secrets/tokens" },
          ],
        },
      ],
      volumes: [
        { name: "work", emptyDir: {} },
        { name: "settings", configMap: { name: "settings" } },
        { name: "creds", secret: { secretName: "creds", defaultMode: 0o400 } },
        {
          name: "info",
          downwardAPI: { items: [{ path: "labels", fieldRef: { fieldPath: "metadata.labels" } }] },
        },
        {
          name: "token",
          projected: { sources: [{ serviceAccountToken: { path: "token", expirationSeconds: 3600 } }] },
        },
      ],
    });
    const pod = await waitRunning("volumes");
    assert.equal(pod.status?.initContainerStatuses?.[0].state?.terminated?.exitCode, 0);
    assert.equal(pod.status?.conditions?.find((c) => c.type === "Initialized")?.status, "True");
    const seen = await wsExec("volumes", [
      "sh",
      "-c",
      'cat /scratch/ready /etc/app/app.conf /etc/creds/password; echo; cat /var/run/secrets/tokens/token; echo; echo "$PASSWORD $ME"; stat -c %a /etc/creds/password; touch /etc/app/x 2>/dev/null || echo read-only; ls /run',
    ]);
    assert.deepEqual(
      seen.stdout.trim().split("\n"),
      [
        "prepared",
        "level=debug",
        "s3cret",
        "token-for-default/volumes",
        "s3cret volumes",
        "400",
        "read-only",
        "secrets",
      ],
      seen.stderr,
    );
    api.requestDelete("volumes", 1);
    await waitFor("pod volumes deleted", () => !api.pods.has("volumes"), { timeoutMs: 15_000 });
  });

  it("an image it cannot run gives ErrImagePull and an event", async () => {
    api.createPod("nginx", "node-a", { containers: [{ name: "web", image: "nginx:1.27" }] });
    const pod = await waitFor("ErrImagePull", () => {
      const p = podNamed("nginx");
      return p?.status?.containerStatuses?.[0].state?.waiting?.reason === "ErrImagePull" ? p : undefined;
    });
    assert.equal(pod.status?.phase, "Pending");
    assert.ok(
      api.events.some((e) => e.pod === "nginx" && e.type === "Warning" && /not a lab image/.test(e.message)),
    );
    api.requestDelete("nginx");
    await waitFor("pod deleted", () => api.pods.size === 0, { timeoutMs: 10_000 });
  });

  it("a CNI plugin that fails or prints invalid JSON leaves the pod Pending with an event and nothing behind", async () => {
    const binDir = join(dir, "bad-bin");
    mkdirSync(binDir, { recursive: true });
    writeFileSync(join(binDir, "garbage"), "#!/bin/sh\ncat >/dev/null\necho 'this is not json'\n");
    chmodSync(join(binDir, "garbage"), 0o755);
    writeFileSync(
      join(binDir, "refuse"),
      `#!/bin/sh\ncat >/dev/null\necho '{"cniVersion":"1.0.0","code":11,"msg":"no addresses left","details":"pool exhausted"}'\nexit 1\n`,
    );
    chmodSync(join(binDir, "refuse"), 0o755);
    for (const plugin of ["garbage", "refuse"]) {
      const failing = new Kubelet({
        identity: {
          name: `node-${plugin}`,
          ips: ["192.0.2.11"],
          port: 10250,
          controlPlane: false,
          taints: [],
          labels: {},
        },
        clusterName: "c1",
        netnsPrefix: `${podPrefix}${plugin[0]}`,
        cgroupRoot,
        cni: new CniRuntime(join(dir, `conf-${plugin}`), [binDir], nodeNetns),
        state: new StateStore(join(dir, `state-${plugin}`)),
        api,
        log: silentLogger(),
        sandboxRetryMs: 60_000,
      });
      mkdirSync(join(dir, `conf-${plugin}`), { recursive: true });
      writeFileSync(
        join(dir, `conf-${plugin}`, "10-bad.conflist"),
        JSON.stringify({ cniVersion: "1.0.0", name: "bad", plugins: [{ type: plugin }] }),
      );
      await failing.start();
      try {
        const pod = api.createPod(`victim-${plugin}`, `node-${plugin}`, {
          containers: [{ name: "c", image: "clustermesh/client" }],
        });
        const event = await waitFor("FailedCreatePodSandBox event", () =>
          api.events.find((e) => e.pod === `victim-${plugin}` && e.reason === "FailedCreatePodSandBox"),
        );
        assert.match(
          event.message,
          plugin === "garbage"
            ? /invalid result JSON.*this is not json/
            : /no addresses left: pool exhausted/,
        );
        await waitFor(
          "status reported",
          () => podNamed(`victim-${plugin}`)?.status?.conditions !== undefined,
        );
        assert.equal(podNamed(`victim-${plugin}`)?.status?.phase, "Pending");
        assert.ok(!netnsExists(podNetnsName(`${podPrefix}${plugin[0]}`, pod.metadata?.uid ?? "")));
        assert.ok(!existsSync(join(cgroupRoot, podCgroupName(pod.metadata?.uid ?? ""))));
        assert.deepEqual(readdirSync(join(dir, `state-${plugin}`, "pods")), []);
        api.requestDelete(`victim-${plugin}`);
        await waitFor("victim deleted", () => !api.pods.has(`victim-${plugin}`), { timeoutMs: 10_000 });
      } finally {
        await failing.stop();
      }
    }
    assert.ok(readFileSync(join(confDir, "10-labnet.conflist"), "utf8").includes(bridge));
  });
});
