/**
 * Test topology for encryption: two node netns joined by one veth pair (the "underlay", no bridge,
 * nothing connected to the root netns, no default routes), each with one pod netns behind a veth
 * (pod /32, gateway 169.254.1.1 by static neigh, forwarding on). The unique prefix per run keeps
 * names (netns, WireGuard ifnames, sockets) from colliding with other runs on the machine.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CommandError, runSync } from "../../../lib/exec.js";
import {
  isRunning,
  type ProcessRef,
  startDaemon,
  stopProcess,
  WaitAborted,
  waitFor,
} from "../../../lib/process.js";

export interface TestNode {
  /** "a" | "b" */
  id: string;
  netns: string;
  podNetns: string;
  ip: string;
  podCidr: string;
  podIp: string;
  /** The node's own address in its pod CIDR (Cilium's router IP on cilium_host), on lxc0. */
  routerIp: string;
  /** machine-unique prefix for this node (e.g. for WireGuard ifnames) */
  uniquePrefix: string;
}

export const UNDERLAY_DEVICE = "ul0";
export const POD_MTU = 1400; // fits WireGuard (1420) and libipsec's ipsec0 (1400)

export class TwoNodeTopology {
  readonly prefix = `cme${randomBytes(3).toString("hex")}`;
  readonly dir = mkdtempSync(join(tmpdir(), `${this.prefix}-`));
  readonly nodes: [TestNode, TestNode];
  private readonly processes: ProcessRef[] = [];
  private readonly netnsCreated: string[] = [];

  constructor(subnetOctet = 250) {
    const make = (id: string, n: number): TestNode => ({
      id,
      netns: `${this.prefix}-node-${id}`,
      podNetns: `${this.prefix}-pod-${id}`,
      ip: `172.31.${subnetOctet}.${n}`,
      podCidr: `10.${subnetOctet}.${n}.0/24`,
      podIp: `10.${subnetOctet}.${n}.10`,
      routerIp: `10.${subnetOctet}.${n}.1`,
      uniquePrefix: `${this.prefix}${id}`,
    });
    this.nodes = [make("a", 1), make("b", 2)];
  }

  create(): void {
    const [a, b] = this.nodes;
    for (const node of this.nodes) {
      for (const ns of [node.netns, node.podNetns]) {
        runSync(["ip", "netns", "add", ns]);
        this.netnsCreated.push(ns);
      }
    }
    runSync(
      [
        "ip",
        "link",
        "add",
        UNDERLAY_DEVICE,
        "type",
        "veth",
        "peer",
        "name",
        UNDERLAY_DEVICE,
        "netns",
        b.netns,
      ],
      {
        netns: a.netns,
      },
    );
    for (const node of this.nodes) {
      const sh = (argv: string[]) => runSync(argv, { netns: node.netns });
      const pod = (argv: string[]) => runSync(argv, { netns: node.podNetns });
      sh(["ip", "link", "set", "lo", "up"]);
      sh(["ip", "addr", "add", `${node.ip}/24`, "dev", UNDERLAY_DEVICE]);
      sh(["ip", "link", "set", UNDERLAY_DEVICE, "up"]);
      sh(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
      sh(["ip", "link", "add", "lxc0", "type", "veth", "peer", "name", "eth0", "netns", node.podNetns]);
      sh(["ip", "link", "set", "lxc0", "up"]);
      // No dummy devices in this kernel: the router IP sits on the pod's host-side veth.
      sh(["ip", "addr", "add", `${node.routerIp}/32`, "dev", "lxc0"]);
      const mac = JSON.parse(sh(["ip", "-j", "link", "show", "dev", "lxc0"]))[0].address as string;
      sh(["ip", "route", "add", `${node.podIp}/32`, "dev", "lxc0", "scope", "link"]);
      pod(["ip", "link", "set", "lo", "up"]);
      pod(["ip", "addr", "add", `${node.podIp}/32`, "dev", "eth0"]);
      pod(["ip", "link", "set", "eth0", "mtu", String(POD_MTU), "up"]);
      pod(["ip", "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link"]);
      pod(["ip", "route", "add", "default", "via", "169.254.1.1", "dev", "eth0"]);
      pod(["ip", "neigh", "add", "169.254.1.1", "lladdr", mac, "dev", "eth0", "nud", "permanent"]);
    }
    // The underlay works before any encryption is set up.
    runSync(["ping", "-c", "1", "-W", "2", "-q", b.ip], { netns: a.netns });
  }

  other(node: TestNode): TestNode {
    return node === this.nodes[0] ? this.nodes[1] : this.nodes[0];
  }

  inNode(node: TestNode, argv: string[], timeoutMs = 15_000): string {
    return runSync(argv, { netns: node.netns, timeoutMs });
  }

  inPod(node: TestNode, argv: string[], options: { input?: string; timeoutMs?: number } = {}): string {
    return runSync(argv, {
      netns: node.podNetns,
      input: options.input,
      timeoutMs: options.timeoutMs ?? 15_000,
    });
  }

  /** Whether the pod command succeeds (for connectivity that must fail). */
  podSucceeds(node: TestNode, argv: string[], timeoutMs = 5_000): boolean {
    try {
      this.inPod(node, argv, { timeoutMs });
      return true;
    } catch (error) {
      if (error instanceof CommandError) return false;
      throw error;
    }
  }

  /** A TCP echo server (socat PIPE) in the node's pod, stopped by PID at destroy. */
  startEchoServer(node: TestNode, port: number): Promise<void> {
    return this.startServer(node, port, "PIPE");
  }

  /** A TCP server that answers every connection with `text` and closes it. */
  startReplyServer(node: TestNode, port: number, text: string): Promise<void> {
    return this.startServer(node, port, `SYSTEM:echo ${text}`);
  }

  /** The same, on the node's own address (host network: as the API server is to pods). */
  startNodeReplyServer(node: TestNode, port: number, text: string): Promise<void> {
    return this.startServer(node, port, `SYSTEM:echo ${text}`, node.netns);
  }

  private async startServer(
    node: TestNode,
    port: number,
    action: string,
    netns = node.podNetns,
  ): Promise<void> {
    this.start(netns, ["socat", `TCP-LISTEN:${port},fork,reuseaddr`, action], `server-${netns}-${port}`);
    await waitFor(`server ${netns}:${port}`, () =>
      runSync(["ss", "-Hltn", `sport = :${port}`], { netns }).includes(`:${port}`),
    );
  }

  /** Connects from `from`'s pod to `to`'s node address and returns what the server said. */
  podToNode(from: TestNode, to: TestNode, port: number): string {
    return this.inPod(from, ["socat", "-t", "2", "-T", "5", "-", `TCP:${to.ip}:${port},connect-timeout=3`]);
  }

  /** Sends text over TCP from `from`'s pod to `to`'s pod echo server and returns the echo. */
  tcpEcho(from: TestNode, to: TestNode, port: number, text: string): string {
    return this.inPod(
      from,
      ["socat", "-t", "2", "-T", "5", "-", `TCP:${to.podIp}:${port},connect-timeout=3`],
      {
        input: text,
      },
    );
  }

  start(netns: string, argv: string[], name: string): ProcessRef {
    const ref = startDaemon({ argv, netns, logFile: join(this.dir, `${name}.log`) });
    this.processes.push(ref);
    return ref;
  }

  async stop(ref: ProcessRef): Promise<void> {
    await stopProcess(ref);
  }

  /** tcpdump on node's underlay into a pcap; stop() returns the decoded lines and the raw bytes. */
  async startCapture(
    node: TestNode,
    name: string,
  ): Promise<{ stop(): Promise<{ lines: string[]; raw: Buffer }> }> {
    const file = join(this.dir, `${name}.pcap`);
    const logName = `tcpdump-${name}`;
    const ref = this.start(
      node.netns,
      ["tcpdump", "-i", UNDERLAY_DEVICE, "-nn", "--immediate-mode", "-U", "-s", "0", "-w", file],
      logName,
    );
    await waitFor(`tcpdump ${name} listening`, () => {
      if (!isRunning(ref))
        throw new WaitAborted(`tcpdump exited: ${readFileSync(join(this.dir, `${logName}.log`), "utf8")}`);
      return readFileSync(join(this.dir, `${logName}.log`), "utf8").includes("listening on");
    });
    return {
      stop: async () => {
        await stopProcess(ref);
        const text = runSync(["tcpdump", "-nn", "-r", file]);
        return { lines: text.split("\n").filter((l) => l.trim()), raw: readFileSync(file) };
      },
    };
  }

  /** Stops every process started here (by PID), then deletes the netns (their links go with them). */
  async destroy(): Promise<void> {
    for (const ref of this.processes.reverse())
      await stopProcess(ref).catch((error) => console.error("teardown:", error));
    for (const ns of this.netnsCreated.reverse()) {
      try {
        runSync(["ip", "netns", "del", ns]);
      } catch (error) {
        // already gone (a test deleted it); any other failure leaves a netns behind: say so
        if (!(error instanceof CommandError && /No such file or directory/.test(error.stderr))) throw error;
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
