import { lstatSync, readlinkSync } from "node:fs";
import { join, normalize } from "node:path";
import { shellQuote } from "./stream-protocol.js";
import type { ContainerMount, Propagation } from "./volumes.js";

/**
 * A container's own file system, as a runtime gives it: a private mount namespace whose root is the
 * image (overlayfs of its layers under a tmpfs upper layer that dies with the container), fresh
 * /proc, /sys, /run, /tmp and /dev/shm, the kubelet's /etc files, and the pod's volumes bound at
 * their paths. So a pod sees its volumes and nothing else of the node or the lab (no lab state
 * under /run, no other pod's files). Images without layers of their own (the lab's host-binary
 * images) use the host's root file system as their one, read-only-in-effect, layer.
 *
 * Its own UTS namespace too, named as the pod's hostname (a runtime gives the pod sandbox one): a
 * program asking the kernel for its hostname (os.Hostname(), `hostname`) gets the pod's name, not
 * the node's — Kubernetes' e2e tests tell backends apart by what agnhost's /hostname answers.
 *
 * Built as one `unshare --mount --uts` + `sh` whose last step execs the command chrooted
 * (`unshare --root`), so the container's PID is the one the kubelet spawned; just before, it
 * closes fd 3, which the kubelet gives it as a pipe to learn that the root is ready.
 */

export interface ContainerRoot {
  /** An empty host directory: the container's tmpfs goes there (only inside its mount namespace). */
  scratch: string;
  /** Overlay lower directories, the top layer first. */
  layers: string[];
  mounts: ContainerMount[];
  /** Files the kubelet manages, bound over the image's (/etc/resolv.conf, /etc/hosts, /etc/hostname). */
  files: { target: string; source: string }[];
  privileged: boolean;
  workingDir: string;
  /** The UTS namespace's hostname: the pod's (spec.hostname or its name), the node's with hostNetwork. */
  hostname: string;
}

/**
 * Resolves a container path against the image layers the way the path resolves inside the
 * container (a symlink's absolute target starts again at the container's root): /var/run/x in a
 * Debian image is /run/x. Without it a mount point would follow the symlink out to the host.
 */
export function resolveInLayers(layers: string[], path: string, maxLinks = 32): string {
  const parts = normalize(path).split("/").filter(Boolean);
  const resolved: string[] = [];
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift() as string;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    const candidate = [...resolved, part];
    const link = symlinkIn(layers, `/${candidate.join("/")}`);
    if (link === undefined) {
      resolved.push(part);
      continue;
    }
    if (++links > maxLinks) throw new Error(`too many symbolic links resolving ${path} in the image`);
    const target = link.split("/").filter(Boolean);
    if (link.startsWith("/")) resolved.length = 0;
    parts.unshift(...target);
  }
  return `/${resolved.join("/")}`;
}

function symlinkIn(layers: string[], path: string): string | undefined {
  for (const layer of layers) {
    try {
      const stat = lstatSync(join(layer, path));
      return stat.isSymbolicLink() ? readlinkSync(join(layer, path)) : undefined;
    } catch (error) {
      // not in this layer: the next one down may have it
      if (
        (error as NodeJS.ErrnoException).code !== "ENOENT" &&
        (error as NodeJS.ErrnoException).code !== "ENOTDIR"
      )
        throw error;
    }
  }
  return undefined;
}

const PROPAGATION_FLAG: Record<Propagation, string> = {
  private: "--make-rprivate",
  slave: "--make-rslave",
  shared: "--make-rshared",
};

/** argv that runs `argv` inside the container's root; spawn it with the container's env. */
export function rootedArgv(root: ContainerRoot, argv: string[]): string[] {
  const q = (value: string) => shellQuote([value]);
  const at = (path: string) => `"$R"${q(resolveInLayers(root.layers, path))}`;
  const lines = [
    "set -e",
    `S=${q(root.scratch)}`,
    'mount -t tmpfs -o mode=0755 cm-container "$S"',
    'mkdir "$S/upper" "$S/work" "$S/root"',
    `mount -t overlay overlay -o ${q(`lowerdir=${root.layers.join(":")}`)},upperdir="$S/upper",workdir="$S/work" "$S/root"`,
    'R="$S/root"',
    'mkdir -p "$R/proc" "$R/sys" "$R/dev" "$R/run" "$R/tmp"',
    'mount -t proc proc "$R/proc"',
    `mount -t sysfs ${root.privileged ? "" : "-o ro "}sysfs "$R/sys"`,
    'mount --rbind /dev "$R/dev"',
    'mount -t tmpfs -o mode=1777 shm "$R/dev/shm"',
    'mount -t tmpfs -o mode=0755 run "$R/run"',
    `hostname ${q(root.hostname)}`,
  ];
  // An image of its own gets a fresh /tmp; the host-binary images run programs of this checkout,
  // which may itself live under /tmp (a CI clone), so theirs stays the host's (writes still go to
  // the container's upper layer). The lab's state is under /run and /dev/shm, masked above.
  if (!root.layers.includes("/")) lines.push('mount -t tmpfs -o mode=1777 tmp "$R/tmp"');
  const bind = (source: string, target: string, recursive: boolean) => [
    `if [ -d ${q(source)} ]; then mkdir -p ${target}; else mkdir -p "$(dirname ${target})"; [ -e ${target} ] || : > ${target}; fi`,
    `mount ${recursive ? "--rbind" : "--bind"} ${q(source)} ${target}`,
  ];
  for (const file of root.files) lines.push(...bind(file.source, at(file.target), false));
  // parents before children, by the path inside the image: /var/run/x (= /run/x) before /run/x/cgroupv2
  const mounts = root.mounts
    .map((mount) => ({ mount, resolved: resolveInLayers(root.layers, mount.target) }))
    .sort((a, b) => a.resolved.split("/").length - b.resolved.split("/").length);
  for (const { mount, resolved } of mounts) {
    const target = `"$R"${q(resolved)}`;
    lines.push(...bind(mount.source, target, mount.recursive));
    if (mount.readOnly) lines.push(`mount -o remount,bind,ro ${target}`);
    lines.push(`mount ${PROPAGATION_FLAG[mount.propagation]} ${target}`);
  }
  // fd 3 tells the kubelet the root is ready; the command does not inherit it
  lines.push("exec 3>&-");
  lines.push(`exec unshare --root="$R" --wd=${q(root.workingDir || "/")} -- "$@"`);
  return [
    "unshare",
    "--mount",
    "--uts",
    "--propagation",
    "slave",
    "--",
    "sh",
    "-c",
    lines.join("\n"),
    "container",
    ...argv,
  ];
}

/** argv that runs a command in a running container: its mount and UTS namespaces, root, cwd and network. */
export function enterContainerArgv(pid: number, argv: string[]): string[] {
  return ["nsenter", `--target=${pid}`, "--mount", "--uts", "--net", "--root", "--wd", "--", ...argv];
}
