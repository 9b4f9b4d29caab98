/**
 * The agent DaemonSet: one agent per node on the host network, shaped like Cilium's
 * (https://github.com/cilium/cilium/blob/v1.18.4/install/kubernetes/cilium/templates/cilium-agent/daemonset.yaml):
 * - privileged, because it loads BPF programs, attaches them to cgroup2 and tc, creates links and
 *   enters pods' network namespaces (Cilium's CAP_SYS_ADMIN + CAP_BPF + CAP_NET_ADMIN +
 *   CAP_SYS_MODULE + … list comes to the same on a node);
 * - an init container mounts the bpffs if the node has none (Cilium's mount-bpf-fs), one installs the
 *   static CNI plugin and its conflist on the node (Cilium's install-cni-binaries);
 * - the host's bpffs (Bidirectional, so pins outlive the container), cgroup2 and /proc are mounted;
 * - the node name comes from the downward API; readiness is the agent's /healthz on the node's
 *   loopback; on SIGTERM the agent stops its control plane and leaves the pinned datapath in place,
 *   so pods keep their connectivity across an agent restart or upgrade.
 */
import type { V1Container, V1DaemonSet, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import { HUBBLE_AGENT_PORT, HubbleObjects } from "../api/hubble.js";
import { MESH_ACCESS, MESH_NAMESPACE } from "../api/rbac.js";
import { KUBECONFIG_KEY, KUBECONFIG_MOUNT } from "./kubeconfig.js";
import {
  AGENT_HEALTH_PORT,
  InstallNames,
  NodePaths,
  PART_OF,
  scrapeAnnotations,
  selectorOf,
} from "./names.js";
import type { InstallSettings } from "./settings.js";

/** The agent stops within a few seconds (agent/main.ts); the datapath does not depend on it. */
export const AGENT_TERMINATION_GRACE_SECONDS = 30;
export const CGROUP_MOUNT = "/run/clustermesh/cgroupv2";
export const HOST_PROC_MOUNT = "/hostproc";
const HOST_CNI_BIN = "/host/opt/cni/bin";
const HOST_CNI_CONF = "/host/etc/cni/net.d";

/** The conflist the runtime reads: the plugin talks to the agent at its default socket. */
export function cniConflist(): string {
  return JSON.stringify({
    cniVersion: "1.1.0",
    name: "clustermesh",
    plugins: [{ type: NodePaths.cniPluginName, agentSocket: NodePaths.agentSocket }],
  });
}

const hostPath = (name: string, path: string, type: string): V1Volume => ({
  name,
  hostPath: { path, type },
});

function volumes(settings: InstallSettings): V1Volume[] {
  return [
    ...(settings.hubbleRelay
      ? [{ name: "hubble-tls", secret: { secretName: HubbleObjects.agentCert, defaultMode: 0o400 } }]
      : []),
    hostPath("bpf-maps", NodePaths.bpffs, "DirectoryOrCreate"),
    hostPath("cgroup", NodePaths.hostCgroup, "Directory"),
    hostPath("host-proc", "/proc", "Directory"),
    hostPath("netns", "/var/run/netns", "DirectoryOrCreate"),
    hostPath("run", NodePaths.runDir, "DirectoryOrCreate"),
    hostPath("state", NodePaths.stateDir, "DirectoryOrCreate"),
    hostPath("cni-bin", NodePaths.cniBinDir, "DirectoryOrCreate"),
    hostPath("cni-conf", NodePaths.cniConfDir, "DirectoryOrCreate"),
    hostPath("lib-modules", "/lib/modules", "DirectoryOrCreate"),
    { name: "kubeconfig", configMap: { name: InstallNames.kubeconfigConfigMap } },
  ];
}

const agentMounts: V1VolumeMount[] = [
  { name: "bpf-maps", mountPath: NodePaths.bpffs, mountPropagation: "Bidirectional" },
  { name: "cgroup", mountPath: CGROUP_MOUNT },
  { name: "host-proc", mountPath: HOST_PROC_MOUNT, readOnly: true },
  // pods' namespaces created by the runtime after the agent started must appear here
  { name: "netns", mountPath: "/var/run/netns", mountPropagation: "HostToContainer" },
  { name: "run", mountPath: NodePaths.runDir },
  { name: "state", mountPath: NodePaths.stateDir },
  { name: "lib-modules", mountPath: "/lib/modules", readOnly: true },
  { name: "kubeconfig", mountPath: KUBECONFIG_MOUNT, subPath: KUBECONFIG_KEY, readOnly: true },
];

/** Installs the plugin and then the conflist, each by rename, so the runtime never reads half a file. */
const INSTALL_CNI_SCRIPT = [
  "set -eu",
  `cp /opt/clustermesh/cni/build/clustermesh-cni ${HOST_CNI_BIN}/.${NodePaths.cniPluginName}.new`,
  `mv ${HOST_CNI_BIN}/.${NodePaths.cniPluginName}.new ${HOST_CNI_BIN}/${NodePaths.cniPluginName}`,
  `printf '%s\\n' "$CNI_CONFLIST" > ${HOST_CNI_CONF}/.${NodePaths.cniConfFile}.new`,
  `mv ${HOST_CNI_CONF}/.${NodePaths.cniConfFile}.new ${HOST_CNI_CONF}/${NodePaths.cniConfFile}`,
].join("\n");

const MOUNT_BPFFS_SCRIPT = `grep -q ' ${NodePaths.bpffs} bpf ' /proc/mounts || mount -t bpf bpf ${NodePaths.bpffs}`;

function initContainers(settings: InstallSettings): V1Container[] {
  return [
    {
      name: "mount-bpf-fs",
      image: settings.image,
      command: ["sh", "-c", MOUNT_BPFFS_SCRIPT],
      securityContext: { privileged: true },
      volumeMounts: [{ name: "bpf-maps", mountPath: NodePaths.bpffs, mountPropagation: "Bidirectional" }],
    },
    {
      name: "install-cni",
      image: settings.image,
      command: ["sh", "-c", INSTALL_CNI_SCRIPT],
      env: [{ name: "CNI_CONFLIST", value: cniConflist() }],
      volumeMounts: [
        { name: "cni-bin", mountPath: HOST_CNI_BIN },
        { name: "cni-conf", mountPath: HOST_CNI_CONF },
      ],
    },
  ];
}

export function agentArgs(settings: InstallSettings): string[] {
  return [
    `--kubeconfig=${KUBECONFIG_MOUNT}`,
    "--node-name=$(NODE_NAME)",
    `--cluster-name=${settings.clusterName}`,
    `--cluster-id=${settings.clusterId}`,
    `--bpffs-root=${NodePaths.bpffsRoot}`,
    `--cgroup-root=${CGROUP_MOUNT}`,
    `--socket=${NodePaths.agentSocket}`,
    `--state-dir=${NodePaths.stateDir}`,
    // every address, as Cilium's prometheus.enabled: a scraper in a pod reaches it on the node's IP
    `--metrics-address=0.0.0.0:${AGENT_HEALTH_PORT}`,
    `--encryption=${settings.encryption}`,
    `--clustermesh-backend-ttl=${settings.clustermeshBackendTtl}`,
    ...(settings.encryption === "ipsec" && settings.ipsecBackend !== "auto"
      ? [`--ipsec-backend=${settings.ipsecBackend}`]
      : []),
    // Hubble on the node's address for the relay, mutual TLS (the relay's certificate is the client)
    ...(settings.hubbleRelay
      ? [
          `--hubble-listen-address=:${HUBBLE_AGENT_PORT}`,
          `--hubble-tls-ca=${HUBBLE_TLS_MOUNT}/ca.crt`,
          `--hubble-tls-cert=${HUBBLE_TLS_MOUNT}/tls.crt`,
          `--hubble-tls-key=${HUBBLE_TLS_MOUNT}/tls.key`,
        ]
      : []),
  ];
}

const HUBBLE_TLS_MOUNT = "/var/lib/clustermesh/hubble-tls";

export function agentDaemonSet(settings: InstallSettings): V1DaemonSet {
  const name = InstallNames.agentDaemonSet;
  const labels = { ...PART_OF, ...selectorOf(name) };
  const probe = { httpGet: { host: "127.0.0.1", path: "/healthz", port: AGENT_HEALTH_PORT as never } };
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name, namespace: MESH_NAMESPACE, labels },
    spec: {
      selector: { matchLabels: selectorOf(name) },
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 as never } },
      template: {
        metadata: { labels, annotations: scrapeAnnotations(AGENT_HEALTH_PORT) },
        spec: {
          serviceAccountName: MESH_ACCESS.agent.name,
          hostNetwork: true,
          dnsPolicy: "ClusterFirstWithHostNet",
          priorityClassName: "system-node-critical",
          // every node, also the control plane and nodes not yet Ready: the agent is what makes them Ready
          tolerations: [{ operator: "Exists" }],
          terminationGracePeriodSeconds: AGENT_TERMINATION_GRACE_SECONDS,
          initContainers: initContainers(settings),
          containers: [
            {
              name: "agent",
              image: settings.image,
              command: ["clustermesh-agent"],
              args: agentArgs(settings),
              env: [{ name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } }],
              securityContext: { privileged: true },
              readinessProbe: { ...probe, periodSeconds: 5, failureThreshold: 3 },
              // generous: a start-up loads the datapath; only a hung agent is restarted
              startupProbe: { ...probe, periodSeconds: 2, failureThreshold: 150 },
              livenessProbe: { ...probe, periodSeconds: 10, failureThreshold: 6 },
              ports: settings.hubbleRelay
                ? [{ name: "hubble-grpc", containerPort: HUBBLE_AGENT_PORT, protocol: "TCP" }]
                : [],
              volumeMounts: settings.hubbleRelay
                ? [...agentMounts, { name: "hubble-tls", mountPath: HUBBLE_TLS_MOUNT, readOnly: true }]
                : agentMounts,
            },
          ],
          volumes: volumes(settings),
        },
      },
    },
  };
}
