/**
 * A pod's /etc/resolv.conf as the kubelet writes it, by dnsPolicy
 * (https://github.com/kubernetes/kubernetes/blob/v1.33.0/pkg/kubelet/network/dns/dns.go):
 * ClusterFirst (the default) → the cluster DNS with the namespace's search list and ndots:5;
 * Default → the node's resolv.conf (here: the host's, i.e. nothing written); None → dnsConfig only.
 * dnsConfig's nameservers, searches and options are merged in as the kubelet does.
 */
import type { V1Pod } from "@kubernetes/client-node";

export interface ClusterDns {
  /** `--cluster-dns`: the kube-dns Service IP(s). */
  nameservers: string[];
  /** `--cluster-domain`, e.g. cluster.local. */
  domain: string;
}

/** The resolv.conf text for the pod, or undefined when it uses the node's (Default, or no cluster DNS). */
export function podResolvConf(pod: V1Pod, dns: ClusterDns | undefined): string | undefined {
  const policy = pod.spec?.dnsPolicy ?? "ClusterFirst";
  const hostNetwork = pod.spec?.hostNetwork === true;
  let nameservers: string[] = [];
  let searches: string[] = [];
  let options: { name: string; value?: string }[] = [];
  const clusterFirst = (policy === "ClusterFirst" && !hostNetwork) || policy === "ClusterFirstWithHostNet";
  if (clusterFirst && dns && dns.nameservers.length > 0) {
    const namespace = pod.metadata?.namespace ?? "default";
    nameservers = [...dns.nameservers];
    searches = [`${namespace}.svc.${dns.domain}`, `svc.${dns.domain}`, dns.domain];
    options = [{ name: "ndots", value: "5" }];
  } else if (policy !== "None") {
    return undefined;
  }
  const config = pod.spec?.dnsConfig;
  nameservers = unique([...nameservers, ...(config?.nameservers ?? [])]).slice(0, 3);
  searches = unique([...searches, ...(config?.searches ?? [])]).slice(0, 32);
  for (const option of config?.options ?? []) {
    if (!option.name) continue;
    options = options.filter((o) => o.name !== option.name);
    options.push({ name: option.name, value: option.value });
  }
  const lines = [
    ...(searches.length ? [`search ${searches.join(" ")}`] : []),
    ...nameservers.map((ns) => `nameserver ${ns}`),
    ...(options.length
      ? [`options ${options.map((o) => (o.value === undefined ? o.name : `${o.name}:${o.value}`)).join(" ")}`]
      : []),
  ];
  return `${lines.join("\n")}\n`;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
