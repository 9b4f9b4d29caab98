import { isIPv4 } from "node:net";
import type { V1EndpointSlice, V1Service } from "@kubernetes/client-node";
import { Proto } from "../../bpf/datapath/codecs.js";
import type { DesiredBackend, DesiredService } from "../../bpf/datapath/reconcile.js";
import {
  isGlobalService,
  type ServiceAffinity,
  serviceAffinity,
  serviceNameOf,
} from "../../lib/api/service-annotations.js";
import type { PortConfiguration } from "../../lib/kvstore/values/service.js";
import { sessionAffinityTimeout } from "./session-affinity.js";

export interface ServiceProblem {
  object: string;
  message: string;
}

export interface ServiceInputs {
  services: readonly V1Service[];
  endpointSlices: readonly V1EndpointSlice[];
  /** This node's addresses: NodePort frontends listen on them. */
  nodeAddresses: readonly string[];
  /** Whether an address may be a backend (inside a pod CIDR of the cluster, or a node's address). */
  isKnownAddress: (ip: string) => boolean;
  /** Each skipped object, with why (the agent logs them and keeps going). */
  onProblem?: (problem: ServiceProblem) => void;
  /**
   * Backends other clusters export for "<namespace>/<name>" (already validated against the remote
   * cluster they came from). Only global local Services use them, through their own frontends.
   */
  remoteBackends?: ReadonlyMap<string, readonly RemoteServiceBackends[]>;
}

/** One remote cluster's backends of a service, as its ClusterService publishes them. */
export interface RemoteServiceBackends {
  cluster: string;
  /** Backend IP → port name → protocol and (target) port. */
  backends: Readonly<Record<string, PortConfiguration>>;
}

function protocolNumber(protocol: string | undefined): number | undefined {
  switch (protocol ?? "TCP") {
    case "TCP":
      return Proto.TCP;
    case "UDP":
      return Proto.UDP;
    default:
      return undefined;
  }
}

function key(namespace: string | undefined, name: string | undefined): string {
  return `${namespace ?? "default"}/${name ?? ""}`;
}

/**
 * Backends of one service port from its EndpointSlices, following kube-proxy's rules: ready
 * endpoints; when none is ready, the serving ones (so a rollout's last pods keep answering);
 * terminating endpoints stay as terminating backends so established flows finish.
 */
function backendsFor(
  slices: readonly V1EndpointSlice[],
  portName: string,
  proto: string,
  inputs: ServiceInputs,
): DesiredBackend[] {
  const ready: DesiredBackend[] = [];
  const servingOnly: DesiredBackend[] = [];
  const terminating: DesiredBackend[] = [];
  const seen = new Set<string>();
  for (const slice of slices) {
    if (slice.addressType !== "IPv4") continue;
    const slicePort = slice.ports?.find(
      (p) => (p.name ?? "") === portName && (p.protocol ?? "TCP") === proto,
    );
    if (!slicePort?.port) continue;
    for (const endpoint of slice.endpoints ?? []) {
      const conditions = endpoint.conditions ?? {};
      const isReady = conditions.ready ?? true;
      const isServing = conditions.serving ?? isReady;
      const isTerminating = conditions.terminating ?? false;
      for (const address of endpoint.addresses ?? []) {
        if (!isIPv4(address) || !inputs.isKnownAddress(address)) {
          inputs.onProblem?.({
            object: `EndpointSlice ${key(slice.metadata?.namespace, slice.metadata?.name)}`,
            message: `address ${address} is outside every pod CIDR and node address; skipped`,
          });
          continue;
        }
        const id = `${address}:${slicePort.port}`;
        if (seen.has(id)) continue;
        seen.add(id);
        const backend: DesiredBackend = { address, port: slicePort.port };
        if (isReady && !isTerminating) ready.push(backend);
        else if (isServing && isTerminating) servingOnly.push(backend);
        else if (isTerminating) terminating.push({ ...backend, terminating: true });
      }
    }
  }
  if (ready.length > 0) {
    return [...ready, ...[...servingOnly, ...terminating].map((b) => ({ ...b, terminating: true }))];
  }
  return [...servingOnly, ...terminating];
}

/** Remote backends serving one local service port: same port name and protocol (Cilium merges by name). */
function remoteBackendsFor(
  remote: readonly RemoteServiceBackends[],
  portName: string,
  proto: string,
): DesiredBackend[] {
  const backends: DesiredBackend[] = [];
  const seen = new Set<string>();
  for (const cluster of remote) {
    for (const [address, ports] of Object.entries(cluster.backends)) {
      const port = ports[portName];
      if (!port || port.Protocol !== proto || !isIPv4(address)) continue;
      const id = `${address}:${port.Port}`;
      if (seen.has(id)) continue;
      seen.add(id);
      backends.push({ address, port: port.Port });
    }
  }
  return backends;
}

/**
 * Cilium's backend selection for global services
 * (https://github.com/cilium/cilium/blob/main/pkg/clustermesh/loadbalancer/selectbackends.go):
 *   none   → local and remote;
 *   local  → local backends always; remote ones only while no local backend is active;
 *   remote → remote backends always; local ones only while there is no remote backend.
 * Terminating local backends never count as active (they get no new flows). Pure.
 */
export function selectBackends(
  local: readonly DesiredBackend[],
  remote: readonly DesiredBackend[],
  affinity: ServiceAffinity,
): DesiredBackend[] {
  const localIds = new Set(local.map((b) => `${b.address}:${b.port}`));
  const remoteOnly = remote.filter((b) => !localIds.has(`${b.address}:${b.port}`));
  switch (affinity) {
    case "local":
      return local.some((b) => !b.terminating) ? [...local] : [...local, ...remoteOnly];
    case "remote":
      return remoteOnly.length > 0 ? remoteOnly : [...local];
    default:
      return [...local, ...remoteOnly];
  }
}

/** ClusterIP and NodePort services with their backends, as the datapath reconciler wants them. Pure. */
export function desiredServices(inputs: ServiceInputs): DesiredService[] {
  const slicesByService = new Map<string, V1EndpointSlice[]>();
  for (const slice of inputs.endpointSlices) {
    const serviceName = serviceNameOf(slice);
    if (!serviceName) continue;
    const k = key(slice.metadata?.namespace, serviceName);
    slicesByService.set(k, [...(slicesByService.get(k) ?? []), slice]);
  }

  const result: DesiredService[] = [];
  for (const service of inputs.services) {
    const spec = service.spec;
    const name = key(service.metadata?.namespace, service.metadata?.name);
    if (!spec || spec.type === "ExternalName") continue;
    const clusterIp = spec.clusterIP;
    if (!clusterIp || clusterIp === "None") continue;
    if (!isIPv4(clusterIp)) {
      inputs.onProblem?.({
        object: `Service ${name}`,
        message: `clusterIP ${clusterIp} is not an IPv4 address; skipped`,
      });
      continue;
    }
    const slices = slicesByService.get(name) ?? [];
    // Remote backends only ever join a global Service that exists here (no local Service, nothing programmed).
    const global = isGlobalService(service);
    const affinity = serviceAffinity(service);
    const remoteOfService = inputs.remoteBackends?.get(name) ?? [];
    const affinityTimeout = sessionAffinityTimeout(service, (message) =>
      inputs.onProblem?.({ object: `Service ${name}`, message }),
    );
    const sticky = affinityTimeout === undefined ? {} : { affinityTimeoutSeconds: affinityTimeout };
    for (const port of spec.ports ?? []) {
      const proto = protocolNumber(port.protocol);
      if (proto === undefined) continue; // SCTP and others are not load-balanced (yet)
      if (!Number.isInteger(port.port) || port.port < 1 || port.port > 65535) {
        inputs.onProblem?.({
          object: `Service ${name}`,
          message: `port ${JSON.stringify(port.port)} is invalid; skipped`,
        });
        continue;
      }
      const localBackends = backendsFor(slices, port.name ?? "", port.protocol ?? "TCP", inputs);
      const remote = global
        ? remoteBackendsFor(remoteOfService, port.name ?? "", port.protocol ?? "TCP")
        : [];
      const backends = global ? selectBackends(localBackends, remote, affinity) : localBackends;
      result.push({ frontend: { address: clusterIp, port: port.port, proto }, backends, ...sticky });
      const nodePortService = spec.type === "NodePort" || spec.type === "LoadBalancer";
      if (nodePortService && port.nodePort) {
        if (port.nodePort < 1 || port.nodePort > 65535) {
          inputs.onProblem?.({
            object: `Service ${name}`,
            message: `nodePort ${port.nodePort} is invalid; skipped`,
          });
          continue;
        }
        for (const address of inputs.nodeAddresses) {
          result.push({ frontend: { address, port: port.nodePort, proto }, backends, ...sticky });
        }
      }
    }
  }
  return result;
}
