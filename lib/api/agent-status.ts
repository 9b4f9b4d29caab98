/**
 * The agent's status document (GET /v1/status on the agent's unix socket, next to the CNI routes of
 * cni-protocol.ts) and its client. Served by agent/cni-server/, built by agent/status/; read by
 * `meshctl agent status`, `meshctl clustermesh status`, the tests and the benches.
 */
import { request } from "node:http";
import type { EncryptionBackendName, EncryptionMode } from "./encryption.js";

export interface EndpointPolicyStatus {
  ingress: boolean;
  egress: boolean;
  /** packets the policy dropped, by direction */
  drops: { ingress: number; egress: number };
  /** the entries the resolver gave it (peer identity, protocol, ports), both directions */
  entries: number;
  /** the peer identities those entries name (0: any) */
  peers: number[];
  /** by the rule that denied them (`Kind/namespace/name#index`), or `default-deny` when no rule matched */
  dropsByRule: Array<{ direction: "ingress" | "egress"; rule: string; packets: number }>;
}

export interface AgentStatus {
  node: string;
  cluster: { name: string; id: number };
  ready: boolean;
  health: {
    kubernetes: { synced: boolean; caches: Record<string, boolean> };
    datapath: { loaded: boolean; links: number };
    tunnel: { device: string; ifindex: number | undefined };
    lastReconcile?: { at: string; ops: number; error?: string };
  };
  podCidr: string | undefined;
  nodeIp: string | undefined;
  endpoints: {
    id: string;
    pod: string;
    containerId: string;
    ip: string;
    identity: number;
    ifindex: number | undefined;
    state: string;
    /** network policy: whether each direction is enforced (no policy selects it: everything passes) and what it dropped */
    policy?: EndpointPolicyStatus;
  }[];
  /** Network policies the agent could not enforce, with the fields at fault (a valid earlier version stays in force). */
  policies?: { invalid: { policy: string; errors: { path: string; message: string }[] }[] };
  services: { frontend: string; backends: { address: string; state: "active" | "terminating" }[] }[];
  identities: { id: number; labels: string[] }[];
  ipcache: { prefix: string; identity: number; tunnelEndpoint?: string; remoteCluster?: boolean }[];
  counters: Record<string, number>;
  /** mode only when encryption is off */
  encryption?: EncryptionStatus | { mode: EncryptionMode };
  /** Connected remote clusters (what `meshctl clustermesh status` sums up) and their identities. */
  clustermesh: {
    remoteClusters: RemoteClusterStatus[];
    remoteIdentities: { id: number; labels: string[]; cluster: string }[];
    /**
     * ipcache entries the BPF map holds with the remote-cluster flag that no connected remote
     * cluster owns (e.g. left by a cluster disconnected while the agent was down). Absent when the
     * datapath could not be read.
     */
    unowned?: { count: number; sample: DatapathDriftEntry[] };
  };
}

/** What `meshctl clustermesh status` compares per node and remote cluster. */
export type MeshEntryKind = "nodes" | "ipcache" | "identities" | "services" | "backends";

/** One entry that differs between what a remote published and what the node's BPF maps hold. */
export interface DatapathDriftEntry {
  /** ipcache: a prefix; backends: "<frontend> -> <backend>" */
  kind: "ipcache" | "backends";
  entry: string;
  /** missing from the maps, in the maps but not published, or in the maps with another value */
  problem: "missing" | "extra" | "different";
  /** what differs, e.g. "identity 4711 in the map, 4712 published" */
  detail?: string;
}

/**
 * A remote cluster's share of this node's datapath, proven from the BPF maps themselves (read back
 * at each status request), not from the session: Cilium's status once said "all nodes connected"
 * while a global service was unreachable for ~70 s (https://github.com/cilium/cilium/issues/48555).
 */
export interface RemoteDatapathStatus {
  /**
   * What the remote published and this agent accepted (after validation and the merge), i.e. what
   * this node must program: nodes, ipcache entries (node IPs, pod CIDRs, pod IPs), the distinct
   * identities of those entries, service frontends with at least one of its backends, and
   * frontend→backend pairs.
   */
  published: Record<MeshEntryKind, number>;
  /** The same, counted in this node's BPF maps (a node counts when all its entries are there). */
  programmed: Record<MeshEntryKind, number>;
  /** Zero everywhere when the maps hold exactly what was published; sample: up to 5 entries. */
  drift: { missing: number; extra: number; different: number; sample: DatapathDriftEntry[] };
  /** When a change from this remote was last written to the BPF maps (absent: none yet). */
  lastAppliedAt?: string;
}

/** What an agent reports about each remote cluster (`meshctl clustermesh status` sums it up across nodes). */
export interface RemoteClusterStatus {
  name: string;
  /** The etcd connection is up. */
  connected: boolean;
  /** Connected, configuration retrieved and every kind synced: the remote's state is in use. */
  ready: boolean;
  /** Human-readable state, e.g. "connected", "waiting for sync canaries", "unreachable for 42 s". */
  status: string;
  config: { required: boolean; retrieved: boolean; clusterId?: number; syncedCanaries?: boolean };
  synced: { nodes: boolean; services: boolean; identities: boolean; endpoints: boolean };
  numNodes: number;
  numSharedServices: number;
  numIdentities: number;
  numEndpoints: number;
  numFailures: number;
  lastFailure?: string;
  lastFailureAt?: string;
  /**
   * Remote entries refused since this agent started, by reason: running totals that only go up
   * (an entry refused, fixed and refused again counts twice). Validation reasons (not-json,
   * cluster-mismatch, …) and merge reasons (foreign-address, overlapping-cidr, node-ip-conflict)
   * together.
   */
  rejectedTotal: Record<string, number>;
  /** Remote entries (or service backends) refused right now, by reason: goes down when fixed. */
  rejectedNow: Record<string, number>;
  /**
   * Legal remote entries (or parts of them) accepted but not used right now, by reason: IPv6 and
   * prefix addresses (`unsupported-address`), ports of an L4 protocol we do not program
   * (`unsupported-port`), services whose backends are not shared (`not-shared`). Not an error.
   */
  ignoredNow: Record<string, number>;
  /** Backends withdrawn after the remote stayed unreachable longer than the TTL. */
  backendsWithdrawn?: boolean;
  /** Published versus programmed in this node's BPF maps; absent when the datapath is not loaded. */
  datapath?: RemoteDatapathStatus;
}

export interface EncryptionPeerStatus {
  node: string;
  cluster: string;
  endpoint?: string;
  /** WireGuard */
  lastHandshake?: string;
  rxBytes?: number;
  txBytes?: number;
  /** IPsec (libipsec): established IKE and CHILD SAs with this node */
  sas?: { ike: number; child: number };
  /** IPsec (kernel XFRM): ESP states installed for this pair, per direction */
  states?: { in: number; out: number };
}

/** strongSwan's established SAs: totals, and per connection with the CHILD_SAs' ESP SPIs. */
export interface SaCounts {
  ike: number;
  child: number;
  /** connection name → established CHILD_SAs with their inbound/outbound ESP SPIs */
  byConnection: Record<string, { ike: number; child: number; spis: string[] }>;
}

export interface EncryptionStatus {
  mode: EncryptionMode;
  backend?: EncryptionBackendName;
  /** Why this backend (IPsec: the kernel ESP probe's finding). */
  backendDetail?: string;
  interface?: string;
  publicKey?: string;
  /** IPsec: SPI of the current key (what this node advertises as EncryptionKey). */
  keyId?: number;
  peers: EncryptionPeerStatus[];
  saCounts?: SaCounts;
  /** kernel XFRM: ESP states installed, per direction */
  xfrmStates?: { in: number; out: number };
  skipped: { node: string; reason: string; message?: string }[];
  skippedTotal: Record<string, number>;
  /** Prefixes blackholed because their node cannot be a peer (never sent plain). */
  dropPrefixes: string[];
  lastSync?: { at: string; error?: string };
  /** A configuration problem (e.g. the key Secret), also logged. */
  error?: string;
}

/**
 * GET /v1/status from an agent's unix socket, on a connection of its own (`agent: false`): Node's
 * global agent keeps sockets alive, and one the agent closed after its 5 s keep-alive timeout
 * while the caller was busy fails the next request with EPIPE.
 */
export function getAgentStatus(socketPath: string, timeoutMs = 5_000): Promise<AgentStatus> {
  return new Promise((resolve, reject) => {
    const options = { socketPath, path: "/v1/status", method: "GET", timeout: timeoutMs, agent: false };
    const req = request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        if (res.statusCode !== 200)
          return reject(new Error(`agent answered HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
        try {
          resolve(JSON.parse(text) as AgentStatus);
        } catch {
          reject(new Error("agent sent a status that is not JSON"));
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "ENOENT" || error.code === "ECONNREFUSED"
          ? new Error(`the agent is not running (nothing listens on ${socketPath})`)
          : error,
      ),
    );
    req.end();
  });
}
