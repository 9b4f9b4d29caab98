/**
 * What `meshctl uninstall` runs on every node once the agents are gone: a DaemonSet whose init
 * container removes the agent's files, BPF pins and links from the node (the agent itself leaves
 * its pinned datapath in place when it stops, so that a restart keeps pods connected), then idles
 * so uninstall can see it finished on every node before deleting it. Pods' own interfaces go with
 * the pods; the clsact filters the agent put on their host veths are taken off here (a filter,
 * unlike a pinned link, holds its program without the pins), and programs attached through pinned
 * links (node devices, cgroups) are detached when the pins are removed.
 */
import type { V1DaemonSet } from "@kubernetes/client-node";
import { MESH_NAMESPACE } from "../api/rbac.js";
import { AGENT_LINKS, InstallNames, NodePaths, PART_OF, selectorOf } from "./names.js";

export const NODE_CLEANUP_SCRIPT = [
  "set -u",
  `rm -f /host${NodePaths.cniConfDir}/${NodePaths.cniConfFile} /host${NodePaths.cniBinDir}/${NodePaths.cniPluginName}`,
  // endpoints' host veths: lxc + 11 hex (agent/endpoints/naming.ts)
  "for dev in $(ip -o link show | sed -n 's/^[0-9]*: \\(lxc[0-9a-f]\\{11\\}\\)[@:].*/\\1/p'); do tc qdisc del dev \"$dev\" clsact 2>/dev/null || true; done",
  `rm -rf ${NodePaths.bpffsRoot}`,
  ...AGENT_LINKS.map((link) => `ip link del ${link} 2>/dev/null || true`),
  `rm -rf /host${NodePaths.runDir} /host${NodePaths.stateDir}`,
  "echo node cleaned",
].join("\n");

export function nodeCleanupDaemonSet(image: string): V1DaemonSet {
  const name = InstallNames.cleanupDaemonSet;
  const labels = { ...PART_OF, ...selectorOf(name) };
  const host = (volume: string, path: string) => ({ name: volume, hostPath: { path } });
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name, namespace: MESH_NAMESPACE, labels },
    spec: {
      selector: { matchLabels: selectorOf(name) },
      template: {
        metadata: { labels },
        spec: {
          hostNetwork: true,
          tolerations: [{ operator: "Exists" }],
          terminationGracePeriodSeconds: 1,
          initContainers: [
            {
              name: "clean",
              image,
              command: ["sh", "-c", NODE_CLEANUP_SCRIPT],
              securityContext: { privileged: true },
              volumeMounts: [
                { name: "bpf-maps", mountPath: NodePaths.bpffs },
                { name: "cni-conf", mountPath: `/host${NodePaths.cniConfDir}` },
                { name: "cni-bin", mountPath: `/host${NodePaths.cniBinDir}` },
                { name: "run", mountPath: "/host/var/run" },
                { name: "state", mountPath: "/host/var/lib" },
              ],
            },
          ],
          containers: [{ name: "done", image, command: ["sleep", "infinity"] }],
          volumes: [
            host("bpf-maps", NodePaths.bpffs),
            host("cni-conf", NodePaths.cniConfDir),
            host("cni-bin", NodePaths.cniBinDir),
            // the parents: rm -rf of a mount point itself fails
            host("run", "/var/run"),
            host("state", "/var/lib"),
          ],
        },
      },
    },
  };
}
