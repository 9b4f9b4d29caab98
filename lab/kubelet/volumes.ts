import { isAbsolute, join, normalize } from "node:path";
import type { V1Container, V1Pod, V1Volume, V1VolumeMount } from "@kubernetes/client-node";

/**
 * Which volumes a pod has and where each container sees them — pure. The kubelet materializes
 * every non-hostPath volume into a directory of the pod (./volume-files.ts); a hostPath is a
 * directory of the node. A lab node is a network namespace, not a machine, so its file system is a
 * directory of the lab (`nodeRoot`), except the paths every node shares with the host (/proc,
 * /dev, the named network namespaces) and those the lab gives each node its own kernel object for
 * (the bpffs and cgroup directories of the node).
 */

export interface NodeFileSystem {
  /** Where the node's own files live (hostPath /var/lib/x → <nodeRoot>/var/lib/x); absent: the host's. */
  nodeRoot?: string;
  /** Node paths backed by a host directory of their own (/sys/fs/bpf → the node's bpffs directory). */
  mapped: Record<string, string>;
  /** Node paths that are the host's own (/proc, /dev, /lib/modules, /run/netns). */
  shared: string[];
}

export const SHARED_NODE_PATHS = ["/proc", "/dev", "/lib/modules", "/run/netns"];

export class VolumeError extends Error {
  constructor(
    readonly volume: string,
    message: string,
  ) {
    super(message);
  }
}

const within = (path: string, prefix: string) => path === prefix || path.startsWith(`${prefix}/`);

/** The host directory behind a node path; undefined only for a path that is not absolute. */
export function hostPathOnNode(path: string, fs: NodeFileSystem): string | undefined {
  if (!isAbsolute(path)) return undefined;
  const normalized = normalize(path).replace(/\/+$/, "") || "/";
  // /var/run is a link to /run on every current distribution (and kind's node image)
  const clean = within(normalized, "/var/run") ? `/run${normalized.slice("/var/run".length)}` : normalized;
  const mappedPrefix = Object.keys(fs.mapped)
    .filter((prefix) => within(clean, prefix))
    .sort((a, b) => b.length - a.length)[0];
  if (mappedPrefix !== undefined) return join(fs.mapped[mappedPrefix], clean.slice(mappedPrefix.length));
  if (!fs.nodeRoot || fs.shared.some((prefix) => within(clean, prefix))) return clean;
  return join(fs.nodeRoot, clean);
}

/** What backs a volume: a node path, or a directory the kubelet fills (configMap, secret, …). */
export type VolumeBacking =
  | { kind: "hostPath"; volume: string; hostPath: string; type: string }
  | { kind: "kubelet"; volume: string; dir: string };

export function podVolumesDir(podDir: string): string {
  return join(podDir, "volumes");
}

export function volumeBacking(volume: V1Volume, podDir: string, fs: NodeFileSystem): VolumeBacking {
  if (volume.hostPath) {
    const hostPath = hostPathOnNode(volume.hostPath.path, fs);
    if (!hostPath)
      throw new VolumeError(volume.name, `hostPath.path "${volume.hostPath.path}" is not an absolute path`);
    return { kind: "hostPath", volume: volume.name, hostPath, type: volume.hostPath.type ?? "" };
  }
  if (volume.emptyDir || volume.configMap || volume.secret || volume.projected || volume.downwardAPI)
    return { kind: "kubelet", volume: volume.name, dir: join(podVolumesDir(podDir), volume.name) };
  const kind = Object.keys(volume).find((key) => key !== "name") ?? "none";
  throw new VolumeError(
    volume.name,
    `volume type ${kind} is not supported by the lab kubelet (hostPath, emptyDir, configMap, secret, projected, downwardAPI are)`,
  );
}

export type Propagation = "private" | "slave" | "shared";

export interface ContainerMount {
  volume: string;
  /** Host file or directory bound into the container. */
  source: string;
  /** Absolute path inside the container. */
  target: string;
  readOnly: boolean;
  /** rbind: a hostPath brings the mounts below it (the netns files under /run/netns). */
  recursive: boolean;
  propagation: Propagation;
}

/** Kubernetes' mountPropagation → the bind mount's propagation (None = private, the default). */
function propagationOf(mount: V1VolumeMount): Propagation {
  if (mount.mountPropagation === "Bidirectional") return "shared";
  if (mount.mountPropagation === "HostToContainer") return "slave";
  return "private";
}

/** Where each of the container's volumeMounts comes from; errors name the mount. */
export function containerMounts(
  container: V1Container,
  backings: Map<string, VolumeBacking>,
): ContainerMount[] {
  return (container.volumeMounts ?? []).map((mount) => {
    const backing = backings.get(mount.name);
    if (!backing)
      throw new VolumeError(mount.name, `volumeMount ${mount.mountPath}: no volume named "${mount.name}"`);
    if (!isAbsolute(mount.mountPath))
      throw new VolumeError(mount.name, `volumeMount.mountPath "${mount.mountPath}" is not absolute`);
    const subPath = mount.subPath ?? "";
    if (isAbsolute(subPath) || normalize(subPath).split("/").includes(".."))
      throw new VolumeError(
        mount.name,
        `volumeMount.subPath "${subPath}" must be a relative path inside the volume`,
      );
    const base = backing.kind === "hostPath" ? backing.hostPath : backing.dir;
    return {
      volume: mount.name,
      source: subPath ? join(base, subPath) : base,
      target: normalize(mount.mountPath),
      readOnly: mount.readOnly === true,
      recursive: backing.kind === "hostPath",
      propagation: propagationOf(mount),
    };
  });
}

/** Every volume of the pod with its backing; the first unsupported or invalid one throws. */
export function podVolumeBackings(
  pod: V1Pod,
  podDir: string,
  fs: NodeFileSystem,
): Map<string, VolumeBacking> {
  return new Map((pod.spec?.volumes ?? []).map((v) => [v.name, volumeBacking(v, podDir, fs)]));
}
