/**
 * The datapath loop's I/O half: reads one snapshot of its inputs, plans (datapath-plan.ts), writes
 * the BPF maps and the tunnel routes, hands the remote clusters' nodes to the encryption
 * controller, and records the outcome for the status document and the metrics.
 */

import type { CurrentDatapathState, DesiredDatapathState } from "../../bpf/datapath/reconcile.js";
import type { AgentStatus } from "../../lib/api/agent-status.js";
import type { Logger } from "../../lib/log.js";
import { type MeshDrift, meshDatapathDrift } from "../clustermesh/datapath-drift.js";
import type { ClusterMeshManager } from "../clustermesh/manager.js";
import { type MeshDatapathInputs, meshDatapathInputs } from "../clustermesh/merge.js";
import type { DatapathController } from "../datapath/controller.js";
import { type NodeInfo, nodeInfo } from "../datapath/desired.js";
import type { EncryptionController } from "../encryption/controller.js";
import { remoteClusterNodes } from "../encryption/plan.js";
import type { EndpointManager } from "../endpoints/manager.js";
import type { AgentCaches } from "../k8s/caches.js";
import { syncTunnelRoutes } from "../tunnel/tunnel.js";
import { planNodeDatapath } from "./datapath-plan.js";

export interface DatapathLoopDeps {
  nodeName: string;
  clusterId: number;
  /** Endpoints' network policy flags (agent/policy/); absent: none. */
  policyFlags?: (endpoint: string) => number;
  /** After a run wrote cm_endpoints: the policy flags it wrote, by endpoint. */
  onPolicyFlagsWritten?: (flags: ReadonlyMap<string, number>) => void;
  /** Prefixes of CIDR policy rules and their identities, for the ipcache. */
  cidrIdentities?: () => readonly { prefix: string; identity: number }[];
  nodeIp: string;
  encrypt: boolean;
  caches: AgentCaches;
  endpoints: EndpointManager;
  datapath: DatapathController;
  /** Read at each run: the remote-cluster manager and the encryption controller start later. */
  clustermesh: () => ClusterMeshManager | undefined;
  encryption: () => EncryptionController | undefined;
  onProblem: (object: string, message: string) => void;
  /** After every run, with the number of map writes and deletes it applied. */
  onReconciled: (ops: number) => void;
  log: Logger;
}

export type LastReconcile = AgentStatus["health"]["lastReconcile"];

export class DatapathLoop {
  private last: LastReconcile;

  constructor(private readonly deps: DatapathLoopDeps) {}

  get lastReconcile(): LastReconcile {
    return this.last;
  }

  /** The state the last run programmed (flows resolve addresses against it). */
  lastDesired: DesiredDatapathState | undefined;

  async run(): Promise<void> {
    const { deps } = this;
    const { caches } = deps;
    const clustermesh = deps.clustermesh();
    const encryption = deps.encryption();
    const nodes = nodesOf(caches);
    const mesh = clustermesh?.datapathInputs(nodes);
    const written = new Map<string, number>();
    const policyFlags =
      deps.policyFlags &&
      ((endpoint: string) => {
        const flags = (deps.policyFlags as (endpoint: string) => number)(endpoint);
        written.set(endpoint, flags);
        return flags;
      });
    const plan = this.plan(
      nodes,
      mesh,
      (problem) => deps.onProblem(problem.object, problem.message),
      policyFlags,
    );
    // remote clusters' nodes (as the mesh merge accepted them) are peers like local ones
    if (encryption && clustermesh && mesh)
      encryption.setRemoteNodes(remoteClusterNodes(clustermesh.views(), mesh.tunnelNodes));
    encryption?.nodesChanged();
    let ops = 0;
    try {
      ops = deps.datapath.reconcile(plan.maps).length;
      this.lastDesired = plan.maps;
      deps.onPolicyFlagsWritten?.(written);
      clustermesh?.datapathProgrammed(true);
      await syncTunnelRoutes(plan.tunnelRoutes);
      this.last = { at: new Date().toISOString(), ops };
    } catch (error) {
      clustermesh?.datapathProgrammed(false);
      this.last = { at: new Date().toISOString(), ops, error: (error as Error).message };
      throw error;
    } finally {
      deps.onReconciled(ops);
    }
    if (ops > 0) deps.log.debug({ ops }, "datapath reconciled");
  }

  /**
   * Published versus programmed per remote cluster, for the status: plans from the inputs as they
   * are now (without writing, logging or counting anything, unlike run()) and compares the
   * remotes' share of that plan with `current`, the BPF maps as read back.
   */
  meshDrift(current: CurrentDatapathState): MeshDrift | undefined {
    const clustermesh = this.deps.clustermesh();
    if (!clustermesh) return undefined;
    const nodes = nodesOf(this.deps.caches);
    const mesh = meshDatapathInputs(nodes, clustermesh.views());
    const plan = this.plan(nodes, mesh, () => undefined);
    return meshDatapathDrift({
      clusters: clustermesh.names(),
      // the merge names remote nodes "<cluster>/<node>" (cluster names hold no "/")
      nodes: mesh.tunnelNodes.map((node) => ({
        cluster: node.name.slice(0, node.name.indexOf("/")),
        nodeIp: node.internalIp ?? "",
        podCidrs: node.podCidrs,
      })),
      expected: plan.maps,
      current,
    });
  }

  private plan(
    nodes: NodeInfo[],
    mesh: MeshDatapathInputs | undefined,
    onProblem: (problem: { object: string; message: string }) => void,
    policyFlags = this.deps.policyFlags,
  ) {
    const { deps } = this;
    const { caches } = deps;
    return planNodeDatapath({
      nodeName: deps.nodeName,
      clusterId: deps.clusterId,
      policyFlags,
      cidrIdentities: deps.cidrIdentities?.(),
      nodeIp: deps.nodeIp,
      nodes,
      endpoints: deps.endpoints.list(),
      services: caches.services.list(),
      endpointSlices: caches.endpointSlices.list(),
      meshEndpoints: caches.meshEndpoints.list(),
      mesh,
      encrypt: deps.encrypt,
      onProblem,
    });
  }
}

export function nodesOf(caches: AgentCaches | undefined): NodeInfo[] {
  return (caches?.nodes.list() ?? []).map(nodeInfo);
}
