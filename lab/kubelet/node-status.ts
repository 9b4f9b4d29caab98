import { arch, cpus, hostname, release, totalmem } from "node:os";
import type { V1Node, V1NodeCondition, V1NodeStatus, V1Taint } from "@kubernetes/client-node";

/** The Node object a lab kubelet registers and the status it heartbeats (pure builders). */

export const CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane";
/** The pinned Kubernetes release (toolchain/kubernetes), marked as the lab's kubelet. */
export const KUBELET_VERSION = "v1.33.13-lab";

export interface NodeIdentity {
  name: string;
  ips: string[];
  port: number;
  controlPlane: boolean;
  /** A control plane that runs workloads too (kind's clusters without workers): no NoSchedule taint. */
  schedulableControlPlane?: boolean;
  taints: V1Taint[];
  labels: Record<string, string>;
}

/** Parses --register-with-taints "key=value:Effect,key2:Effect". */
export function parseTaints(text: string | undefined): V1Taint[] {
  if (!text) return [];
  return text
    .split(",")
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => {
      const match = /^([^=:]+)(?:=([^:]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$/.exec(part);
      if (!match)
        throw new Error(
          `invalid taint "${part}" (expected key[=value]:NoSchedule|PreferNoSchedule|NoExecute)`,
        );
      return { key: match[1], ...(match[2] ? { value: match[2] } : {}), effect: match[3] };
    });
}

/**
 * Labels in the kubernetes.io / k8s.io namespaces that the NodeRestriction admission plugin does
 * not let a kubelet set (https://github.com/kubernetes/kubernetes/blob/v1.33.0/plugin/pkg/admission/noderestriction/admission.go
 * and pkg/kubelet/apis/well_known_labels.go): everything there except the well-known
 * node labels and the kubelet.kubernetes.io / node.kubernetes.io prefixes.
 */
const KUBELET_LABELS = new Set([
  "kubernetes.io/hostname",
  "kubernetes.io/arch",
  "kubernetes.io/os",
  "beta.kubernetes.io/arch",
  "beta.kubernetes.io/os",
  "beta.kubernetes.io/instance-type",
  "node.kubernetes.io/instance-type",
  "failure-domain.beta.kubernetes.io/region",
  "failure-domain.beta.kubernetes.io/zone",
  "topology.kubernetes.io/region",
  "topology.kubernetes.io/zone",
]);

export function restrictedNodeLabels(labels: Record<string, string>): string[] {
  return Object.keys(labels).filter((key) => {
    const slash = key.indexOf("/");
    if (slash < 0) return false;
    const namespace = key.slice(0, slash);
    const kubernetesNamespace =
      namespace === "kubernetes.io" ||
      namespace.endsWith(".kubernetes.io") ||
      namespace === "k8s.io" ||
      namespace.endsWith(".k8s.io");
    if (!kubernetesNamespace || KUBELET_LABELS.has(key)) return false;
    const allowedPrefix =
      namespace === "kubelet.kubernetes.io" ||
      namespace.endsWith(".kubelet.kubernetes.io") ||
      namespace === "node.kubernetes.io" ||
      namespace.endsWith(".node.kubernetes.io");
    return !allowedPrefix;
  });
}

export function nodeTaints(identity: NodeIdentity): V1Taint[] {
  const taints = [...identity.taints];
  if (
    identity.controlPlane &&
    !identity.schedulableControlPlane &&
    !taints.some((t) => t.key === CONTROL_PLANE_LABEL)
  ) {
    taints.push({ key: CONTROL_PLANE_LABEL, effect: "NoSchedule" });
  }
  return taints;
}

export function nodeLabels(identity: NodeIdentity): Record<string, string> {
  return {
    "kubernetes.io/hostname": identity.name,
    "kubernetes.io/os": "linux",
    "kubernetes.io/arch": arch() === "x64" ? "amd64" : arch(),
    "beta.kubernetes.io/os": "linux",
    "beta.kubernetes.io/arch": arch() === "x64" ? "amd64" : arch(),
    ...(identity.controlPlane ? { [CONTROL_PLANE_LABEL]: "" } : {}),
    ...identity.labels,
  };
}

export interface NetworkState {
  ready: boolean;
  message: string;
}

export function nodeStatus(
  identity: NodeIdentity,
  network: NetworkState,
  previous: V1NodeStatus | undefined,
  now = new Date(),
): V1NodeStatus {
  const transition = (type: string, status: string) => {
    const before = previous?.conditions?.find((c) => c.type === type);
    return before?.status === status && before.lastTransitionTime ? before.lastTransitionTime : now;
  };
  const condition = (type: string, ok: boolean, reason: string, message: string): V1NodeCondition => ({
    type,
    status: ok ? "True" : "False",
    reason,
    message,
    lastHeartbeatTime: now,
    lastTransitionTime: transition(type, ok ? "True" : "False"),
  });
  const capacity = {
    cpu: String(cpus().length),
    memory: `${Math.floor(totalmem() / 1024)}Ki`,
    pods: "110",
    "ephemeral-storage": "10Gi",
  };
  return {
    addresses: [
      ...identity.ips.map((address) => ({ type: "InternalIP", address })),
      { type: "Hostname", address: identity.name },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: identity.port } },
    capacity,
    allocatable: capacity,
    conditions: [
      condition(
        "MemoryPressure",
        false,
        "KubeletHasSufficientMemory",
        "kubelet has sufficient memory available",
      ),
      condition("DiskPressure", false, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
      condition("PIDPressure", false, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
      network.ready
        ? condition("Ready", true, "KubeletReady", "kubelet is posting ready status")
        : condition(
            "Ready",
            false,
            "KubeletNotReady",
            `container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: ${network.message}`,
          ),
    ],
    nodeInfo: {
      architecture: arch() === "x64" ? "amd64" : arch(),
      bootID: "",
      containerRuntimeVersion: "clustermesh-lab://0.1.0",
      kernelVersion: release(),
      kubeProxyVersion: "",
      kubeletVersion: KUBELET_VERSION,
      machineID: "",
      operatingSystem: "linux",
      osImage: `clustermesh lab node on ${hostname()}`,
      systemUUID: "",
    },
  };
}

export function nodeObject(identity: NodeIdentity, network: NetworkState): V1Node {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: identity.name, labels: nodeLabels(identity) },
    spec: { taints: nodeTaints(identity) },
    status: nodeStatus(identity, network, undefined),
  };
}

/**
 * Whether a status says something the API's copy does not: a condition's status, reason or message,
 * or the addresses (heartbeat times are not news). The kubelet writes its Node's status when it
 * changed and otherwise once per nodeStatusReportFrequency (nodeStatusHasChanged in
 * https://github.com/kubernetes/kubernetes/blob/master/pkg/kubelet/kubelet_node_status.go): every
 * write wakes every watcher of Nodes in the cluster.
 */
export function nodeStatusChanged(previous: V1NodeStatus | undefined, next: V1NodeStatus): boolean {
  const view = (status: V1NodeStatus | undefined) =>
    JSON.stringify({
      conditions: (status?.conditions ?? []).map(({ type, status, reason, message }) => ({
        type,
        status,
        reason,
        message,
      })),
      addresses: status?.addresses ?? [],
    });
  return view(previous) !== view(next);
}

/** Ready-relevant view of a status (no heartbeat times), to log transitions. */
export function readyOf(status: V1NodeStatus | undefined): string {
  return status?.conditions?.find((c) => c.type === "Ready")?.status ?? "Unknown";
}
