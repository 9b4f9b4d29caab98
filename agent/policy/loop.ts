/**
 * The policy loop's I/O half: one snapshot of the policies (Kubernetes' and Cilium's), this
 * cluster's and the connected remote clusters' identities and the local endpoints → the feed
 * (feed.ts: only what changed reaches the resolver) → the controller (the BPF policy maps), then
 * the endpoints that are gone are forgotten. Invalid policies are logged once per version, shown
 * in the agent's status with their fields, and (Cilium's kinds) get a `Valid` condition on their status.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { clusterIdOf } from "../../lib/identity/labels.js";
import type { Logger } from "../../lib/log.js";
import type { NamedPort } from "../../lib/policy/named-ports.js";
import type { EndpointInput, IdentityInput } from "../../lib/policy/resolver.js";
import { PolicyResolver } from "../../lib/policy/resolver.js";
import type { CidrIdentity, PolicyKind } from "../../lib/policy/types.js";
import type { EndpointRecord } from "../endpoints/store.js";
import type { AgentCaches } from "../k8s/caches.js";
import type { PolicyController } from "./controller.js";
import { type FeedResult, type InvalidPolicy, PolicyFeed, type PolicyObject } from "./feed.js";

export interface PolicyLoopDeps {
  clusterName: string;
  clusterId: number;
  caches: AgentCaches;
  endpoints: () => readonly EndpointRecord[];
  /** the connected remote clusters' identities (a disconnected cluster's are gone from it) */
  remoteIdentities: () => ReadonlyArray<{ id: number; labels: string[]; cluster: string }>;
  controller: PolicyController;
  /** the CIDR identities changed: the datapath loop must put them into the ipcache */
  onCidrIdentitiesChanged: () => void;
  /** writes the Cilium policies' Valid conditions (status-writer.ts) */
  writeConditions: (conditions: FeedResult["conditions"]) => Promise<void>;
  log: Logger;
}

/** An endpoint whose policy is not (yet) in the maps: its ADD must not succeed. */
export class EndpointPolicyError extends Error {
  constructor(
    readonly endpoint: string,
    readonly reason: string,
  ) {
    super(`the network policy of endpoint ${endpoint} is not programmed: ${reason}`);
    this.name = "EndpointPolicyError";
  }
}

function policyObjects(
  kind: PolicyKind,
  apiVersion: string,
  objects: readonly KubernetesObject[],
): PolicyObject[] {
  return objects.map((object) => ({
    kind,
    namespace: object.metadata?.namespace,
    name: object.metadata?.name ?? "",
    version: object.metadata?.resourceVersion ?? JSON.stringify(object),
    // list items come without kind and apiVersion; the parser dispatches on kind
    object: { ...object, kind, apiVersion },
  }));
}

export class PolicyLoop {
  private readonly resolver: PolicyResolver;
  private readonly feed: PolicyFeed;
  private reported = new Map<string, string>();
  private cidrs = "";
  /** the endpoints the last completed run resolved and handed to the controller */
  private resolved: ReadonlySet<string> = new Set();
  invalid: InvalidPolicy[] = [];

  constructor(private readonly deps: PolicyLoopDeps) {
    this.resolver = new PolicyResolver({ clusterName: deps.clusterName });
    this.feed = new PolicyFeed(this.resolver, deps.clusterName);
  }

  async run(): Promise<void> {
    const { deps } = this;
    const { caches } = deps;
    const identities: IdentityInput[] = [];
    for (const identity of caches.identities.list()) {
      const id = Number(identity.metadata?.name);
      // other clusters' identities count only while their cluster is connected (below)
      if (!Number.isInteger(id) || clusterIdOf(id) !== deps.clusterId) continue;
      const labels = Object.entries(identity["security-labels"] ?? {}).map(
        ([key, value]) => `${key}=${value}`,
      );
      identities.push({ id, labels, cluster: deps.clusterName });
    }
    for (const remote of deps.remoteIdentities()) identities.push(remote);
    const endpoints: EndpointInput[] = deps.endpoints().map((record) => ({
      id: record.id,
      identity: record.identity,
      labels: record.labels,
      namespace: record.podNamespace,
      namedPorts: record.namedPorts,
    }));
    const policies = [
      ...policyObjects("NetworkPolicy", "networking.k8s.io/v1", caches.networkPolicies.list()),
      ...policyObjects("CiliumNetworkPolicy", "cilium.io/v2", caches.ciliumNetworkPolicies.list()),
      ...policyObjects(
        "CiliumClusterwideNetworkPolicy",
        "cilium.io/v2",
        caches.ciliumClusterwideNetworkPolicies.list(),
      ),
    ];
    const { deltas, invalid, conditions } = this.feed.sync({
      policies,
      identities,
      endpoints,
      namedPorts: this.namedPorts(),
    });
    this.report(invalid);
    deps.controller.apply(deltas);
    this.resolved = new Set(endpoints.map((endpoint) => endpoint.id));
    deps.controller.retain(this.resolved);
    const cidrs = JSON.stringify(this.cidrIdentities());
    if (cidrs !== this.cidrs) {
      this.cidrs = cidrs;
      deps.onCidrIdentitiesChanged();
    }
    await deps.writeConditions(conditions);
  }

  /**
   * Throws EndpointPolicyError unless the last completed run resolved the endpoint and the
   * controller wrote its policy (a run that failed before the controller leaves it unresolved).
   */
  assertProgrammed(endpoint: string): void {
    if (!this.resolved.has(endpoint))
      throw new EndpointPolicyError(endpoint, "the policy loop has not resolved it (see the agent log)");
    if (!this.deps.controller.programmed(endpoint))
      throw new EndpointPolicyError(endpoint, "writing its policy to the maps failed (see the agent log)");
  }

  /** The container ports of this cluster's pods (MeshEndpoints, this node's endpoints), for egress named ports. */
  private namedPorts(): NamedPort[] {
    const ports: NamedPort[] = [];
    for (const endpoint of this.deps.caches.meshEndpoints.list())
      for (const port of endpoint.status?.namedPorts ?? []) ports.push(port);
    for (const record of this.deps.endpoints()) for (const port of record.namedPorts) ports.push(port);
    return ports;
  }

  /** The prefixes CIDR rules name, with their identities, for the ipcache. */
  cidrIdentities(): CidrIdentity[] {
    return this.resolver.cidrIdentities();
  }

  private report(invalid: InvalidPolicy[]): void {
    this.invalid = invalid;
    const next = new Map<string, string>();
    for (const entry of invalid) {
      const text = entry.errors.map((error) => `${error.path}: ${error.message}`).join("; ");
      next.set(entry.policy, text);
      if (this.reported.get(entry.policy) !== text)
        this.deps.log.warn(
          { policy: entry.policy, errors: entry.errors },
          `policy ${entry.policy} is invalid: ${text}`,
        );
    }
    this.reported = next;
  }
}
