import { join, relative } from "node:path";
import { NodePaths } from "../lib/install/names.js";
import { hostPathOnNode, type NodeFileSystem, SHARED_NODE_PATHS } from "./kubelet/volumes.js";

/**
 * A lab node's file system. A kind node is a container with its own root; a lab node is a network
 * namespace, so its own files live in a directory of the lab (`nodes/<node>/root`): what the mesh's
 * DaemonSet writes through hostPath volumes (the CNI plugin and its config, the agent's state and
 * socket) lands there. The node's bpffs and cgroup are the lab's per-node directories, the rest
 * (/proc, /dev, /run/netns) is the host's. The kubelet gets this as its --node-root and
 * --host-path-map; meshctl and the tests find a node's files with nodeFile().
 */

export function nodeRootDir(labDir: string, node: string): string {
  return join(labDir, "nodes", node, "root");
}

export function labNodeFileSystem(
  labDir: string,
  node: string,
  kernel: { bpffs: string; cgroupRoot: string },
): NodeFileSystem {
  return {
    nodeRoot: nodeRootDir(labDir, node),
    mapped: {
      [NodePaths.bpffs]: join(kernel.bpffs, node),
      [NodePaths.hostCgroup]: join(kernel.cgroupRoot, node),
    },
    shared: SHARED_NODE_PATHS,
  };
}

/** The host path of a file under the node's own root (the bpffs and cgroup are not asked for here). */
export function nodeFile(labDir: string, node: string, nodePath: string): string {
  const path = hostPathOnNode(nodePath, { nodeRoot: nodeRootDir(labDir, node), mapped: {}, shared: [] });
  if (!path) throw new Error(`${nodePath} is not an absolute node path`);
  return path;
}

/** The --host-path-map argument of a node's kubelet. */
export function hostPathMapArg(fs: NodeFileSystem): string {
  return Object.entries(fs.mapped)
    .map(([path, dir]) => `${path}=${dir}`)
    .join(",");
}

/** Where a node's agent pins its datapath on the host: its --bpffs-root below the node's bpffs directory. */
export function nodePinRoot(labDir: string, node: string): string {
  return join(labDir, "bpffs", node, relative(NodePaths.bpffs, NodePaths.bpffsRoot));
}
