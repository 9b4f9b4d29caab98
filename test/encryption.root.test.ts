/**
 * Transparent encryption in a lab (issue 7), one lab per mode (WireGuard, then IPsec), two clusters
 * connected into a mesh: pod to pod across nodes of one cluster and across clusters works, and a
 * capture on the lab bridge shows only WireGuard UDP / UDP-encapsulated ESP between nodes — never
 * a pod address or the client's marker; a node whose MeshNode is deleted stops being a peer (its
 * traffic is dropped, not sent plain) and becomes one again when its agent re-publishes it; IPsec
 * key rotation under a steady request loop loses no request; connect refuses a mode mismatch.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { EncryptionStatus } from "../agent/encryption/controller.js";
import { wireGuardInterfaceName } from "../agent/encryption/wireguard/device.js";
import { agentStatus } from "../lab/agent-status.js";
import { labDir } from "../lab/state.js";
import { connectProblems, readClusterAccess } from "../lib/clustermesh/access.js";
import { coreApi, kubeConfigFor } from "../lib/k8s/client.js";
import { isRunning, type ProcessRef, startDaemon, stopProcess, waitFor } from "../lib/process.js";
import { kubectl, type LabFixture, labFixture, labUpArgs, MESHCTL } from "./lab-fixture.js";

const MARKER = "ENCRYPTION-MARKER-5f3a9c";

/** The same global service in both clusters: its ClusterIP in c1 balances over both echo pods. */
const GLOBAL_SERVICE = `---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: demo, annotations: {service.cilium.io/global: "true"}}
spec:
  selector: {app: echo}
  ports: [{port: 8080, targetPort: 8080}]
`;

function meshctlLong(fixture: LabFixture, args: string[], timeoutMs = 300_000) {
  const result = spawnSync(process.execPath, [MESHCTL, ...args], {
    encoding: "utf8",
    env: fixture.env,
    timeout: timeoutMs,
  });
  assert.equal(result.status, 0, `meshctl ${args.join(" ")}:\n${result.stderr}`);
  return result.stdout;
}

const MODES = (["wireguard", "ipsec"] as const).filter(
  (mode) => !process.env.MESH_TEST_ENCRYPTION || process.env.MESH_TEST_ENCRYPTION === mode,
);

for (const mode of MODES) {
  describe(`${mode} encryption across nodes and clusters (root: full lab)`, { timeout: 600_000 }, () => {
    let fixture: LabFixture;
    const nodeNames = ["c1-control-plane", "c1-worker", "c2-control-plane"];
    const k = (cluster: string, args: string[]) => {
      const result = kubectl(fixture, cluster, args);
      assert.equal(result.status, 0, `kubectl ${args.join(" ")}: ${result.stderr}`);
      return result.stdout;
    };
    const podIp = (cluster: string, name: string): string =>
      JSON.parse(k(cluster, ["-n", "demo", "get", "pod", name, "-o", "json"])).status.podIP ?? "";
    const curl = (target: string, path: string, seconds = 3) =>
      kubectl(fixture, "c1", [
        "-n",
        "demo",
        "exec",
        "client",
        "--",
        "sh",
        "-c",
        `curl -s -m ${seconds} http://${target}:8080/${path}`,
      ]);
    const encryption = async (node: string) =>
      (await agentStatus(fixture.name, node)).encryption as EncryptionStatus;

    before(async () => {
      fixture = await labFixture([{ workers: 1 }, { workers: 0 }]);
      meshctlLong(fixture, [...labUpArgs(fixture), "--encryption", mode]);
      for (const [cluster, manifest] of [
        [
          "c1",
          `apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: v1
kind: Pod
metadata: {name: echo, namespace: demo, labels: {app: echo}}
spec:
  nodeName: c1-worker
  containers: [{name: echo, image: clustermesh/echo, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: demo}
spec:
  nodeName: c1-control-plane
  containers: [{name: client, image: clustermesh/client}]
${GLOBAL_SERVICE}`,
        ],
        [
          "c2",
          `apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: v1
kind: Pod
metadata: {name: echo, namespace: demo, labels: {app: echo}}
spec:
  nodeName: c2-control-plane
  containers: [{name: echo, image: clustermesh/echo, ports: [{containerPort: 8080}]}]
${GLOBAL_SERVICE}`,
        ],
      ] as const) {
        const file = join(fixture.dir, `${cluster}.yaml`);
        writeFileSync(file, manifest);
        k(cluster, ["apply", "-f", file]);
      }
      await waitFor(
        "pods running",
        () => podIp("c1", "echo") && podIp("c1", "client") && podIp("c2", "echo"),
        { timeoutMs: 180_000, intervalMs: 1_000 },
      );
      meshctlLong(fixture, [
        "clustermesh",
        "connect",
        "--context",
        `${fixture.name}-c1`,
        "--destination-context",
        `${fixture.name}-c2`,
      ]);
    });

    after(() => {
      if (!fixture || process.env.KEEP_LAB) return;
      // wireguard-go is killed with its netns by lab down; its UAPI socket (global path) is ours to remove
      const sockets = nodeNames.map(
        (node) =>
          `/var/run/wireguard/${wireGuardInterfaceName(join(labDir(fixture.name), "nodes", node, "agent"))}.sock`,
      );
      spawnSync(process.execPath, [MESHCTL, "lab", "down", "--name", fixture.name], {
        env: fixture.env,
        timeout: 180_000,
      });
      for (const socket of sockets) rmSync(socket, { force: true });
      fixture.cleanup();
    });

    it("pod to pod across nodes and clusters: the bridge carries only encrypted traffic", async () => {
      const echo = podIp("c1", "echo");
      const remoteEcho = podIp("c2", "echo");
      // across clusters: the remote cluster's nodes become peers once the mesh has synced
      await waitFor("pod to pod across clusters", () => curl(remoteEcho, "warmup").status === 0, {
        timeoutMs: 120_000,
        intervalMs: 1_000,
      });
      const capture = startCapture(fixture, `${fixture.name}-br`);
      await capture.ready();
      let local: ReturnType<typeof curl>;
      let remote: ReturnType<typeof curl>;
      try {
        local = curl(echo, `${MARKER}-local`);
        remote = curl(remoteEcho, `${MARKER}-remote`);
      } finally {
        await capture.stop();
      }
      assert.equal(local.status, 0, `c1 client → c1 echo: ${local.stderr}`);
      assert.equal(JSON.parse(local.stdout).pod, "echo");
      assert.equal(remote.status, 0, `c1 client → c2 echo: ${remote.stderr}`);
      assert.equal(JSON.parse(remote.stdout).cluster, "c2");

      const raw = readFileSync(capture.file);
      assert.ok(!raw.includes(Buffer.from(MARKER)), "the client's marker crossed the bridge in plain text");
      const lines = spawnSync("tcpdump", ["-nn", "-r", capture.file], { encoding: "utf8" }).stdout.split(
        "\n",
      );
      const podPrefix = fixture.prefixes[1].split(".").slice(0, 2).join(".");
      const withPodAddresses = lines.filter((l) => l.includes(` ${podPrefix}.`));
      assert.deepEqual(withPodAddresses, [], "pod addresses visible on the bridge");
      const encrypted = lines.filter((l) =>
        mode === "wireguard" ? /\.51871 > .*\.51871: UDP/.test(l) : /UDP-encap: ESP|: ESP\(/.test(l),
      );
      assert.ok(encrypted.length >= 4, `expected encrypted packets, got:\n${lines.join("\n")}`);

      // the status snapshot is refreshed by each sync (every 5 s at most)
      const status = await waitFor(
        "peers with a handshake / SAs in the agent's status",
        async () => {
          const current = await encryption("c1-control-plane");
          const settled =
            mode === "wireguard"
              ? current.peers.every((p) => p.lastHandshake)
              : current.peers.every((p) => (p.sas?.child ?? 0) >= 1);
          return current.peers.length === 2 && settled ? current : undefined;
        },
        { timeoutMs: 15_000, intervalMs: 500 },
      );
      assert.equal(status.mode, mode);
      assert.equal(status.backend, mode === "wireguard" ? "wireguard-go" : "strongswan-libipsec");
      const peerNames = status.peers.map((p) => `${p.cluster}/${p.node}`).sort();
      assert.deepEqual(peerNames, ["c1/c1-worker", "c2/c2-control-plane"]);
      if (mode === "wireguard") {
        assert.ok(
          status.peers.every((p) => p.lastHandshake),
          "every peer has a handshake",
        );
      } else {
        assert.ok(
          status.peers.every((p) => (p.sas?.child ?? 0) >= 1),
          JSON.stringify(status.saCounts),
        );
        assert.equal(status.keyId, 3);
      }
      assert.deepEqual(status.skipped, []);
    });

    it("the global service is answered by both clusters through the encrypted paths", async () => {
      const clusterIp = k("c1", ["-n", "demo", "get", "svc", "echo", "-o", "jsonpath={.spec.clusterIP}"]);
      const answeredBy = new Set<string>();
      await waitFor(
        "answers from both clusters through the global service",
        () => {
          const answer = curl(clusterIp, "global");
          if (answer.status === 0) answeredBy.add(JSON.parse(answer.stdout).cluster);
          return answeredBy.size === 2;
        },
        { timeoutMs: 60_000, intervalMs: 200 },
      );
      assert.deepEqual([...answeredBy].sort(), ["c1", "c2"]);
    });

    it("a node whose record goes away stops being a peer (dropped, not plain) and comes back", async () => {
      const echo = podIp("c1", "echo");
      k("c1", ["delete", "meshnode", "c1-worker"]);
      await waitFor(
        "c1-worker skipped on c1-control-plane",
        async () => (await encryption("c1-control-plane")).skipped.some((s) => s.node === "c1/c1-worker"),
        { timeoutMs: 30_000, intervalMs: 500 },
      );
      assert.notEqual(
        curl(echo, "while-removed", 2).status,
        0,
        "traffic to a node without a peer must not pass",
      );
      meshctlLong(fixture, ["lab", "restart", "agent", "--name", fixture.name, "--node", "c1-worker"]);
      await waitFor(
        "c1-worker a peer again and reachable",
        async () => {
          const status = await encryption("c1-control-plane");
          return (
            status.peers.some((p) => p.node === "c1-worker") &&
            !status.skipped.some((s) => s.node === "c1/c1-worker") &&
            curl(echo, "re-added", 2).status === 0
          );
        },
        { timeoutMs: 90_000, intervalMs: 1_000 },
      );
    });

    if (mode === "ipsec") {
      it("key rotation 3 → 4 under a steady request loop loses no request", async () => {
        const echo = podIp("c1", "echo");
        const before = (await encryption("c1-control-plane")).saCounts?.byConnection ?? {};
        const spisBefore = Object.values(before).flatMap((c) => c.spis);
        const loopLog = join(fixture.dir, "loop.log");
        // Lab pods see the host's file system: the stop signal lives in this run's own directory.
        const stopFile = join(fixture.dir, "stop-loop");
        const loop: ProcessRef = startDaemon({
          argv: [
            "kubectl",
            "--context",
            `${fixture.name}-c1`,
            "-n",
            "demo",
            "exec",
            "client",
            "--",
            "sh",
            "-c",
            `ok=0; fail=0; while [ ! -e ${stopFile} ]; do if curl -s -m 2 -o /dev/null http://${echo}:8080/loop; then ok=$((ok+1)); else fail=$((fail+1)); fi; echo "ok=$ok fail=$fail"; done`,
          ],
          logFile: loopLog,
          env: fixture.env,
        });
        try {
          await waitFor(
            "the loop running",
            () => {
              const log = readFileSync(loopLog, "utf8");
              if (/ok=[1-9]/.test(log)) return true;
              if (/fail=[1-9]/.test(log))
                throw new Error(`requests fail: ${log.trim().split("\n").slice(-3).join(" | ")}`);
              return false;
            },
            {
              timeoutMs: 90_000,
            },
          );
          const current = Buffer.from(
            JSON.parse(
              k("c1", ["-n", "kube-system", "get", "secret", "clustermesh-ipsec-keys", "-o", "json"]),
            ).data.keys,
            "base64",
          ).toString("utf8");
          const next = `${current.trim()}\n4+ rfc4106(gcm(aes)) ${"a1b2c3d4".repeat(5)} 128\n`;
          for (const cluster of ["c1", "c2"]) {
            k(cluster, [
              "-n",
              "kube-system",
              "patch",
              "secret",
              "clustermesh-ipsec-keys",
              "--type",
              "merge",
              "-p",
              JSON.stringify({ data: { keys: Buffer.from(next).toString("base64") } }),
            ]);
          }
          await waitFor(
            "every node on key 4 and the c1 pair's SAs replaced",
            async () => {
              const statuses = await Promise.all(nodeNames.map(encryption));
              const spis = Object.values(statuses[0].saCounts?.byConnection ?? {}).flatMap((c) => c.spis);
              return (
                statuses.every((s) => s.keyId === 4) &&
                spis.length > 0 &&
                !spis.some((s) => spisBefore.includes(s))
              );
            },
            { timeoutMs: 60_000, intervalMs: 500 },
          );
          const counts = readFileSync(loopLog, "utf8").trim().split("\n").at(-1) ?? "";
          await waitFor(
            "more requests on the new SAs",
            () => {
              const last = readFileSync(loopLog, "utf8").trim().split("\n").at(-1) ?? "";
              return Number(/ok=(\d+)/.exec(last)?.[1]) >= Number(/ok=(\d+)/.exec(counts)?.[1]) + 5;
            },
            { timeoutMs: 30_000 },
          );
        } finally {
          kubectl(fixture, "c1", ["-n", "demo", "exec", "client", "--", "sh", "-c", `touch ${stopFile}`]);
          await waitFor("the loop to end", () => !isRunning(loop), { timeoutMs: 10_000 }).catch(() =>
            stopProcess(loop),
          );
        }
        const last = readFileSync(loopLog, "utf8").trim().split("\n").at(-1) ?? "";
        process.stderr.write(`ipsec rotation: ${last}\n`);
        assert.match(last, /fail=0$/, `requests lost during the rotation: ${last}`);
        assert.ok(Number(/ok=(\d+)/.exec(last)?.[1]) >= 10, last);
      });
    }

    it("connect refuses clusters whose encryption modes differ", async () => {
      const access = (cluster: string) =>
        readClusterAccess(
          coreApi(kubeConfigFor(`${fixture.name}-${cluster}`, fixture.kubeconfig)),
          `${fixture.name}-${cluster}`,
        );
      const [a, b] = await Promise.all([access("c1"), access("c2")]);
      assert.equal(a.encryption, mode);
      assert.equal(b.encryption, mode);
      assert.deepEqual(connectProblems([a, b], false), []);
      const other = mode === "wireguard" ? "ipsec" : "wireguard";
      assert.match(connectProblems([a, { ...b, encryption: other }], false).join("\n"), /encryption differs/);
    });
  });
}

function startCapture(fixture: LabFixture, iface: string) {
  const file = join(fixture.dir, `capture-${Date.now()}.pcap`);
  const log = `${file}.log`;
  const ref = startDaemon({
    argv: ["tcpdump", "-i", iface, "-nn", "--immediate-mode", "-U", "-s", "0", "-w", file],
    logFile: log,
  });
  return {
    file,
    ready: () =>
      waitFor("tcpdump listening", () => readFileSync(log, "utf8").includes("listening on"), {
        timeoutMs: 10_000,
      }),
    stop: () => stopProcess(ref),
  };
}
