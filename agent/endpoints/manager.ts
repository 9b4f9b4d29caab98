/**
 * Pod endpoints: what CNI ADD/DEL/CHECK/GC do, and the resync that removes endpoints whose pods
 * are gone. Each attachment (container id + ifname) is serialized; different pods run in parallel.
 * Order on ADD: resolve the identity (may refuse the pod) → allocate the IP and write the record →
 * veth + addresses + routes → the endpoint's network policy into the policy maps → BPF links and
 * the endpoints-map entry with its policy flags → confirm the pod still exists. The pod is thus
 * enforced from its first packet (Cilium's CNI plugin likewise asks for SyncBuildEndpoint, so the
 * endpoint is regenerated with its policy before ADD returns, GH-4409:
 * https://github.com/cilium/cilium/blob/main/plugins/cilium-cni/cmd/cmd.go).
 * Any failure tears down exactly what was created, so a failed or raced ADD leaks nothing.
 */
import { existsSync } from "node:fs";
import { interfaceIndex } from "../../bpf/libbpf-ts/index.js";
import {
  type AgentCniRequest,
  CNI_VERSION,
  CniError,
  CniErrorCode,
  type CniResult,
} from "../../lib/api/cni-protocol.js";
import type { Logger } from "../../lib/log.js";
import {
  IdentityKeyTooLongError,
  labelList,
  type SecurityLabels,
  securityLabels,
} from "../identity/labels.js";
import { IpamExhaustedError, type PodIpAllocator } from "../ipam/allocator.js";
import { endpointId, endpointMacs, isEndpointInterface, POD_GATEWAY } from "./naming.js";
import type { EndpointNetlink } from "./netlink.js";
import type { EndpointRecord, EndpointStore, NamedPort } from "./store.js";

/** Plugin-specific CNI error codes (the spec reserves 100+ for plugins). */
export const AgentCniErrorCode = {
  IdentityRefused: 100,
  PodGone: 101,
  IpamExhausted: 102,
  EndpointBroken: 103,
  NotReady: CniErrorCode.TryAgainLater,
} as const;

export interface PodInfo {
  uid: string;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  namespaceLabels: Record<string, string>;
  serviceAccount: string;
  namedPorts: NamedPort[];
  /** deletionTimestamp is set: an ADD for it is refused, but its running endpoint is kept until DEL */
  terminating: boolean;
}

export interface PodDirectory {
  /**
   * The pod with this uid (any uid when absent), or undefined when it does not exist: from the
   * watch cache when it holds that pod, else read from the API (a pod created a moment ago, or
   * one the cache already saw deleted, is checked at the source).
   */
  getPod(namespace: string, name: string, uid?: string): Promise<PodInfo | undefined>;
}

export interface IdentityResolver {
  resolve(labels: SecurityLabels): Promise<number>;
}

export interface EndpointDatapath {
  /**
   * The programs on the host veth (clsact filters or tcx links) and the endpoints-map entry,
   * carrying the endpoint's network policy flags (EP_F_*).
   */
  attach(record: EndpointRecord, policyFlags: number): Promise<void>;
  detach(record: EndpointRecord): Promise<void>;
  hasEndpoint(ip: string): boolean;
}

export interface EndpointPolicyGate {
  /**
   * Resolves the new endpoint's network policy and writes it to the policy maps; resolves to the
   * EP_F_* flags of its endpoints-map entry, rejects when the policy could not be programmed.
   */
  prepare(record: EndpointRecord): Promise<number>;
}

export interface EndpointManagerDeps {
  store: EndpointStore;
  netlink: EndpointNetlink;
  datapath: EndpointDatapath;
  policy: EndpointPolicyGate;
  identities: IdentityResolver;
  pods: PodDirectory;
  clusterName: string;
  podMtu: number;
  log: Logger;
  /** Called after endpoints changed (the agent re-syncs MeshEndpoints and the datapath). */
  onChange: () => void;
}

export interface EndpointCounters {
  added: number;
  deleted: number;
  addFailures: number;
  garbageCollected: number;
}

export class EndpointManager {
  private readonly records = new Map<string, EndpointRecord>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private allocator: PodIpAllocator | undefined;
  readonly counters: EndpointCounters = { added: 0, deleted: 0, addFailures: 0, garbageCollected: 0 };

  constructor(private readonly deps: EndpointManagerDeps) {}

  list(): EndpointRecord[] {
    return [...this.records.values()];
  }

  get podCidr(): string | undefined {
    return this.allocator?.podCidr;
  }

  /**
   * Restores what a previous run left: the records from the state dir, checked against the host's
   * links (current ifindex) and the pod CIDR. IPs go back into the allocator before any ADD is served.
   * Returns the records that need tearing down (crashed ADDs, links gone, wrong CIDR).
   */
  async restore(allocator: PodIpAllocator): Promise<EndpointRecord[]> {
    this.allocator = allocator;
    const links = new Map((await this.deps.netlink.listHostLinks()).map((link) => [link.name, link]));
    const broken: EndpointRecord[] = [];
    for (const record of this.deps.store.loadAll((file, error) =>
      this.deps.log.warn({ file, err: error }, "unreadable endpoint record skipped"),
    )) {
      this.records.set(record.id, record);
      try {
        allocator.restore(record.ip, record.id);
      } catch (error) {
        this.deps.log.warn({ endpoint: record.id, ip: record.ip, err: error }, "endpoint IP not restorable");
        broken.push(record);
        continue;
      }
      const link = links.get(record.id);
      if (record.state !== "ready" || !link) {
        broken.push(record);
        continue;
      }
      record.ifindex = link.ifindex;
    }
    return broken;
  }

  /** Host links named like endpoints but without a record (e.g. a crash between link and record). */
  async orphanLinks(): Promise<string[]> {
    const links = await this.deps.netlink.listHostLinks();
    return links.map((l) => l.name).filter((name) => isEndpointInterface(name) && !this.records.has(name));
  }

  async removeOrphanLink(name: string): Promise<void> {
    await this.deps.netlink.remove(name);
  }

  async add(request: AgentCniRequest): Promise<CniResult> {
    const { containerId, ifname, netns } = checkAttachment(request);
    if (!netns) throw new CniError(CniErrorCode.InvalidEnvironment, "CNI_NETNS is required for ADD");
    if (!existsSync(netns))
      throw new CniError(CniErrorCode.InvalidEnvironment, `network namespace ${netns} does not exist`);
    const podNamespace = request.args.K8S_POD_NAMESPACE;
    const podName = request.args.K8S_POD_NAME;
    if (!podNamespace || !podName) {
      throw new CniError(
        CniErrorCode.InvalidEnvironment,
        "CNI_ARGS must name the pod (K8S_POD_NAMESPACE and K8S_POD_NAME)",
      );
    }
    const allocator = this.allocator;
    if (!allocator)
      throw new CniError(AgentCniErrorCode.NotReady, "the agent is not ready (no pod CIDR yet)");
    const id = endpointId(containerId, ifname);
    return this.locked(id, async () => {
      const existing = this.records.get(id);
      if (existing?.state === "ready" && existing.netns === netns && this.linkPresent(existing)) {
        return this.result(existing); // a retried ADD: same answer
      }
      if (existing) await this.teardown(existing, "replaced by a new ADD");
      const wantedUid = request.args.K8S_POD_UID;
      const pod = await this.deps.pods.getPod(podNamespace, podName, wantedUid);
      if (!pod || pod.terminating || (wantedUid && pod.uid !== wantedUid)) {
        this.counters.addFailures++;
        throw new CniError(
          AgentCniErrorCode.PodGone,
          `pod ${podNamespace}/${podName} does not exist (any more)`,
        );
      }
      const labels = securityLabels({
        namespace: podNamespace,
        podLabels: pod.labels,
        namespaceLabels: pod.namespaceLabels,
        serviceAccount: pod.serviceAccount,
        clusterName: this.deps.clusterName,
      });
      let identity: number;
      try {
        identity = await this.deps.identities.resolve(labels);
      } catch (error) {
        this.counters.addFailures++;
        if (error instanceof IdentityKeyTooLongError) {
          this.deps.log.warn(
            { pod: `${podNamespace}/${podName}`, err: error },
            "pod refused: identity key too long",
          );
          throw new CniError(
            AgentCniErrorCode.IdentityRefused,
            `pod ${podNamespace}/${podName}: ${error.message}`,
            undefined,
            { cause: error },
          );
        }
        throw new CniError(
          CniErrorCode.TryAgainLater,
          `identity for ${podNamespace}/${podName}: ${(error as Error).message}`,
          undefined,
          { cause: error },
        );
      }
      let ip: string;
      try {
        ip = allocator.allocate(id);
      } catch (error) {
        this.counters.addFailures++;
        if (error instanceof IpamExhaustedError)
          throw new CniError(AgentCniErrorCode.IpamExhausted, error.message, undefined, { cause: error });
        throw error;
      }
      const macs = endpointMacs(containerId, ifname);
      const record: EndpointRecord = {
        id,
        containerId,
        ifname,
        netns,
        podNamespace,
        podName,
        podUid: pod.uid,
        ip,
        ...macs,
        identity,
        labels: labelList(labels),
        namedPorts: pod.namedPorts,
        state: "creating",
        createdAt: new Date().toISOString(),
      };
      this.deps.store.save(record);
      this.records.set(id, record);
      try {
        record.ifindex = await this.deps.netlink.create({
          hostIf: id,
          hostMac: macs.hostMac,
          podMac: macs.podMac,
          netnsPath: netns,
          podIf: ifname,
          podIp: ip,
          mtu: this.deps.podMtu,
        });
        // no packet before the policy: the pod runs only once ADD returned, and by then its
        // policy entries are in cm_policy and its flags in the endpoints-map entry
        let policyFlags: number;
        try {
          policyFlags = await this.deps.policy.prepare(record);
        } catch (error) {
          throw new CniError(
            CniErrorCode.TryAgainLater,
            `network policy of ${podNamespace}/${podName}: ${(error as Error).message}`,
            undefined,
            { cause: error },
          );
        }
        await this.deps.datapath.attach(record, policyFlags);
        // The pod may have been deleted while we worked: then nobody will DEL this attachment.
        // (A deletion the cache has not seen yet is caught by the stale-endpoint sweep its event triggers.)
        const still = await this.deps.pods.getPod(podNamespace, podName, pod.uid);
        if (!still || still.terminating || still.uid !== pod.uid) {
          throw new CniError(
            AgentCniErrorCode.PodGone,
            `pod ${podNamespace}/${podName} was deleted during ADD`,
          );
        }
        record.state = "ready";
        this.deps.store.save(record);
      } catch (error) {
        this.counters.addFailures++;
        await this.teardown(record, "ADD failed").catch((cleanup) =>
          this.deps.log.error({ endpoint: id, err: cleanup }, "cleanup after a failed ADD failed"),
        );
        if (error instanceof CniError) throw error;
        throw new CniError(
          CniErrorCode.IoFailure,
          `ADD ${podNamespace}/${podName}: ${(error as Error).message}`,
          undefined,
          { cause: error },
        );
      }
      this.counters.added++;
      this.deps.log.info(
        { endpoint: id, pod: `${podNamespace}/${podName}`, ip, identity },
        "endpoint created",
      );
      this.deps.onChange();
      return this.result(record);
    });
  }

  async del(request: AgentCniRequest): Promise<void> {
    const { containerId, ifname } = checkAttachment(request);
    const id = endpointId(containerId, ifname);
    await this.locked(id, async () => {
      const record = this.records.get(id);
      if (!record) {
        await this.deps.netlink.remove(id); // a link without a record (crash) still goes
        return;
      }
      await this.teardown(record, "CNI DEL");
      this.counters.deleted++;
    });
  }

  async check(request: AgentCniRequest): Promise<void> {
    const { containerId, ifname } = checkAttachment(request);
    const record = this.records.get(endpointId(containerId, ifname));
    if (record?.state !== "ready") {
      throw new CniError(CniErrorCode.UnknownContainer, `no endpoint for container ${containerId} ${ifname}`);
    }
    const problems: string[] = [];
    if (!this.linkPresent(record)) problems.push(`host interface ${record.id} is missing`);
    if (!this.deps.datapath.hasEndpoint(record.ip)) problems.push(`no endpoints-map entry for ${record.ip}`);
    if (!(await this.deps.netlink.podHasAddress(record.netns, record.ifname, record.ip)))
      problems.push(`${record.ifname} in ${record.netns} does not carry ${record.ip}/32`);
    if (problems.length > 0) throw new CniError(AgentCniErrorCode.EndpointBroken, problems.join("; "));
  }

  /** CNI GC: every attachment not in the valid list goes. */
  async gc(valid: readonly { containerID?: string; ifname?: string }[]): Promise<number> {
    const keep = new Set(valid.map((a) => endpointId(a.containerID ?? "", a.ifname ?? "eth0")));
    let removed = 0;
    for (const record of this.list()) {
      if (keep.has(record.id)) continue;
      await this.locked(record.id, () => this.teardown(record, "CNI GC"));
      removed++;
    }
    this.counters.garbageCollected += removed;
    return removed;
  }

  /** Tears down endpoints whose pod is gone (confirmed by podGone), and records left broken. */
  async removeStale(
    podGone: (record: EndpointRecord) => Promise<boolean>,
    broken: EndpointRecord[] = [],
  ): Promise<number> {
    let removed = 0;
    for (const record of broken) {
      await this.locked(record.id, () => this.teardown(record, "left broken by a previous run"));
      removed++;
    }
    for (const record of this.list()) {
      if (record.state !== "ready") continue;
      if (!(await podGone(record))) continue;
      await this.locked(record.id, async () => {
        if (this.records.get(record.id) === record) await this.teardown(record, "pod is gone");
      });
      removed++;
    }
    this.counters.garbageCollected += removed;
    return removed;
  }

  /**
   * Pods whose labels (or namespace labels) changed since their ADD get the identity of their new
   * labels: the record, the datapath and the policies follow through onChange. Returns how many
   * endpoints changed identity.
   */
  async refreshIdentities(): Promise<number> {
    let changed = 0;
    for (const record of this.list()) {
      if (record.state !== "ready") continue;
      const pod = await this.deps.pods.getPod(record.podNamespace, record.podName, record.podUid);
      if (!pod || pod.terminating) continue; // the stale sweep's business
      const labels = securityLabels({
        namespace: record.podNamespace,
        podLabels: pod.labels,
        namespaceLabels: pod.namespaceLabels,
        serviceAccount: pod.serviceAccount,
        clusterName: this.deps.clusterName,
      });
      const list = labelList(labels);
      if (sameLabels(list, record.labels)) continue;
      const identity = await this.deps.identities.resolve(labels);
      await this.locked(record.id, async () => {
        if (this.records.get(record.id) !== record) return; // replaced or removed meanwhile
        record.identity = identity;
        record.labels = list;
        record.namedPorts = pod.namedPorts;
        this.deps.store.save(record);
      });
      this.deps.log.info(
        { endpoint: record.id, pod: `${record.podNamespace}/${record.podName}`, identity },
        "endpoint labels changed: new identity",
      );
      changed++;
    }
    if (changed > 0) this.deps.onChange();
    return changed;
  }

  private linkPresent(record: EndpointRecord): boolean {
    try {
      return interfaceIndex(record.id) === record.ifindex;
    } catch {
      return false;
    }
  }

  private async teardown(record: EndpointRecord, reason: string): Promise<void> {
    // the device first: its links go defunct with it, and detaching a defunct link costs nothing
    // (a live one waits an RCU grace period), nor is there a moment without programs on the veth
    await this.deps.netlink.remove(record.id);
    await this.deps.datapath.detach(record);
    this.allocator?.release(record.id);
    this.deps.store.remove(record.id);
    this.records.delete(record.id);
    this.deps.log.info(
      { endpoint: record.id, pod: `${record.podNamespace}/${record.podName}`, ip: record.ip, reason },
      "endpoint removed",
    );
    this.deps.onChange();
  }

  private result(record: EndpointRecord): CniResult {
    return {
      cniVersion: CNI_VERSION,
      interfaces: [
        { name: record.id, mac: record.hostMac },
        { name: record.ifname, mac: record.podMac, mtu: this.deps.podMtu, sandbox: record.netns },
      ],
      ips: [{ address: `${record.ip}/32`, gateway: POD_GATEWAY, interface: 1 }],
      routes: [{ dst: "0.0.0.0/0", gw: POD_GATEWAY }],
      dns: {},
    };
  }

  private async locked<T>(id: string, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(id) ?? Promise.resolve();
    // the previous holder's caller got its error; this one only waits for its turn
    const next = previous.catch(() => undefined).then(work);
    this.locks.set(id, next);
    try {
      return await next;
    } finally {
      if (this.locks.get(id) === next) this.locks.delete(id);
    }
  }
}

function checkAttachment(request: AgentCniRequest): { containerId: string; ifname: string; netns: string } {
  if (typeof request.containerId !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(request.containerId)) {
    throw new CniError(CniErrorCode.InvalidEnvironment, "containerId is missing or invalid");
  }
  const ifname = typeof request.ifname === "string" && request.ifname ? request.ifname : "";
  if (!ifname || ifname.length > 15 || /[/\s:]/.test(ifname)) {
    throw new CniError(CniErrorCode.InvalidEnvironment, `ifname "${ifname}" is not a valid interface name`);
  }
  if (request.netns !== undefined && typeof request.netns !== "string") {
    throw new CniError(CniErrorCode.InvalidEnvironment, "netns must be a string");
  }
  return { containerId: request.containerId, ifname, netns: request.netns ?? "" };
}

function sameLabels(a: readonly string[], b: readonly string[]): boolean {
  const sortedB = [...b].sort();
  return a.length === b.length && [...a].sort().every((label, index) => label === sortedB[index]);
}
