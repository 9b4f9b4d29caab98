// The agent end to end without the full lab: two nodes (netns on a bridge), a real Kubernetes
// control plane (testing/kubernetes.ts), agents started like the lab starts them (as their
// ServiceAccount, least RBAC), pods created through the CNI plugin like a runtime does. Checks connectivity, services, bad input, leaks and restarts (see each test).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { CustomObjectsApi, NetworkingV1Api } from "@kubernetes/client-node";
import { runSync } from "../lib/exec.js";
import { isRunning, stopProcess, waitFor } from "../lib/process.js";
import {
  AgentTestCluster,
  REQUEST_LOOP,
  type TestNode,
  type TestPod,
  tail,
} from "../testing/agent-cluster.js";
import { promlint } from "../testing/promlint.js";

const SLICE = "echo-abc12";
let clusterIp = "";
let nodePort = 0;

function slice(backends: TestPod[]) {
  return {
    metadata: { name: SLICE, namespace: "default", labels: { "kubernetes.io/service-name": "echo" } },
    addressType: "IPv4",
    endpoints: backends.map((pod) => ({ addresses: [pod.ip ?? ""], conditions: { ready: true } })),
    ports: [
      { name: "http", port: 8080, protocol: "TCP" },
      { name: "dns", port: 5353, protocol: "UDP" },
      { name: "echo", port: 8081, protocol: "TCP" },
    ],
  };
}

/** The distinct answers of n requests (each answer is the backend's name), sorted. */
function answers(
  client: TestPod,
  protocol: "tcp" | "udp",
  host: string,
  port: number,
  n: number,
  cgroup = true,
): string[] {
  return [...new Set(cluster.probe(client, protocol, host, port, n, { cgroup }))].sort();
}

const cluster = new AgentTestCluster();
let n1: TestNode;
let n2: TestNode;
const pods: Record<string, TestPod> = {};

describe("agent (root: netns, BPF, real Kubernetes control plane)", { timeout: 180_000 }, () => {
  before(async () => {
    await cluster.start(2);
    [n1, n2] = cluster.nodes;
    await Promise.all([cluster.startAgent(n1), cluster.startAgent(n2)]);
  });

  after(async () => {
    if (process.env.AGENT_TEST_LOGS)
      for (const node of cluster.nodes)
        process.stderr.write(`--- ${node.name}\n${tail(node.logFile, 200)}\n`);
    await cluster.stop();
  });

  it("creates pod endpoints through the CNI plugin", async () => {
    pods.a1 = await cluster.startPod(n1, { labels: { app: "echo" } });
    pods.a2 = await cluster.startPod(n1, { labels: { app: "client" } });
    pods.b1 = await cluster.startPod(n2, { labels: { app: "echo" } });
    for (const pod of Object.values(pods)) assert.match(pod.ip ?? "", /^10\.244\.[12]\.\d+$/);
    const eth0 = JSON.parse(cluster.inPod(pods.a1, "ip -j link show dev eth0"))[0];
    assert.equal(eth0.mtu, 1450);
    const status = await cluster.status(n1);
    assert.equal(status.ready, true);
    assert.equal(status.endpoints.length, 2);
    assert.equal(status.podCidr, n1.podCidr);
    // same labels on two nodes -> one identity, in cluster 7's range
    const s2 = await cluster.status(n2);
    const idA1 = status.endpoints.find((e) => e.ip === pods.a1.ip)?.identity;
    const idB1 = s2.endpoints.find((e) => e.ip === pods.b1.ip)?.identity;
    assert.equal(idA1, idB1);
    assert.equal((idA1 ?? 0) >> 16, 7);
  });

  it("pod to pod on one node and across nodes (VXLAN)", async () => {
    cluster.inPod(pods.a2, `ping -c 2 -i 0.05 -W 2 -q ${pods.a1.ip}`);
    await waitFor("ipcache of n1 to hold b1", async () =>
      (await cluster.status(n1)).ipcache.some(
        (e) => e.prefix === `${pods.b1.ip}/32` && e.tunnelEndpoint === n2.ip,
      ),
    );
    cluster.inPod(pods.a2, `ping -c 2 -i 0.05 -W 2 -q ${pods.b1.ip}`);
    cluster.inPod(pods.b1, `ping -c 2 -i 0.05 -W 2 -q ${pods.a1.ip}`);
  });

  it("a pod a default-deny policy selects is enforced from its first packet: its policy is in the maps when ADD returns", async () => {
    const networking = cluster.kubeConfig.makeApiClient(NetworkingV1Api);
    const policy = { metadata: { name: "sealed-deny-ingress", namespace: "default" } };
    await networking.createNamespacedNetworkPolicy({
      namespace: "default",
      body: {
        ...policy,
        spec: { podSelector: { matchLabels: { app: "sealed" } }, policyTypes: ["Ingress"] },
      },
    });
    const sealed: TestPod[] = [];
    const agent = n1.agent;
    assert.ok(agent);
    try {
      // the agent knows the policy once an endpoint it selects is enforced
      sealed.push(await cluster.startPod(n1, { labels: { app: "sealed" } }));
      await waitFor("the first sealed pod to be enforced", async () =>
        (await cluster.status(n1)).endpoints.some((e) => e.ip === sealed[0].ip && e.policy?.ingress),
      );
      const pod = await cluster.createPod(n1, { labels: { app: "sealed" } });
      sealed.push(pod);
      const result = await cluster.cniDirect(n1, "ADD", pod);
      // from here the agent does nothing more: what the datapath does is what ADD left in the maps
      process.kill(agent.pid, "SIGSTOP");
      try {
        pod.ip = result?.ips?.[0]?.address.split("/")[0];
        assert.ok(pod.ip);
        assert.throws(
          () => cluster.inPod(pods.a2, `ping -c 1 -W 1 -q ${pod.ip}`),
          "the first packet to the new pod is dropped",
        );
      } finally {
        process.kill(agent.pid, "SIGCONT");
      }
      const status = await cluster.status(n1);
      const endpoint = status.endpoints.find((e) => e.ip === pod.ip);
      assert.equal(endpoint?.policy?.ingress, true);
      assert.ok((endpoint?.policy?.drops.ingress ?? 0) >= 1, "the drop is the policy's");
    } finally {
      for (const pod of sealed) await cluster.removePod(pod);
      await networking.deleteNamespacedNetworkPolicy({ ...policy.metadata });
    }
  });

  it("ClusterIP TCP and UDP are load-balanced over all backends (socket LB and per-packet)", async () => {
    cluster.startEchoServer(pods.a1, "a1");
    cluster.startEchoServer(pods.b1, "b1");
    const service = await cluster.createService({
      metadata: { name: "echo", namespace: "default" },
      spec: {
        type: "NodePort",
        selector: { app: "echo" },
        ports: [
          { name: "http", port: 80, targetPort: "http", protocol: "TCP" },
          { name: "dns", port: 53, targetPort: 5353, protocol: "UDP" },
          { name: "echo", port: 81, targetPort: 8081, protocol: "TCP" },
        ],
      },
    });
    clusterIp = service.spec?.clusterIP ?? "";
    nodePort = service.spec?.ports?.find((p) => p.name === "http")?.nodePort ?? 0;
    assert.ok(clusterIp && nodePort);
    await cluster.applyEndpointSlice(slice([pods.a1, pods.b1]));
    await waitFor("both agents to program the service", async () => {
      for (const node of [n1, n2]) {
        const frontend = (await cluster.status(node)).services.find(
          (s) => s.frontend === `${clusterIp}:80/TCP`,
        );
        if (frontend?.backends.length !== 2) return false;
      }
      return true;
    });
    await waitFor("servers listening", () => {
      const a = cluster.inPod(pods.a1, "ss -Hlntu", { cgroup: false });
      const b = cluster.inPod(pods.b1, "ss -Hlntu", { cgroup: false });
      return [a, b].every((out) => out.includes(":8080") && out.includes(":5353") && out.includes(":8081"));
    });
    assert.deepEqual(answers(pods.a2, "tcp", clusterIp, 80, 30), ["a1", "b1"], "TCP with socket LB");
    assert.deepEqual(
      answers(pods.a2, "tcp", clusterIp, 80, 30, false),
      ["a1", "b1"],
      "TCP with per-packet NAT",
    );
    assert.deepEqual(answers(pods.a2, "udp", clusterIp, 53, 30), ["a1", "b1"], "UDP with socket LB");
    assert.deepEqual(
      answers(pods.a2, "udp", clusterIp, 53, 30, false),
      ["a1", "b1"],
      "UDP with per-packet NAT",
    );
  });

  it("a direct connection reusing the client port of an earlier per-packet flow is not reverse-NATed", () => {
    // The kernel picks the client port of a socket-LB (direct) connection without regard to the
    // per-packet NAT entries of earlier connections to the VIP: the same (client, port, backend)
    // tuple comes round again, and the old reply entry must not turn the new replies into the VIP's.
    for (let attempt = 0; attempt < 4; attempt++) {
      const port = 40_000 + 2 * Math.floor(Math.random() * 5_000);
      const socat = (target: string) =>
        `socat -T 3 - TCP:${target},sourceport=${port},reuseaddr,connect-timeout=3 </dev/null`;
      const viaVip = cluster.inPod(pods.a2, socat(`${clusterIp}:80`), { cgroup: false }).trim();
      assert.ok(["a1", "b1"].includes(viaVip), `answer through the VIP: ${viaVip}`);
      const backend = viaVip === "a1" ? pods.a1 : pods.b1;
      const direct = cluster.inPod(pods.a2, socat(`${backend.ip}:8080`), { cgroup: true, timeoutMs: 10_000 });
      assert.equal(direct.trim(), viaVip, `direct connection from port ${port} after a VIP flow`);
    }
  });

  it("EndpointSlice changes reach the datapath within a second", async () => {
    const started = Date.now();
    await cluster.applyEndpointSlice(slice([pods.b1]));
    await waitFor(
      "n1 to drop a1 from the service",
      async () => {
        const frontend = (await cluster.status(n1)).services.find(
          (s) => s.frontend === `${clusterIp}:80/TCP`,
        );
        return frontend?.backends.length === 1 && frontend.backends[0].address === `${pods.b1.ip}:8080`;
      },
      { timeoutMs: 1_000, intervalMs: 10 },
    );
    const elapsed = Date.now() - started;
    process.stderr.write(`backend change visible in the datapath after ${elapsed} ms\n`);
    assert.deepEqual(answers(pods.a2, "tcp", clusterIp, 80, 10), ["b1"]);
    await cluster.applyEndpointSlice(slice([pods.a1, pods.b1]));
    await waitFor("a1 back", async () => {
      const frontend = (await cluster.status(n1)).services.find((s) => s.frontend === `${clusterIp}:80/TCP`);
      return frontend?.backends.length === 2;
    });
  });

  it("NodePort from a pod on another node", async () => {
    pods.b2 = await cluster.startPod(n2, { labels: { app: "client" } });
    for (const target of [n1.ip, n2.ip]) {
      for (const cgroup of [true, false]) {
        assert.deepEqual(
          answers(pods.b2, "tcp", target, nodePort, 16, cgroup),
          ["a1", "b1"],
          `${target} cgroup=${cgroup}`,
        );
      }
    }
  });

  it("status API, Prometheus metrics and meshctl agent status", async () => {
    const status = await cluster.status(n1);
    assert.equal(status.health.kubernetes.synced, true);
    assert.ok(status.identities.length >= 2);
    assert.ok(status.services.some((s) => s.frontend === `${clusterIp}:53/UDP`));
    const metrics = await cluster.metrics(n1);
    assert.match(metrics, /^clustermesh_agent_ready 1$/m);
    assert.match(metrics, /^clustermesh_agent_cni_requests_total\{command="add",result="ok"\} \d+$/m);
    assert.match(metrics, /^clustermesh_datapath_packets_total\{reason="LbDnat"\} [1-9]/m);
    // Prometheus' parser accepts it and `promtool check metrics` finds no problem, Cilium's names
    // included (so no exception list)
    const report = await promlint(metrics);
    assert.ok(report.families >= 10, `${report.families} families`);
    assert.deepEqual(report.problems, []);
    // CNI ADD latency: every bucket and the count of the ADDs answered
    const adds = Number(
      /^clustermesh_agent_cni_requests_total\{command="add",result="ok"\} (\d+)$/m.exec(metrics)?.[1],
    );
    const addDuration = (series: string) =>
      new RegExp(`^clustermesh_agent_cni_request_duration_seconds_${series} (\\S+)$`, "m").exec(metrics)?.[1];
    assert.equal(Number(addDuration('count\\{command="add",result="ok"\\}')), adds);
    assert.equal(Number(addDuration('bucket\\{le="\\+Inf",command="add",result="ok"\\}')), adds);
    assert.ok(Number(addDuration('sum\\{command="add",result="ok"\\}')) > 0);
    assert.match(
      metrics,
      /^clustermesh_agent_cni_request_duration_seconds_bucket\{le="0.001",command="add",result="ok"\} \d+$/m,
    );
    const cli = fileURLToPath(new URL("../cli/commands/agent.js", import.meta.url));
    const script = `const { agentCommand } = await import(${JSON.stringify(cli)}); await agentCommand().parseAsync(process.argv.slice(1), { from: "user" });`;
    const json = JSON.parse(
      runSync([
        process.execPath,
        "--input-type=module",
        "-e",
        script,
        "status",
        "--socket",
        n1.socket,
        "-o",
        "json",
      ]),
    );
    assert.equal(json.node, n1.name);
    const text = runSync([
      process.execPath,
      "--input-type=module",
      "-e",
      script,
      "status",
      "--socket",
      n1.socket,
    ]);
    assert.match(text, /Ready: +yes/);
    assert.match(text, new RegExp(`${clusterIp.replace(/\./g, "\\.")}:80/TCP`));
  });

  it("bad input: CNI errors with codes, nothing created, invalid objects skipped", async () => {
    const linksBefore = cluster.hostLinks(n1).length;
    const notJson = await cluster.cni(
      n1,
      "ADD",
      { containerId: "bad1", netns: "none", namespace: "default", name: "x", uid: "" },
      "{not json",
    );
    assert.notEqual(notJson.exitCode, 0);
    assert.equal(notJson.output.code, 6);
    const pod = await cluster.createPod(n1, { labels: { app: "x" } });
    const noName = await cluster.cni(n1, "ADD", { ...pod, name: "" });
    assert.notEqual(noName.exitCode, 0);
    assert.ok(noName.output.code && noName.output.msg, JSON.stringify(noName.output));
    const noNetns = await cluster.cni(n1, "ADD", { ...pod, netns: `${pod.netns}-missing` });
    assert.equal(noNetns.output.code, 4, JSON.stringify(noNetns.output));
    // labels that make the identity key longer than the limit: the ADD is refused, nothing is created
    const labels: Record<string, string> = {};
    for (let i = 0; i < 40; i++) labels[`label-${i}`] = "v".repeat(60);
    const longPod = await cluster.createPod(n1, { labels });
    const refused = await cluster.cni(n1, "ADD", longPod);
    assert.equal(refused.output.code, 100, JSON.stringify(refused.output));
    assert.match(String(refused.output.msg), /identity key/);
    assert.match(
      readFileSync(n1.logFile, "utf8"),
      new RegExp(
        `default/${longPod.name}.*identity key too long|identity key too long.*default/${longPod.name}`,
      ),
    );
    assert.equal(cluster.hostLinks(n1).length, linksBefore);
    // an unknown container's DEL succeeds
    assert.equal((await cluster.cni(n1, "DEL", { ...pod, containerId: "never-added" })).exitCode, 0);
    // an EndpointSlice with an address outside every pod CIDR: logged with its name, skipped
    await cluster.applyEndpointSlice({
      metadata: {
        name: "stray-slice",
        namespace: "default",
        labels: { "kubernetes.io/service-name": "echo" },
      },
      addressType: "IPv4",
      endpoints: [{ addresses: ["192.168.77.7"], conditions: { ready: true } }],
      ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    });
    await waitFor("the stray address to be reported", () =>
      readFileSync(n1.logFile, "utf8").includes("EndpointSlice default/stray-slice"),
    );
    const frontend = (await cluster.status(n1)).services.find((s) => s.frontend === `${clusterIp}:80/TCP`);
    assert.equal(frontend?.backends.length, 2, "the valid backends stay");
    assert.ok(n1.agent && isRunning(n1.agent));
    for (const each of [pod, longPod]) {
      await cluster.deletePodObject(each);
      cluster.removeSandbox(each);
    }
  });

  it("a pod deleted while its ADD runs leaves no IP, veth or map entry", async () => {
    const baseline = (await cluster.status(n1)).endpoints.length;
    const pod = await cluster.createPod(n1, { labels: { app: "raced" } });
    const add = cluster.cni(n1, "ADD", pod);
    await cluster.deletePodObject(pod);
    await add;
    await waitFor(
      "the raced endpoint to be gone",
      async () => (await cluster.status(n1)).endpoints.length === baseline,
      {
        timeoutMs: 5_000,
      },
    );
    cluster.removeSandbox(pod);
    const status = await cluster.status(n1);
    assert.equal(cluster.hostLinks(n1).length, status.endpoints.length);
  });

  it("100 pods created and deleted leave no IP, veth, map entry, record or attachment", async () => {
    const before = await cluster.status(n1);
    const concurrency = 20;
    const batch: TestPod[] = [];
    for (let i = 0; i < 100; i += concurrency) {
      batch.push(
        ...(await Promise.all(
          Array.from({ length: concurrency }, () => cluster.createPod(n1, { labels: { app: "churn" } })),
        )),
      );
    }
    const started = Date.now();
    for (let i = 0; i < batch.length; i += concurrency) {
      await Promise.all(
        batch.slice(i, i + concurrency).map(async (pod) => {
          pod.ip = (await cluster.cniDirect(n1, "ADD", pod))?.ips?.[0]?.address.split("/")[0];
        }),
      );
    }
    const added = Date.now();
    assert.equal(new Set(batch.map((p) => p.ip)).size, 100, "100 distinct IPs");
    assert.equal((await cluster.status(n1)).endpoints.length, before.endpoints.length + 100);
    cluster.inPod(batch[99], `ping -c 1 -W 2 -q ${pods.a1.ip}`, { cgroup: false });
    for (let i = 0; i < batch.length; i += concurrency) {
      await Promise.all(batch.slice(i, i + concurrency).map((pod) => cluster.cniDirect(n1, "DEL", pod)));
    }
    process.stderr.write(
      `100 pods (agent API, concurrency ${concurrency}): ADD ${added - started} ms, DEL ${Date.now() - added} ms\n`,
    );
    await Promise.all(batch.map((pod) => cluster.deletePodObject(pod)));
    for (const pod of batch) cluster.removeSandbox(pod);
    const after = await cluster.status(n1);
    assert.deepEqual(
      after.endpoints.map((e) => e.ip),
      before.endpoints.map((e) => e.ip),
    );
    assert.equal(cluster.hostLinks(n1).length, before.endpoints.length, "veths");
    assert.equal(readdirSync(join(n1.stateDir, "endpoints")).length, before.endpoints.length, "records");
    // the endpoints' programs are clsact filters on their veths (gone with them) and pins of nothing
    const pins = readdirSync(join(n1.bpffsRoot, "links")).filter(
      (l) => l.startsWith("from-pod-") || l.startsWith("to-pod-"),
    );
    assert.deepEqual(pins, [], "no endpoint link pin");
    assert.equal(after.health.datapath.links, before.health.datapath.links, "attachments the agent holds");
    const localEntries = after.ipcache.filter(
      (e) => e.prefix.startsWith("10.244.1.") && e.prefix.endsWith("/32"),
    );
    assert.equal(localEntries.length, before.endpoints.length, "ipcache entries of local pods");
    const custom = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
    let remaining: string[] = [];
    await waitFor(
      "MeshEndpoints of the churned pods to be gone",
      async () => {
        const list = (await custom.listClusterCustomObject({
          group: "clustermesh.io",
          version: "v1alpha1",
          plural: "meshendpoints",
        })) as { items: { metadata: { name: string } }[] };
        remaining = list.items.map((item) => item.metadata.name).sort();
        return remaining.length === Object.keys(pods).length;
      },
      { timeoutMs: 30_000 },
    ).catch((error) => {
      throw new Error(`${error.message}; remaining: ${remaining.join(" ")}`, { cause: error });
    });
  });

  it("agent restarts under a steady request loop: zero failed requests, established connections survive", async () => {
    const loop = cluster.startInPod(
      pods.a2,
      [process.execPath, REQUEST_LOOP, clusterIp, "80", "10"],
      "request-loop",
    );
    await waitFor(
      "the loop to run",
      () => readFileSync(join(cluster.dir, "request-loop.log"), "utf8") === "" && isRunning(loop),
    );
    await new Promise((resolve) => setTimeout(resolve, 300)); // some requests before the restart
    const drops = async () => {
      const text = await cluster.metrics(n1);
      return [...text.matchAll(/^clustermesh_datapath_packets_total\{reason="(Drop\w+)"\} (\d+)$/gm)]
        .map((m) => `${m[1]}=${m[2]}`)
        .join(" ");
    };
    const dropsBefore = await drops();
    for (const node of [n1, n2]) {
      const restartStarted = Date.now();
      await cluster.stopAgent(node);
      const stopped = Date.now();
      await cluster.startAgent(node);
      process.stderr.write(
        `agent on ${node.name}: down from ${new Date(stopped).toISOString()}, ready again ${Date.now() - restartStarted} ms after the stop began\n`,
      );
    }
    process.stderr.write(
      `datapath drops on n1 before the restarts: ${dropsBefore}; after: ${await drops()}\n`,
    );
    // new pods and services work with the restarted agents
    const fresh = await cluster.startPod(n2, { labels: { app: "client" } });
    assert.deepEqual(answers(fresh, "tcp", clusterIp, 80, 10), ["a1", "b1"]);
    // SIGTERM lets the request in flight finish (up to its 15 s timeout) before the loop reports
    await stopProcess(loop, 20_000);
    const result = JSON.parse(cluster.logOf("request-loop").trim().split("\n").pop() ?? "{}");
    process.stderr.write(`request loop during restarts: ${JSON.stringify(result)}\n`);
    assert.equal(result.failed, 0, JSON.stringify(result.errors));
    assert.ok(result.ok > 20, `only ${result.ok} requests`);
    assert.equal(result.longLived, "ok");
  });
});
