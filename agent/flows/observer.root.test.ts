// Hubble's observer API on real flow events: packets run through the datapath programs
// (BPF_PROG_TEST_RUN) come out of GetFlows enriched with pods and clusters, through our client and
// through the real `hubble` CLI built from the pinned Cilium module (test/interop/hubble-build.sh).
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { reconcileMaps } from "../../bpf/datapath/apply.js";
import { ConfigFlags, Proto } from "../../bpf/datapath/codecs.js";
import { Datapath, ProgramName } from "../../bpf/datapath/loader.js";
import { buildPacket, TcpFlag } from "../../bpf/datapath/packet.js";
import type { DesiredDatapathState } from "../../bpf/datapath/reconcile.js";
import { mountPrivateBpffs, type PrivateBpffs } from "../../bpf/testing.js";
import { HubbleClient } from "../../lib/hubble/client.js";
import type { HubbleFlow } from "../../lib/hubble/flow.js";
import { agentDirectoryInputs } from "./agent-directory.js";
import { FlowObserver } from "./observer.js";

const LOCAL_POD = "10.1.0.10";
const LOCAL_IDENTITY = 0x10000 | 300; // cluster 1
const REMOTE_POD = "10.2.0.10";
const REMOTE_IDENTITY = 0x20000 | 77; // cluster 2
const VIP = "10.96.0.10";

const desired: DesiredDatapathState = {
  services: [{ frontend: { address: VIP, port: 80, proto: Proto.TCP }, backends: [] }],
  endpoints: [
    {
      address: LOCAL_POD,
      ifindex: 11,
      identity: LOCAL_IDENTITY,
      mac: "02:aa:00:00:00:10",
      nodeMac: "02:bb:00:00:00:10",
    },
  ],
  remoteNodes: [
    {
      nodeIp: "172.20.0.2",
      podCidrs: ["10.2.0.0/24"],
      nodeIdentity: 6,
      podCidrIdentity: 2,
      remoteCluster: true,
    },
  ],
  ipcache: [
    {
      prefix: `${REMOTE_POD}/32`,
      identity: REMOTE_IDENTITY,
      tunnelEndpoint: "172.20.0.2",
      remoteCluster: true,
    },
  ],
};

function until<T>(what: string, probe: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const value = probe();
      if (value !== undefined) return resolve(value);
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(attempt, 20);
    };
    attempt();
  });
}

describe("Hubble observer API on datapath flows (root)", () => {
  let bpffs: PrivateBpffs;
  let dir: string;
  let datapath: Datapath;
  let observer: FlowObserver;
  let client: HubbleClient;
  let socket: string;

  // a connection's first SYN; the same connection's next SYN would be aggregated (a retransmit)
  const run = (program: string, saddr: string, daddr: string, dport = 80, sport = 40001) =>
    datapath.program(program).testRun({
      data: buildPacket({ saddr, daddr, proto: Proto.TCP, sport, dport, tcpFlags: TcpFlag.SYN }),
    });
  const flows = async (request: object): Promise<HubbleFlow[]> =>
    (await client.flows(request)).flatMap((response) => (response.flow ? [response.flow] : []));

  before(async () => {
    bpffs = mountPrivateBpffs("cm-flw-obs-");
    dir = mkdtempSync(join(tmpdir(), "cm-flw-obs-"));
    socket = join(dir, "hubble.sock");
    datapath = Datapath.load({ pinRoot: `${bpffs.path}/node` });
    datapath.maps.setConfig({ tunnelIfindex: 77, flags: ConfigFlags.Trace, worldIdentity: 2 });
    reconcileMaps(datapath.maps, desired);
    observer = await FlowObserver.start({
      config: { flows: "on", socketPath: socket, bufferSize: 4096 },
      pinRoot: `${bpffs.path}/node`,
      nodeName: "c1-worker",
      clusterName: "c1",
      version: "test",
      directory: () =>
        agentDirectoryInputs({
          clusterName: "c1",
          desired,
          endpoints: [
            {
              id: "lxc1",
              containerId: "c",
              ifname: "eth0",
              netns: "/x",
              podNamespace: "demo",
              podName: "client-1",
              ip: LOCAL_POD,
              hostMac: "",
              podMac: "",
              identity: LOCAL_IDENTITY,
              labels: [],
              namedPorts: [],
              state: "ready",
              createdAt: "",
            },
          ],
          meshEndpoints: [],
          identities: [
            {
              apiVersion: "v1",
              kind: "MeshIdentity",
              metadata: { name: String(LOCAL_IDENTITY) },
              "security-labels": { "k8s:app": "client", "k8s:io.cilium.k8s.policy.cluster": "c1" },
            },
          ],
          remoteClusters: [
            {
              name: "c2",
              ipcache: [
                {
                  IP: REMOTE_POD,
                  prefixLength: null,
                  HostIP: "172.20.0.2",
                  ID: REMOTE_IDENTITY,
                  Key: 0,
                  Metadata: "",
                  K8sNamespace: "demo",
                  K8sPodName: "echo-c2",
                },
              ],
            },
          ],
          remoteIdentities: [
            {
              id: REMOTE_IDENTITY,
              labels: ["k8s:app=echo", "k8s:io.cilium.k8s.policy.cluster=c2"],
              cluster: "c2",
            },
          ],
        }),
      onError: (error) => {
        throw error;
      },
    });
    client = HubbleClient.connect(`unix:${socket}`);
  });
  after(async () => {
    client?.close();
    await observer?.close();
    datapath?.close();
    bpffs?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves a dropped and a cross-cluster flow with pods, identities and both clusters", async () => {
    assert.equal(run(ProgramName.fromPod, LOCAL_POD, VIP).returnValue, 2, "no backend: dropped");
    assert.equal(
      run(ProgramName.fromPod, LOCAL_POD, REMOTE_POD).returnValue,
      7,
      "to the remote cluster's pod",
    );
    // a packet on the VXLAN device without tunnel metadata: dropped by the tunnel ingress
    assert.equal(run(ProgramName.tunnelIngress, REMOTE_POD, LOCAL_POD).returnValue, 2);
    observer.tick();

    const [drop] = await flows({ whitelist: [{ verdict: ["DROPPED"], destination_ip: [VIP] }] });
    assert.equal(drop.verdict, "DROPPED");
    assert.equal(drop.drop_reason_desc, "SERVICE_BACKEND_NOT_FOUND");
    assert.deepEqual(drop.source, {
      identity: LOCAL_IDENTITY,
      cluster_name: "c1",
      namespace: "demo",
      pod_name: "client-1",
      labels: ["k8s:app=client", "k8s:io.cilium.k8s.policy.cluster=c1"],
    });
    assert.deepEqual(drop.l4?.TCP, { source_port: 40001, destination_port: 80, flags: { SYN: true } });
    assert.deepEqual(drop.event_type, { type: 1, sub_type: 158 });

    const [cross] = await flows({ whitelist: [{ destination_cluster_name: ["c2"] }] });
    assert.equal(cross.verdict, "FORWARDED");
    assert.equal(cross.trace_observation_point, "TO_OVERLAY");
    assert.equal(cross.source.cluster_name, "c1");
    assert.deepEqual(
      [cross.destination.cluster_name, cross.destination.namespace, cross.destination.pod_name],
      ["c2", "demo", "echo-c2"],
    );
    assert.equal(cross.tunnel?.IP?.destination, "172.20.0.2");

    const [fromC2] = await flows({ whitelist: [{ source_cluster_name: ["c2"], verdict: ["DROPPED"] }] });
    assert.equal(fromC2.drop_reason_desc, "ERROR_RETRIEVING_TUNNEL_KEY");
    assert.deepEqual([fromC2.source.cluster_name, fromC2.destination.cluster_name], ["c2", "c1"]);

    const blacklisted = await flows({ blacklist: [{ verdict: ["DROPPED"] }] });
    assert.ok(blacklisted.length >= 1 && blacklisted.every((flow) => flow.verdict === "FORWARDED"));
    assert.equal((await flows({ number: 1, whitelist: [{ source_pod: ["demo/client"] }] })).length, 1);
  });

  it("follow: a new flow arrives on an open stream", async () => {
    const received: HubbleFlow[] = [];
    const stream = client.getFlows(
      { follow: true, whitelist: [{ destination_pod: ["demo/echo-c2"] }] },
      (response) => {
        if (response.flow) received.push(response.flow);
      },
    );
    try {
      // the stream is open once the server has it; open new connections until one arrives
      let sport = 41000;
      await until("a followed flow", () => {
        run(ProgramName.fromPod, LOCAL_POD, REMOTE_POD, 80, sport++);
        observer.tick();
        return received[0];
      });
      assert.equal(received[0].destination.pod_name, "echo-c2");
    } finally {
      stream.cancel();
      await stream.done;
    }
  });

  it("a malformed filter is an INVALID_ARGUMENT naming the filter", async () => {
    await assert.rejects(
      client.flows({ whitelist: [{ source_ip: ["10.0.0.300"] }] }),
      (error: grpc.ServiceError) =>
        error.code === grpc.status.INVALID_ARGUMENT && /source_ip/.test(error.details),
    );
    await assert.rejects(
      client.flows({ whitelist: [{ source_label: ["app in (a"] }] }),
      (error: grpc.ServiceError) =>
        error.code === grpc.status.INVALID_ARGUMENT && /source_label/.test(error.details),
    );
  });

  it("ServerStatus counts the flows", async () => {
    const status = await client.serverStatus();
    assert.equal(status.max_flows, "4096");
    assert.ok(Number(status.seen_flows) >= 3);
  });

  // the CLI runs asynchronously: the server answering it lives on this process's event loop
  it("the real hubble CLI: observe --from-cluster c2 --verdict DROPPED, --to-cluster, status", async () => {
    const hubble = execFileSync(join(import.meta.dirname, "../../../test/interop/hubble-build.sh"), {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    })
      .trim()
      .split("\n")
      .at(-1) as string;
    const server = `unix://${socket}`;
    const run = async (...args: string[]) =>
      (await promisify(execFile)(hubble, args, { encoding: "utf8" })).stdout;
    type Line = {
      flow: { verdict: string; source: { cluster_name: string }; destination: { cluster_name: string } };
    };
    const observe = async (...args: string[]): Promise<Line[]> =>
      (await run("observe", "--server", server, "-o", "json", ...args))
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Line);
    const dropped = await observe("--from-cluster", "c2", "--verdict", "DROPPED");
    assert.ok(dropped.length >= 1, "a dropped flow from c2");
    for (const { flow } of dropped) {
      assert.equal(flow.verdict, "DROPPED");
      assert.deepEqual([flow.source.cluster_name, flow.destination.cluster_name], ["c2", "c1"]);
    }
    const toC2 = await observe("--to-cluster", "c2", "--last", "1");
    assert.equal(toC2.length, 1);
    assert.equal(toC2[0].flow.destination.cluster_name, "c2");
    const status = await run("status", "--server", server);
    assert.match(status, /Healthcheck \(via .*\): Ok/);
    assert.match(status, /Flows: \d+\/4,?096/);
  });

  it("meshctl observe: the same filters, readable and -o json", async () => {
    const meshctl = join(import.meta.dirname, "../../cli/main.js");
    const run = async (...args: string[]) =>
      (
        await promisify(execFile)(
          process.execPath,
          [meshctl, "observe", "--server", `unix:${socket}`, ...args],
          { encoding: "utf8" },
        )
      ).stdout;
    const json = (await run("--from-cluster", "c2", "--verdict", "DROPPED", "-o", "json"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { flow: HubbleFlow });
    assert.ok(json.length >= 1);
    for (const { flow } of json)
      assert.deepEqual(
        [flow.verdict, flow.source.cluster_name, flow.destination.cluster_name],
        ["DROPPED", "c2", "c1"],
      );
    const text = await run("--to-cluster", "c2", "--last", "1");
    assert.match(
      text,
      /\[c1-worker\]: c1\/demo\/client-1:4\d{4} \(ID:\d+\) -> c2\/demo\/echo-c2:80 \(ID:\d+\) to-overlay FORWARDED \(TCP Flags: SYN\)/,
    );
    const namespace = await run("--namespace", "demo", "--verdict", "DROPPED", "-o", "json");
    assert.ok(namespace.trim().split("\n").length >= 2, "drops from and to pods of demo");
    await assert.rejects(run("--from-ip", "nonsense"), /source_ip/);
  });

  it("a follower that stops reading stalls nothing: others are served, it is told what it lost", async () => {
    const raw = (
      client as unknown as {
        client: grpc.Client & {
          GetFlows(r: object): grpc.ClientReadableStream<{ lost_events?: { num_events_lost: string } }>;
        };
      }
    ).client;
    const stuck = raw.GetFlows({ follow: true });
    stuck.pause(); // never reads: the server's buffer for it fills up
    const lost: number[] = [];
    stuck.on("data", (response) => {
      if (response.lost_events) lost.push(Number(response.lost_events.num_events_lost));
    });
    stuck.on("error", () => undefined); // cancelled below
    try {
      // many flows, much more than a stream buffers (every packet reported: drops)
      const data = buildPacket({
        saddr: LOCAL_POD,
        daddr: VIP,
        proto: Proto.TCP,
        sport: 40002,
        dport: 80,
        tcpFlags: TcpFlag.SYN,
      });
      for (let round = 0; round < 20; round++) {
        datapath.program(ProgramName.fromPod).testRun({ data, repeat: 2000 });
        observer.tick();
        await new Promise((resolve) => setImmediate(resolve));
      }
      // the agent still answers others at once
      const started = Date.now();
      assert.equal((await flows({ number: 1, whitelist: [{ verdict: ["DROPPED"] }] })).length, 1);
      assert.ok(Date.now() - started < 2000, "served while a follower is stuck");
      stuck.resume();
      await until(
        "the stuck follower to be told what it lost",
        () => (lost.length > 0 ? lost : undefined),
        10_000,
      );
      assert.ok(lost.reduce((a, b) => a + b, 0) > 0);
    } finally {
      stuck.cancel();
    }
  });
});
