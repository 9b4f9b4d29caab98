/**
 * The datapath reconciler's decision: from the desired state (services with backends, local
 * endpoints, remote nodes, ipcache entries) and the maps' current contents, compute the minimal
 * ordered list of map writes and deletes. Pure: no I/O, unit-tested without root; apply.ts runs it.
 *
 * Ordering guarantees (each phase only depends on the ones before it):
 *   1. new/changed backends are written            (a slot never points at a missing backend)
 *   2. rev-NAT entries of new frontends are written (a reply never lacks its VIP)
 *   3. per service: changed slots 1..newCount, then the frontend entry with the new count,
 *      then slots beyond the new count are deleted  (a live service never loses all backends:
 *      between any two writes every slot 1..count points at a valid backend)
 *   4. removed services: frontend first (lookups miss), then its slots, then its rev-NAT entry
 *   5. endpoints and ipcache entries: writes before deletes
 *   6. backends no longer referenced are deleted last (conntrack'd flows keep theirs until then)
 * Backend ids and rev-NAT indices already in the maps are reused; new ones take the lowest free id.
 */
import {
  type Backend,
  BackendState,
  type EndpointInfo,
  type EndpointKey,
  type IpcacheKey,
  type IpcacheValue,
  type RevNat,
  ServiceFlags,
  type ServiceKey,
  type ServiceValue,
} from "./codecs.js";

export interface Frontend {
  address: string;
  port: number;
  proto: number;
}

export interface DesiredBackend {
  address: string;
  port: number;
  clusterId?: number;
  zone?: number;
  /** Terminating backends keep their existing flows (conntrack) but get no new ones. */
  terminating?: boolean;
}

export interface DesiredService {
  frontend: Frontend;
  backends: DesiredBackend[];
  /** ClientIP session affinity: a client's new flows stick to its backend for this long (seconds). */
  affinityTimeoutSeconds?: number;
}

export interface DesiredEndpoint {
  address: string;
  ifindex: number;
  identity: number;
  mac: string;
  nodeMac: string;
  /** EP_F_* network policy bits (policy slot, enforced directions, key levels): bpf/datapath/policy-entries.ts */
  policyFlags?: number;
}

export interface DesiredIpcacheEntry {
  prefix: string;
  identity: number;
  tunnelEndpoint?: string;
  remoteCluster?: boolean;
  encryptKey?: number;
  /** a node's own entry: the cluster owning it (tunnel ingress drops the trust of other clusters' identities) */
  clusterId?: number;
}

export interface DesiredRemoteNode {
  /** the node's IP on the underlay: the tunnel endpoint */
  nodeIp: string;
  /** the node's pod CIDRs: traffic to them is tunneled to nodeIp */
  podCidrs: string[];
  /** identity of the node itself (reserved:remote-node) */
  nodeIdentity: number;
  /** identity of pod-CIDR addresses not known individually (reserved:world, as in Cilium) */
  podCidrIdentity: number;
  remoteCluster?: boolean;
  /** the cluster owning the node (its cluster id, 1-255); identities it sends must carry it */
  clusterId?: number;
}

export interface DesiredDatapathState {
  services: DesiredService[];
  endpoints: DesiredEndpoint[];
  remoteNodes: DesiredRemoteNode[];
  /** individual entries (e.g. remote pod IPs with their identity); win over remote-node prefixes */
  ipcache: DesiredIpcacheEntry[];
}

export interface CurrentDatapathState {
  services: ReadonlyArray<readonly [ServiceKey, ServiceValue]>;
  backends: ReadonlyMap<number, Backend>;
  revNat: ReadonlyMap<number, RevNat>;
  endpoints: ReadonlyArray<readonly [EndpointKey, EndpointInfo]>;
  ipcache: ReadonlyArray<readonly [IpcacheKey, IpcacheValue]>;
}

export type DatapathOp =
  | { op: "set"; map: "backends"; key: number; value: Backend }
  | { op: "delete"; map: "backends"; key: number }
  | { op: "set"; map: "revNat"; key: number; value: RevNat }
  | { op: "delete"; map: "revNat"; key: number }
  | { op: "set"; map: "services"; key: ServiceKey; value: ServiceValue }
  | { op: "delete"; map: "services"; key: ServiceKey }
  | { op: "set"; map: "endpoints"; key: EndpointKey; value: EndpointInfo }
  | { op: "delete"; map: "endpoints"; key: EndpointKey }
  | { op: "set"; map: "ipcache"; key: IpcacheKey; value: IpcacheValue }
  | { op: "delete"; map: "ipcache"; key: IpcacheKey };

export class ReconcileError extends Error {}

const MAX_ID = { backends: 0xffff_ffff, revNat: 0xffff } as const;
const MAX_SLOTS = 0xffff;

// ---- identity strings for comparison ----

const frontendId = (f: { address: string; port: number; proto: number; scope?: number }) =>
  `${f.address}|${f.port}|${f.proto}|${f.scope ?? 0}`;
const backendIdentity = (b: Backend) => `${b.address}|${b.port}|${b.proto}|${b.clusterId ?? 0}`;
const normalizePrefix = (prefix: string) =>
  prefix.includes("/") ? prefix : `${prefix}/${prefix.includes(":") ? 128 : 32}`;
const ipcacheId = (key: IpcacheKey) => `${normalizePrefix(key.prefix)}|${key.clusterId ?? 0}`;

function sameBackend(a: Backend, b: Backend): boolean {
  return (
    backendIdentity(a) === backendIdentity(b) &&
    (a.state ?? 0) === (b.state ?? 0) &&
    (a.zone ?? 0) === (b.zone ?? 0)
  );
}

function sameServiceValue(a: ServiceValue, b: ServiceValue): boolean {
  return (
    a.backendId === b.backendId &&
    a.count === b.count &&
    a.revNatIndex === b.revNatIndex &&
    (a.flags ?? 0) === (b.flags ?? 0) &&
    (a.flags2 ?? 0) === (b.flags2 ?? 0)
  );
}

function sameEndpoint(a: EndpointInfo, b: EndpointInfo): boolean {
  return (
    a.ifindex === b.ifindex &&
    a.identity === b.identity &&
    a.mac.toLowerCase() === b.mac.toLowerCase() &&
    a.nodeMac.toLowerCase() === b.nodeMac.toLowerCase() &&
    (a.flags ?? 0) === (b.flags ?? 0)
  );
}

function sameIpcache(a: IpcacheValue, b: IpcacheValue): boolean {
  return (
    a.identity === b.identity &&
    a.tunnelEndpoint === b.tunnelEndpoint &&
    Boolean(a.remoteCluster) === Boolean(b.remoteCluster) &&
    (a.encryptKey ?? 0) === (b.encryptKey ?? 0) &&
    (a.clusterId ?? 0) === (b.clusterId ?? 0)
  );
}

/** Lowest-free-id allocator seeded with the ids in use. */
class IdAllocator {
  private next = 1;
  constructor(
    private readonly used: Set<number>,
    private readonly max: number,
    private readonly what: string,
  ) {}
  allocate(): number {
    while (this.used.has(this.next)) this.next++;
    if (this.next > this.max) throw new ReconcileError(`out of ${this.what} ids`);
    this.used.add(this.next);
    return this.next;
  }
}

interface CurrentService {
  frontend: ServiceValue | undefined;
  key: ServiceKey;
  slots: Map<number, ServiceValue>;
}

function groupCurrentServices(current: CurrentDatapathState): Map<string, CurrentService> {
  const grouped = new Map<string, CurrentService>();
  for (const [key, value] of current.services) {
    const id = frontendId(key);
    let entry = grouped.get(id);
    if (!entry) {
      entry = { frontend: undefined, key: { ...key, backendSlot: 0 }, slots: new Map() };
      grouped.set(id, entry);
    }
    if (key.backendSlot === 0) entry.frontend = value;
    else entry.slots.set(key.backendSlot, value);
  }
  return grouped;
}

/** Keeps backends in the slots they already occupy; moves or adds only what must change. */
function assignSlots(previous: ReadonlyMap<number, ServiceValue>, desiredIds: number[]): number[] {
  const count = desiredIds.length;
  const wanted = new Set(desiredIds);
  const slots: Array<number | undefined> = new Array(count + 1).fill(undefined);
  const placed = new Set<number>();
  for (let slot = 1; slot <= count; slot++) {
    const id = previous.get(slot)?.backendId;
    if (id !== undefined && wanted.has(id) && !placed.has(id)) {
      slots[slot] = id;
      placed.add(id);
    }
  }
  const remaining = desiredIds.filter((id) => !placed.has(id));
  for (let slot = 1; slot <= count; slot++) {
    if (slots[slot] === undefined) slots[slot] = remaining.shift();
  }
  return slots.slice(1) as number[];
}

export function expandRemoteNodes(nodes: DesiredRemoteNode[]): DesiredIpcacheEntry[] {
  const entries: DesiredIpcacheEntry[] = [];
  for (const node of nodes) {
    entries.push({
      prefix: normalizePrefix(node.nodeIp),
      identity: node.nodeIdentity,
      remoteCluster: node.remoteCluster,
      ...(node.clusterId ? { clusterId: node.clusterId } : {}),
    });
    for (const cidr of node.podCidrs) {
      entries.push({
        prefix: cidr,
        identity: node.podCidrIdentity,
        tunnelEndpoint: node.nodeIp,
        remoteCluster: node.remoteCluster,
      });
    }
  }
  return entries;
}

export function reconcileDatapath(
  desired: DesiredDatapathState,
  current: CurrentDatapathState,
): DatapathOp[] {
  const backendWrites: DatapathOp[] = [];
  const revNatWrites: DatapathOp[] = [];
  const serviceOps: DatapathOp[] = [];
  const serviceRemovals: DatapathOp[] = [];
  const revNatRemovals: DatapathOp[] = [];
  const backendRemovals: DatapathOp[] = [];

  // --- backends: reuse ids of identical (address, port, proto, cluster) entries ---
  const backendIdByIdentity = new Map<string, number>();
  for (const [id, backend] of current.backends) backendIdByIdentity.set(backendIdentity(backend), id);
  const backendIds = new IdAllocator(new Set(current.backends.keys()), MAX_ID.backends, "backend");
  const referencedBackends = new Set<number>();
  const desiredBackendValue = new Map<number, Backend>();

  const resolveBackend = (service: DesiredService, backend: DesiredBackend): number => {
    const value: Backend = {
      address: backend.address,
      port: backend.port,
      proto: service.frontend.proto,
      state: backend.terminating ? BackendState.Terminating : BackendState.Active,
      clusterId: backend.clusterId ?? 0,
      zone: backend.zone ?? 0,
    };
    const identity = backendIdentity(value);
    let id = backendIdByIdentity.get(identity);
    if (id === undefined) {
      id = backendIds.allocate();
      backendIdByIdentity.set(identity, id);
    }
    const already = desiredBackendValue.get(id);
    // the same backend in two services: "active" wins, it must stay selectable
    if (!already || (already.state === BackendState.Terminating && value.state === BackendState.Active)) {
      desiredBackendValue.set(id, value);
    }
    referencedBackends.add(id);
    return id;
  };

  // --- services ---
  const currentServices = groupCurrentServices(current);
  const revNatInUse = new Set(current.revNat.keys());
  const revNatIds = new IdAllocator(revNatInUse, MAX_ID.revNat, "rev-NAT");
  const desiredFrontends = new Set<string>();
  const desiredRevNat = new Set<number>();

  for (const service of desired.services) {
    const id = frontendId(service.frontend);
    if (desiredFrontends.has(id)) throw new ReconcileError(`duplicate frontend ${id}`);
    desiredFrontends.add(id);
    const existing = currentServices.get(id);
    const activeIds: number[] = [];
    for (const backend of service.backends) {
      const backendId = resolveBackend(service, backend);
      if (!backend.terminating && !activeIds.includes(backendId)) activeIds.push(backendId);
    }
    if (activeIds.length > MAX_SLOTS) throw new ReconcileError(`${id}: too many backends`);

    const revNatIndex = existing?.frontend?.revNatIndex || revNatIds.allocate();
    desiredRevNat.add(revNatIndex);
    const revNatValue: RevNat = { address: service.frontend.address, port: service.frontend.port };
    const currentRevNat = current.revNat.get(revNatIndex);
    if (
      !currentRevNat ||
      currentRevNat.address !== revNatValue.address ||
      currentRevNat.port !== revNatValue.port
    ) {
      revNatWrites.push({ op: "set", map: "revNat", key: revNatIndex, value: revNatValue });
    }

    const previousSlots = existing?.slots ?? new Map<number, ServiceValue>();
    const slots = assignSlots(previousSlots, activeIds);
    const baseKey: ServiceKey = { ...service.frontend, backendSlot: 0, scope: 0 };
    slots.forEach((backendId, index) => {
      const slot = index + 1;
      const value: ServiceValue = { backendId, count: 0, revNatIndex };
      const old = previousSlots.get(slot);
      if (!old || !sameServiceValue(old, value)) {
        serviceOps.push({ op: "set", map: "services", key: { ...baseKey, backendSlot: slot }, value });
      }
    });
    const affinity = service.affinityTimeoutSeconds ?? 0;
    const frontendValue: ServiceValue = {
      backendId: affinity,
      count: slots.length,
      revNatIndex,
      flags: affinity > 0 ? ServiceFlags.Affinity : 0,
    };
    if (!existing?.frontend || !sameServiceValue(existing.frontend, frontendValue)) {
      serviceOps.push({ op: "set", map: "services", key: baseKey, value: frontendValue });
    }
    for (const slot of [...previousSlots.keys()].sort((a, b) => a - b)) {
      if (slot > slots.length)
        serviceOps.push({ op: "delete", map: "services", key: { ...baseKey, backendSlot: slot } });
    }
  }

  for (const [id, service] of currentServices) {
    if (desiredFrontends.has(id)) continue;
    if (service.frontend) serviceRemovals.push({ op: "delete", map: "services", key: service.key });
    for (const slot of [...service.slots.keys()].sort((a, b) => a - b)) {
      serviceRemovals.push({ op: "delete", map: "services", key: { ...service.key, backendSlot: slot } });
    }
  }
  for (const index of [...current.revNat.keys()].sort((a, b) => a - b)) {
    if (!desiredRevNat.has(index)) revNatRemovals.push({ op: "delete", map: "revNat", key: index });
  }

  for (const [id, value] of [...desiredBackendValue].sort((a, b) => a[0] - b[0])) {
    const old = current.backends.get(id);
    if (!old || !sameBackend(old, value)) backendWrites.push({ op: "set", map: "backends", key: id, value });
  }
  for (const id of [...current.backends.keys()].sort((a, b) => a - b)) {
    if (!referencedBackends.has(id)) backendRemovals.push({ op: "delete", map: "backends", key: id });
  }

  // --- endpoints ---
  const endpointOps: DatapathOp[] = [];
  const endpointRemovals: DatapathOp[] = [];
  const currentEndpoints = new Map(current.endpoints.map(([key, value]) => [key.address, value]));
  const desiredEndpoints = new Set<string>();
  for (const endpoint of desired.endpoints) {
    desiredEndpoints.add(endpoint.address);
    const value: EndpointInfo = {
      ifindex: endpoint.ifindex,
      identity: endpoint.identity,
      mac: endpoint.mac,
      nodeMac: endpoint.nodeMac,
      flags: endpoint.policyFlags ?? 0,
    };
    const old = currentEndpoints.get(endpoint.address);
    if (!old || !sameEndpoint(old, value)) {
      endpointOps.push({ op: "set", map: "endpoints", key: { address: endpoint.address }, value });
    }
  }
  for (const [key] of current.endpoints) {
    if (!desiredEndpoints.has(key.address)) endpointRemovals.push({ op: "delete", map: "endpoints", key });
  }

  // --- ipcache: individual entries override remote-node prefixes with the same key ---
  const ipcacheOps: DatapathOp[] = [];
  const ipcacheRemovals: DatapathOp[] = [];
  const desiredIpcache = new Map<string, { key: IpcacheKey; value: IpcacheValue }>();
  for (const entry of [...expandRemoteNodes(desired.remoteNodes), ...desired.ipcache]) {
    const key: IpcacheKey = { prefix: normalizePrefix(entry.prefix), clusterId: 0 };
    const value: IpcacheValue = { identity: entry.identity };
    if (entry.tunnelEndpoint !== undefined) value.tunnelEndpoint = entry.tunnelEndpoint;
    if (entry.remoteCluster) value.remoteCluster = true;
    if (entry.encryptKey) value.encryptKey = entry.encryptKey;
    if (entry.clusterId) value.clusterId = entry.clusterId;
    desiredIpcache.set(ipcacheId(key), { key, value });
  }
  const currentIpcache = new Map(current.ipcache.map(([key, value]) => [ipcacheId(key), value]));
  for (const [id, { key, value }] of desiredIpcache) {
    const old = currentIpcache.get(id);
    if (!old || !sameIpcache(old, value)) ipcacheOps.push({ op: "set", map: "ipcache", key, value });
  }
  for (const [key] of current.ipcache) {
    if (!desiredIpcache.has(ipcacheId(key))) ipcacheRemovals.push({ op: "delete", map: "ipcache", key });
  }

  return [
    ...backendWrites,
    ...revNatWrites,
    ...serviceOps,
    ...serviceRemovals,
    ...revNatRemovals,
    ...endpointOps,
    ...ipcacheOps,
    ...endpointRemovals,
    ...ipcacheRemovals,
    ...backendRemovals,
  ];
}
