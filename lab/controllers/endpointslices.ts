import { createHash } from "node:crypto";
import { isIPv6 } from "node:net";
import type {
  DiscoveryV1EndpointPort,
  V1Endpoint,
  V1EndpointSlice,
  V1Pod,
  V1Service,
  V1ServicePort,
} from "@kubernetes/client-node";
import { SERVICE_NAME_LABEL } from "../../lib/api/service-annotations.js";
import { isPodFinished, isPodReady, isPodTerminating, labelsMatch, stableStringify } from "./objects.js";

/**
 * The EndpointSlice controller's decision: for one service with a selector, the slices it should
 * have. Pods are grouped by address family and by how the service's ports resolve on them (a named
 * targetPort can map to different numbers on different pods), one slice per group, as upstream does.
 */

export const MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by";
export const MANAGED_BY = "endpointslice-controller.k8s.io";

/** Resolves a service port's targetPort on one pod; undefined when a named port is missing. */
export function resolveTargetPort(servicePort: V1ServicePort, pod: V1Pod): number | undefined {
  const target = servicePort.targetPort ?? servicePort.port;
  if (typeof target === "number") return target;
  if (/^\d+$/.test(String(target))) return Number(target);
  const protocol = servicePort.protocol ?? "TCP";
  for (const container of pod.spec?.containers ?? []) {
    for (const port of container.ports ?? []) {
      if (port.name === target && (port.protocol ?? "TCP") === protocol) return port.containerPort;
    }
  }
  return undefined;
}

function shortHash(text: string, length = 5): string {
  return createHash("sha256").update(text).digest("hex").slice(0, length);
}

function podAddresses(pod: V1Pod, family: "IPv4" | "IPv6"): string[] {
  const ips = pod.status?.podIPs?.map((p) => p.ip) ?? (pod.status?.podIP ? [pod.status.podIP] : []);
  return ips.filter((ip) => (family === "IPv6") === isIPv6(ip)).slice(0, 1);
}

export function serviceFamilies(service: V1Service): ("IPv4" | "IPv6")[] {
  const families = service.spec?.ipFamilies?.filter((f) => f === "IPv4" || f === "IPv6") as
    | ("IPv4" | "IPv6")[]
    | undefined;
  return families?.length ? families : ["IPv4"];
}

export function desiredEndpointSlices(service: V1Service, pods: readonly V1Pod[]): V1EndpointSlice[] {
  const selector = service.spec?.selector;
  const namespace = service.metadata?.namespace ?? "default";
  const serviceName = service.metadata?.name ?? "";
  if (!selector || Object.keys(selector).length === 0) return [];
  const publishNotReady = service.spec?.publishNotReadyAddresses === true;
  const selected = pods
    .filter((pod) => (pod.metadata?.namespace ?? "default") === namespace)
    .filter((pod) => labelsMatch(selector, pod.metadata?.labels))
    .filter((pod) => !isPodFinished(pod))
    .sort((a, b) => (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""));

  const slices: V1EndpointSlice[] = [];
  for (const family of serviceFamilies(service)) {
    const groups = new Map<string, { ports: DiscoveryV1EndpointPort[]; endpoints: V1Endpoint[] }>();
    for (const pod of selected) {
      const addresses = podAddresses(pod, family);
      if (addresses.length === 0) continue;
      const ports: DiscoveryV1EndpointPort[] = [];
      for (const servicePort of service.spec?.ports ?? []) {
        const port = resolveTargetPort(servicePort, pod);
        if (port === undefined) continue;
        ports.push({
          name: servicePort.name ?? "",
          port,
          protocol: servicePort.protocol ?? "TCP",
          ...(servicePort.appProtocol ? { appProtocol: servicePort.appProtocol } : {}),
        });
      }
      const key = stableStringify(ports);
      const group = groups.get(key) ?? { ports, endpoints: [] };
      groups.set(key, group);
      const terminating = isPodTerminating(pod);
      const ready = isPodReady(pod);
      group.endpoints.push({
        addresses,
        conditions: {
          ready: publishNotReady || (ready && !terminating),
          serving: publishNotReady || ready,
          terminating,
        },
        ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}),
        targetRef: {
          kind: "Pod",
          namespace,
          name: pod.metadata?.name,
          uid: pod.metadata?.uid,
        },
      });
    }
    // A service whose pods are all gone still gets one (empty) slice per family, like upstream.
    if (groups.size === 0) groups.set("[]", { ports: [], endpoints: [] });
    for (const [key, group] of groups) {
      slices.push({
        apiVersion: "discovery.k8s.io/v1",
        kind: "EndpointSlice",
        metadata: {
          name: `${serviceName.slice(0, 50)}-${shortHash(`${family}/${key}`)}`,
          namespace,
          labels: {
            ...(service.metadata?.labels ?? {}),
            [SERVICE_NAME_LABEL]: serviceName,
            [MANAGED_BY_LABEL]: MANAGED_BY,
          },
          ownerReferences: [
            {
              apiVersion: "v1",
              kind: "Service",
              name: serviceName,
              uid: service.metadata?.uid ?? "",
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        },
        addressType: family,
        endpoints: group.endpoints,
        ports: group.ports,
      });
    }
  }
  return slices;
}

/** True when the existing slice already says what the desired one says (labels, owner, content). */
export function sliceUpToDate(existing: V1EndpointSlice, desired: V1EndpointSlice): boolean {
  const view = (slice: V1EndpointSlice) =>
    stableStringify({
      labels: slice.metadata?.labels ?? {},
      owners: (slice.metadata?.ownerReferences ?? []).map((o) => o.uid),
      addressType: slice.addressType,
      endpoints: slice.endpoints ?? [],
      ports: slice.ports ?? [],
    });
  return view(existing) === view(desired);
}

export interface SlicePlan {
  create: V1EndpointSlice[];
  update: V1EndpointSlice[];
  delete: { namespace: string; name: string }[];
}

/**
 * Compares desired slices (for all services) with the managed slices that exist. Managed slices of
 * services that are gone or have no selector any more are deleted.
 */
export function planEndpointSlices(
  services: readonly V1Service[],
  pods: readonly V1Pod[],
  existing: readonly V1EndpointSlice[],
): SlicePlan {
  const plan: SlicePlan = { create: [], update: [], delete: [] };
  const key = (namespace: string | undefined, name: string | undefined) =>
    `${namespace ?? "default"}/${name}`;
  const existingByKey = new Map(
    existing
      .filter((s) => s.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY)
      .map((s) => [key(s.metadata?.namespace, s.metadata?.name), s]),
  );
  const wanted = new Set<string>();
  for (const service of services) {
    for (const desired of desiredEndpointSlices(service, pods)) {
      const k = key(desired.metadata?.namespace, desired.metadata?.name);
      wanted.add(k);
      const current = existingByKey.get(k);
      if (!current) plan.create.push(desired);
      else if (!sliceUpToDate(current, desired)) {
        plan.update.push({
          ...desired,
          metadata: { ...desired.metadata, resourceVersion: current.metadata?.resourceVersion },
        });
      }
    }
  }
  for (const [k, slice] of existingByKey) {
    if (!wanted.has(k))
      plan.delete.push({
        namespace: slice.metadata?.namespace ?? "default",
        name: slice.metadata?.name ?? "",
      });
  }
  return plan;
}
