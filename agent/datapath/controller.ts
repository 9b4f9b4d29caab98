/**
 * The node's BPF datapath: loads (or, after a restart, re-opens the pinned maps of) the programs
 * under --bpffs-root, attaches them per endpoint / to the tunnel / to the pods' cgroup root, and
 * applies reconciled state. Links are pinned, so the datapath keeps forwarding while the agent is down.
 */
import { readCurrentState, reconcileMaps } from "../../bpf/datapath/apply.js";
import { Datapath, type EndpointAttachMode } from "../../bpf/datapath/loader.js";
import type { MetricName } from "../../bpf/datapath/maps.js";
import type { CurrentDatapathState, DatapathOp, DesiredDatapathState } from "../../bpf/datapath/reconcile.js";
import { interfaceIndex } from "../../bpf/libbpf-ts/index.js";
import type { EndpointDatapath } from "../endpoints/manager.js";
import type { EndpointRecord } from "../endpoints/store.js";
import { RESERVED_IDENTITY } from "../identity/labels.js";

const SOCKET_LB_NAME = "node";
const ENDPOINT_LINK = /^(?:from|to)-pod-(.+)$/;

export class DatapathController implements EndpointDatapath {
  private constructor(readonly datapath: Datapath) {}

  /** Loads the programs; maps already pinned under pinRoot (a previous run) are reused with their contents. */
  static load(pinRoot: string, endpointAttachMode: EndpointAttachMode): DatapathController {
    return new DatapathController(Datapath.load({ pinRoot, endpointAttachMode }));
  }

  async attach(record: EndpointRecord, policyFlags: number): Promise<void> {
    if (record.ifindex === undefined) throw new Error(`endpoint ${record.id} has no ifindex`);
    await this.datapath.attachEndpointAsync(record.id, record.ifindex);
    this.datapath.maps.endpoints.set(
      { address: record.ip },
      {
        ifindex: record.ifindex,
        identity: record.identity,
        mac: record.podMac,
        nodeMac: record.hostMac,
        flags: policyFlags,
      },
    );
  }

  async detach(record: EndpointRecord): Promise<void> {
    await this.datapath.detachEndpointAsync(record.id);
    this.datapath.maps.endpoints.delete({ address: record.ip });
  }

  hasEndpoint(ip: string): boolean {
    return this.datapath.maps.endpoints.get({ address: ip }) !== undefined;
  }

  configureTunnel(tunnelIfindex: number): void {
    this.datapath.maps.setConfig({ tunnelIfindex, flags: 0, worldIdentity: RESERVED_IDENTITY.world });
    this.datapath.attachTunnel(tunnelIfindex);
  }

  /**
   * NodePort for clients outside the node (from-netdev on the underlay device) and the node's own
   * traffic to remote pods (the tunnel egress program reads the node IP and host identity).
   * Re-attaching after a restart swaps the pinned link's program in place.
   */
  configureNodePort(nodeIp: string, underlayInterface: string): void {
    const underlayIfindex = interfaceIndex(underlayInterface);
    this.datapath.maps.setNodeConfig({ nodeIp, underlayIfindex, hostIdentity: RESERVED_IDENTITY.host });
    this.datapath.attachNetdev(underlayIfindex);
  }

  /** Socket LB on the cgroup holding this node's pods (attachCgroup refuses a hierarchy root). */
  attachSocketLb(cgroupRoot: string): void {
    this.datapath.attachSocketLb(SOCKET_LB_NAME, cgroupRoot);
  }

  /** Unpins endpoint links whose endpoint is not in keep (left by a previous run). */
  removeStaleLinks(keep: ReadonlySet<string>): string[] {
    const stale = new Set<string>();
    for (const link of this.datapath.attachedLinks()) {
      const match = ENDPOINT_LINK.exec(link);
      if (match && !keep.has(match[1])) stale.add(match[1]);
    }
    for (const id of stale) this.datapath.detachEndpoint(id);
    return [...stale];
  }

  reconcile(desired: DesiredDatapathState): DatapathOp[] {
    return reconcileMaps(this.datapath.maps, desired);
  }

  current(): CurrentDatapathState {
    return readCurrentState(this.datapath.maps);
  }

  metrics(): Record<MetricName, { packets: bigint; bytes: bigint }> {
    return this.datapath.maps.readMetrics();
  }

  links(): string[] {
    return this.datapath.attachedLinks();
  }

  /** Closes our fds only: pinned maps and links stay, the datapath keeps working. */
  close(): void {
    this.datapath.close();
  }
}
