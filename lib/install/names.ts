/**
 * Names and paths the install manifests, `meshctl uninstall` and `meshctl status` agree on. The node
 * paths are the host's: the CNI plugin finds the agent's socket at its default path
 * (cni/plugin.c DEFAULT_AGENT_SOCKET), the runtime finds the plugin by its `type`.
 */
export const PART_OF = { "app.kubernetes.io/part-of": "clustermesh" } as const;

export const InstallNames = {
  agentDaemonSet: "clustermesh-agent",
  apiserverDeployment: "clustermesh-apiserver",
  /** The kubeconfig the agent and the clustermesh-apiserver read (server = --k8s-service-host). */
  kubeconfigConfigMap: "clustermesh-kubeconfig",
  /** Run by `meshctl uninstall`: removes the agent's files, pins and links from every node. */
  cleanupDaemonSet: "clustermesh-node-cleanup",
} as const;

export const selectorOf = (name: string) => ({ "app.kubernetes.io/name": name });

export const NodePaths = {
  cniBinDir: "/opt/cni/bin",
  cniConfDir: "/etc/cni/net.d",
  /** The plugin's file name is the conflist's `type`. */
  cniPluginName: "clustermesh",
  cniConfFile: "05-clustermesh.conflist",
  runDir: "/var/run/clustermesh",
  agentSocket: "/var/run/clustermesh/agent.sock",
  stateDir: "/var/lib/clustermesh",
  bpffs: "/sys/fs/bpf",
  /** Below the bpffs: everything the agent pins. */
  bpffsRoot: "/sys/fs/bpf/clustermesh",
  hostCgroup: "/sys/fs/cgroup",
} as const;

/** The links the agent creates on a node (agent/tunnel/tunnel.ts, agent/encryption/controller.ts). */
export const AGENT_LINKS = ["cm_vxlan", "cm_host", "cm_net"] as const;

/** Where the agent serves /healthz and /metrics (host network: the node's loopback). */
export const AGENT_HEALTH_PORT = 9962;
export const APISERVER_HEALTH_PORT = 9880;

/**
 * The pod annotations Prometheus' kubernetes_sd relabelling conventionally keys on (Cilium's chart
 * sets the same on its agent pods when prometheus.enabled): scrape /metrics on this port.
 */
export function scrapeAnnotations(port: number): Record<string, string> {
  return { "prometheus.io/scrape": "true", "prometheus.io/port": String(port) };
}
export const ETCD_PORT = 2379;
