/**
 * Published versus programmed, per remote cluster: what the node's datapath must hold of each
 * remote (the plan the datapath loop would write now, from what the remotes published and the
 * merge accepted) against what its BPF maps hold (read back from the maps). The status reports it
 * so that "connected" is proven by the maps, not by the etcd session
 * (https://github.com/cilium/cilium/issues/48555: status said every node was connected while a
 * global service was unreachable for ~70 s). Pure; one pass over each map's entries.
 *
 * Remote entries are attributed to a cluster by address: its accepted node IPs and pod CIDRs
 * (the merge guarantees no two clusters share either). ipcache entries carry the remote-cluster
 * flag, backends do not: a backend counts for the remote whose pod CIDRs or node IPs hold it.
 */
import { BackendState, type IpcacheValue } from "../../bpf/datapath/codecs.js";
import {
  type CurrentDatapathState,
  type DesiredDatapathState,
  type DesiredIpcacheEntry,
  expandRemoteNodes,
} from "../../bpf/datapath/reconcile.js";
import type { DatapathDriftEntry, MeshEntryKind, RemoteDatapathStatus } from "../../lib/api/agent-status.js";
import { frontendName } from "../status/status.js";

export const DRIFT_SAMPLE_SIZE = 5;

/** Reserved identities (below 256 in Cilium) are not counted as the remote's identities. */
const FIRST_ALLOCATED_IDENTITY = 256;

export interface RemoteNodeAddresses {
  cluster: string;
  nodeIp: string;
  podCidrs: readonly string[];
}

export interface MeshDriftInputs {
  /** Every connected remote cluster, also those with nothing accepted yet. */
  clusters: readonly string[];
  /** The remote nodes the merge accepted (they define which addresses are whose). */
  nodes: readonly RemoteNodeAddresses[];
  /** What the datapath loop would write now. */
  expected: DesiredDatapathState;
  /** What the BPF maps hold. */
  current: CurrentDatapathState;
  sampleSize?: number;
}

export type RemoteDatapathDrift = Omit<RemoteDatapathStatus, "lastAppliedAt">;

export interface MeshDrift {
  clusters: Map<string, RemoteDatapathDrift>;
  /** Remote-flagged ipcache entries of no connected cluster. */
  unowned: { count: number; sample: DatapathDriftEntry[] };
}

// ---- address → cluster ----

/**
 * A dotted-quad IPv4 address (up to the first "/") as a number, undefined for anything else.
 * Hand-rolled: it runs for every ipcache entry on every status request, and split/isIPv4 made the
 * comparison of 50k entries ~10× slower.
 */
export function ipv4Number(text: string): number | undefined {
  let value = 0;
  let octet = -1;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      octet = octet < 0 ? c - 48 : octet * 10 + c - 48;
      if (octet > 255) return undefined;
    } else if (c === 46 && octet >= 0 && dots < 3) {
      value = value * 256 + octet;
      octet = -1;
      dots++;
    } else if (c === 47) break;
    else return undefined;
  }
  if (dots !== 3 || octet < 0) return undefined;
  return value * 256 + octet;
}

interface OwnedRange {
  first: number;
  last: number;
  cluster: string;
}

/** Which remote cluster an address belongs to: node IPs first, then pod CIDRs (binary search). */
export class AddressOwners {
  private readonly nodeIps = new Map<string, string>();
  private readonly ranges: OwnedRange[] = [];

  constructor(nodes: readonly RemoteNodeAddresses[]) {
    for (const node of nodes) {
      this.nodeIps.set(node.nodeIp, node.cluster);
      this.nodeIps.set(`${node.nodeIp}/32`, node.cluster);
      for (const cidr of node.podCidrs) {
        const base = ipv4Number(cidr);
        if (base === undefined) continue;
        const size = 2 ** (32 - Number(cidr.split("/")[1] ?? 32));
        const first = Math.floor(base / size) * size;
        this.ranges.push({ first, last: first + size - 1, cluster: node.cluster });
      }
    }
    this.ranges.sort((a, b) => a.first - b.first);
  }

  /** address: an IP, or a prefix (its address counts) */
  of(address: string): string | undefined {
    const byNode = this.nodeIps.get(address);
    if (byNode !== undefined) return byNode;
    const value = ipv4Number(address);
    if (value === undefined) return undefined;
    let low = 0;
    let high = this.ranges.length - 1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      const range = this.ranges[mid];
      if (value < range.first) high = mid - 1;
      else if (value > range.last) low = mid + 1;
      else return range.cluster;
    }
    return undefined;
  }
}

// ---- comparison ----

const normalizePrefix = (prefix: string) => (prefix.includes("/") ? prefix : `${prefix}/32`);

function describeIpcache(value: Pick<IpcacheValue, "identity" | "tunnelEndpoint">): string {
  return `identity ${value.identity}${value.tunnelEndpoint ? ` via ${value.tunnelEndpoint}` : ""}`;
}

function sameIpcache(expected: DesiredIpcacheEntry, actual: IpcacheValue): boolean {
  return (
    expected.identity === actual.identity &&
    expected.tunnelEndpoint === actual.tunnelEndpoint &&
    Boolean(actual.remoteCluster)
  );
}

class ClusterTally {
  readonly published: Record<MeshEntryKind, number> = {
    nodes: 0,
    ipcache: 0,
    identities: 0,
    services: 0,
    backends: 0,
  };
  readonly programmed: Record<MeshEntryKind, number> = { ...this.published };
  readonly counts = { missing: 0, extra: 0, different: 0 };
  readonly samples: Record<DatapathDriftEntry["problem"], DatapathDriftEntry[]> = {
    missing: [],
    different: [],
    extra: [],
  };
  readonly publishedIdentities = new Set<number>();
  readonly programmedIdentities = new Set<number>();
  readonly publishedFrontends = new Set<string>();
  readonly programmedFrontends = new Set<string>();
  /** ipcache prefixes that are missing or different (a node with one of them is not programmed). */
  readonly badPrefixes = new Set<string>();

  constructor(private readonly sampleSize: number) {}

  drift(entry: DatapathDriftEntry): void {
    this.counts[entry.problem]++;
    const sample = this.samples[entry.problem];
    if (sample.length < this.sampleSize) sample.push(entry);
  }

  result(): RemoteDatapathDrift {
    this.published.identities = this.publishedIdentities.size;
    this.programmed.identities = this.programmedIdentities.size;
    this.published.services = this.publishedFrontends.size;
    this.programmed.services = this.programmedFrontends.size;
    const { missing, different, extra } = this.samples;
    return {
      published: this.published,
      programmed: this.programmed,
      drift: { ...this.counts, sample: [...missing, ...different, ...extra].slice(0, this.sampleSize) },
    };
  }
}

export function meshDatapathDrift(inputs: MeshDriftInputs): MeshDrift {
  const sampleSize = inputs.sampleSize ?? DRIFT_SAMPLE_SIZE;
  const owners = new AddressOwners(inputs.nodes);
  const tallies = new Map(inputs.clusters.map((name) => [name, new ClusterTally(sampleSize)]));
  const tally = (cluster: string | undefined) => (cluster === undefined ? undefined : tallies.get(cluster));
  const unowned: MeshDrift["unowned"] = { count: 0, sample: [] };

  // ipcache: the remote entries the loop would write (later entries win, as in reconcileDatapath)
  const expectedIpcache = new Map<string, { entry: DesiredIpcacheEntry; cluster: string }>();
  for (const entry of [...expandRemoteNodes(inputs.expected.remoteNodes), ...inputs.expected.ipcache]) {
    const prefix = normalizePrefix(entry.prefix);
    const cluster = owners.of(prefix);
    if (!entry.remoteCluster || cluster === undefined || !tallies.has(cluster)) {
      expectedIpcache.delete(prefix);
      continue;
    }
    expectedIpcache.set(prefix, { entry, cluster });
  }
  for (const { entry, cluster } of expectedIpcache.values()) {
    const t = tallies.get(cluster) as ClusterTally;
    t.published.ipcache++;
    if (entry.identity >= FIRST_ALLOCATED_IDENTITY) t.publishedIdentities.add(entry.identity);
  }
  const seen = new Set<string>();
  for (const [key, value] of inputs.current.ipcache) {
    if ((key.clusterId ?? 0) !== 0) continue;
    const prefix = normalizePrefix(key.prefix);
    const expected = expectedIpcache.get(prefix);
    if (!expected && !value.remoteCluster) continue; // a local entry
    if (expected) seen.add(prefix);
    const cluster = expected?.cluster ?? owners.of(prefix);
    const t = tally(cluster);
    if (!t) {
      unowned.count++;
      if (unowned.sample.length < sampleSize)
        unowned.sample.push({
          kind: "ipcache",
          entry: prefix,
          problem: "extra",
          detail: describeIpcache(value),
        });
      continue;
    }
    t.programmed.ipcache++;
    if (value.identity >= FIRST_ALLOCATED_IDENTITY) t.programmedIdentities.add(value.identity);
    if (!expected) {
      t.drift({ kind: "ipcache", entry: prefix, problem: "extra", detail: describeIpcache(value) });
    } else if (!sameIpcache(expected.entry, value)) {
      t.badPrefixes.add(prefix);
      t.drift({
        kind: "ipcache",
        entry: prefix,
        problem: "different",
        detail: `${describeIpcache(value)}${value.remoteCluster ? "" : " (no remote-cluster flag)"} in the map, ${describeIpcache(expected.entry)} published`,
      });
    }
  }
  for (const [prefix, { entry, cluster }] of expectedIpcache) {
    if (seen.has(prefix)) continue;
    const t = tallies.get(cluster) as ClusterTally;
    t.badPrefixes.add(prefix);
    t.drift({ kind: "ipcache", entry: prefix, problem: "missing", detail: describeIpcache(entry) });
  }

  // nodes: programmed when every one of its entries is
  for (const node of inputs.nodes) {
    const t = tallies.get(node.cluster);
    if (!t) continue;
    t.published.nodes++;
    const prefixes = [`${node.nodeIp}/32`, ...node.podCidrs.map(normalizePrefix)];
    if (!prefixes.some((prefix) => t.badPrefixes.has(prefix))) t.programmed.nodes++;
  }

  // services: frontend → backend pairs whose backend is the remote's
  const expectedPairs = new Map<string, string>();
  for (const service of inputs.expected.services) {
    const frontend = frontendName(service.frontend);
    for (const backend of service.backends) {
      if (backend.terminating) continue;
      const cluster = owners.of(backend.address);
      if (cluster === undefined || !tallies.has(cluster)) continue;
      expectedPairs.set(`${frontend} -> ${backend.address}:${backend.port}`, cluster);
    }
  }
  for (const [pair, cluster] of expectedPairs) {
    const t = tallies.get(cluster) as ClusterTally;
    t.published.backends++;
    t.publishedFrontends.add(pair.split(" -> ")[0]);
  }
  const frontends = new Map<string, { count: number; slots: number[] }>();
  for (const [key, value] of inputs.current.services) {
    if ((key.scope ?? 0) !== 0) continue;
    const frontend = frontendName(key);
    const entry = frontends.get(frontend) ?? { count: 0, slots: [] };
    if (key.backendSlot === 0) entry.count = value.count;
    else entry.slots[key.backendSlot] = value.backendId;
    frontends.set(frontend, entry);
  }
  const programmedPairs = new Set<string>();
  for (const [frontend, { count, slots }] of frontends) {
    for (let slot = 1; slot <= count; slot++) {
      const backendId = slots[slot];
      const backend = backendId === undefined ? undefined : inputs.current.backends.get(backendId);
      if (!backend) continue; // the pair the slot should hold shows as missing
      const cluster = owners.of(backend.address);
      const t = tally(cluster);
      if (!t) continue;
      const pair = `${frontend} -> ${backend.address}:${backend.port}`;
      if (programmedPairs.has(pair)) continue;
      programmedPairs.add(pair);
      t.programmed.backends++;
      t.programmedFrontends.add(frontend);
      if (!expectedPairs.has(pair)) t.drift({ kind: "backends", entry: pair, problem: "extra" });
      else if ((backend.state ?? BackendState.Active) !== BackendState.Active)
        t.drift({ kind: "backends", entry: pair, problem: "different", detail: "terminating in the map" });
    }
  }
  for (const [pair, cluster] of expectedPairs) {
    if (!programmedPairs.has(pair))
      (tallies.get(cluster) as ClusterTally).drift({ kind: "backends", entry: pair, problem: "missing" });
  }

  return {
    clusters: new Map([...tallies].map(([name, t]) => [name, t.result()])),
    unowned,
  };
}
