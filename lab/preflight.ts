import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { release } from "node:os";
import { gunzipSync } from "node:zlib";
import { cgroup2Root } from "../lib/cgroup.js";

export interface KernelFeature {
  /** Any one of these options enables the feature. */
  options: string[];
  what: string;
}

export const REQUIRED_KERNEL_FEATURES: KernelFeature[] = [
  { options: ["CONFIG_NET_NS"], what: "network namespaces (the lab's nodes and pods)" },
  { options: ["CONFIG_VETH"], what: "veth pairs (node and pod links)" },
  { options: ["CONFIG_BRIDGE"], what: "Linux bridge (the lab network)" },
  { options: ["CONFIG_VXLAN"], what: "VXLAN devices (the pod overlay)" },
  { options: ["CONFIG_BPF_SYSCALL"], what: "the bpf() system call (the datapath)" },
  { options: ["CONFIG_CGROUP_BPF"], what: "cgroup BPF hooks (socket load balancing)" },
  {
    options: ["CONFIG_NET_XGRESS", "CONFIG_NET_SCH_INGRESS"],
    what: "tcx or tc clsact attach points for BPF",
  },
  { options: ["CONFIG_TUN"], what: "TUN devices (wireguard-go and userspace IPsec)" },
];

/** Kernel features missing from a kernel config text (as in /proc/config.gz). Built-in or module both count. */
export function missingKernelFeatures(
  configText: string,
  features = REQUIRED_KERNEL_FEATURES,
): KernelFeature[] {
  const enabled = new Set<string>();
  for (const line of configText.split("\n")) {
    const match = /^(CONFIG_[A-Z0-9_]+)=(y|m)$/.exec(line.trim());
    if (match) enabled.add(match[1]);
  }
  return features.filter((feature) => !feature.options.some((option) => enabled.has(option)));
}

/** The running kernel's config: $MESH_KERNEL_CONFIG, /proc/config.gz or /boot/config-<release>. */
export function readKernelConfig(): { source: string; text: string } | undefined {
  const override = process.env.MESH_KERNEL_CONFIG;
  if (override) return { source: override, text: readFileSync(override, "utf8") };
  if (existsSync("/proc/config.gz")) {
    return { source: "/proc/config.gz", text: gunzipSync(readFileSync("/proc/config.gz")).toString("utf8") };
  }
  const boot = `/boot/config-${release()}`;
  if (existsSync(boot)) return { source: boot, text: readFileSync(boot, "utf8") };
  return undefined;
}

const REQUIRED_COMMANDS: Record<string, string> = {
  ip: "iproute2",
  nsenter: "util-linux",
  mount: "mount",
  etcd: "etcd-server",
};

function hasCommand(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

/** Every reason the lab cannot be built on this host, each a line naming the problem and its fix. */
export function preflightProblems(): string[] {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) {
    problems.push(
      "must run as root: the lab creates network namespaces, links and BPF objects (try: sudo meshctl …)",
    );
  }
  const config = readKernelConfig();
  if (config) {
    for (const feature of missingKernelFeatures(config.text)) {
      problems.push(
        `kernel feature missing: ${feature.what} (${feature.options.join(" or ")} is not set in ${config.source}); use a kernel built with it`,
      );
    }
  }
  if (!cgroup2Root()) {
    problems.push(
      "no cgroup2 hierarchy is mounted; mount one with: mount -t cgroup2 none /sys/fs/cgroup/unified",
    );
  }
  for (const [command, pkg] of Object.entries(REQUIRED_COMMANDS)) {
    if (!hasCommand(command)) {
      problems.push(
        `command not found: ${command} (apt-get install --no-install-recommends ${pkg}, or run npm run bootstrap)`,
      );
    }
  }
  return problems;
}
