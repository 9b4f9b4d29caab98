/**
 * Cluster DNS as kind has it: kubeadm's CoreDNS add-on (ServiceAccount, ClusterRole(Binding),
 * ConfigMap with the Corefile, Deployment `coredns`, Service `kube-dns` at the 10th address of the
 * service CIDR), from kubeadm's cmd/kubeadm/app/phases/addons/dns/manifests.go (v1.33).
 *
 * The one lab difference: there is no CoreDNS image, so the container's `command` is the CoreDNS
 * binary built from the Go module proxy (run from the host's file system, the lab's layer for
 * images it has no layers of). As in kubeadm, the Corefile is the ConfigMap mounted at /etc/coredns
 * and the kubernetes plugin authenticates with the pod's ServiceAccount token (in-cluster config).
 */
import { stringify } from "yaml";
import { nthAddress, parseCidr } from "../../lib/cidr.js";

/** kubeadm 1.33's CoreDNS release line; the binary is built from the version toolchain/coredns pins. */
export const COREDNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.12.4";
export const CLUSTER_DOMAIN = "cluster.local";
export const COREDNS_USER = "system:serviceaccount:kube-system:coredns";

/** kubeadm's clusterDNS: the 10th address of the (first) service CIDR. */
export function clusterDnsIp(serviceSubnet: string): string {
  return nthAddress(parseCidr(serviceSubnet), 10);
}

/**
 * kubeadm's Corefile. `nodeHosts` adds a hosts block for the file NodeHosts beside it (k3s's way to
 * resolve node names; the lab's stand-in for kind's docker network DNS). `upstream: false`
 * drops `forward` (and `loop`, which probes through it): the lab's DNS answers cluster names only,
 * so no query ever leaves the machine.
 */
export function corefile(
  options: { clusterDomain?: string; upstream?: boolean; nodeHosts?: boolean } = {},
): string {
  const domain = options.clusterDomain ?? CLUSTER_DOMAIN;
  const upstream = options.upstream ?? true;
  const forward = upstream
    ? `
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }`
    : "";
  return `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes ${domain} in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    ${options.nodeHosts ? "hosts /etc/coredns/NodeHosts {\n       ttl 60\n       reload 15s\n       fallthrough\n    }\n    " : ""}prometheus :9153${forward}
    cache 30 {
       disable success ${domain}
       disable denial ${domain}
    }${upstream ? "\n    loop" : ""}
    reload
    loadbalance
}
`;
}

export interface CorednsManifestOptions {
  serviceSubnet: string;
  /** Host path of the CoreDNS binary (the container's command). */
  binary: string;
  /** The Corefile text, in the ConfigMap the pods mount. */
  corefileText: string;
  /** hosts-file lines for the Corefile's NodeHosts (corefile({ nodeHosts: true })). */
  nodeHosts?: string;
  replicas?: number;
}

const LABELS = { "k8s-app": "kube-dns" };

/** The objects, in the order kubeadm applies them. */
export function corednsObjects(options: CorednsManifestOptions): Record<string, unknown>[] {
  const meta = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    namespace: "kube-system",
    ...extra,
  });
  return [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: meta("coredns") },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "system:coredns" },
      rules: [
        {
          apiGroups: [""],
          resources: ["endpoints", "services", "pods", "namespaces"],
          verbs: ["list", "watch"],
        },
        { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "watch"] },
      ],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "system:coredns" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:coredns" },
      subjects: [{ kind: "ServiceAccount", name: "coredns", namespace: "kube-system" }],
    },
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: meta("coredns"),
      data: {
        Corefile: options.corefileText,
        ...(options.nodeHosts ? { NodeHosts: options.nodeHosts } : {}),
      },
    },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: meta("coredns", { labels: LABELS }),
      spec: {
        replicas: options.replicas ?? 2,
        strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
        selector: { matchLabels: LABELS },
        template: {
          metadata: { labels: LABELS },
          spec: {
            priorityClassName: "system-cluster-critical",
            serviceAccountName: "coredns",
            affinity: {
              podAntiAffinity: {
                preferredDuringSchedulingIgnoredDuringExecution: [
                  {
                    weight: 100,
                    podAffinityTerm: {
                      labelSelector: {
                        matchExpressions: [{ key: "k8s-app", operator: "In", values: ["kube-dns"] }],
                      },
                      topologyKey: "kubernetes.io/hostname",
                    },
                  },
                ],
              },
            },
            tolerations: [
              { key: "CriticalAddonsOnly", operator: "Exists" },
              { key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" },
            ],
            nodeSelector: { "kubernetes.io/os": "linux" },
            containers: [
              {
                name: "coredns",
                image: COREDNS_IMAGE,
                command: [options.binary],
                args: ["-conf", "/etc/coredns/Corefile"],
                volumeMounts: [{ name: "config-volume", mountPath: "/etc/coredns", readOnly: true }],
                resources: { limits: { memory: "170Mi" }, requests: { cpu: "100m", memory: "70Mi" } },
                ports: [
                  { containerPort: 53, name: "dns", protocol: "UDP" },
                  { containerPort: 53, name: "dns-tcp", protocol: "TCP" },
                  { containerPort: 9153, name: "metrics", protocol: "TCP" },
                ],
                livenessProbe: {
                  httpGet: { path: "/health", port: 8080, scheme: "HTTP" },
                  initialDelaySeconds: 60,
                  timeoutSeconds: 5,
                  successThreshold: 1,
                  failureThreshold: 5,
                },
                readinessProbe: { httpGet: { path: "/ready", port: 8181, scheme: "HTTP" } },
              },
            ],
            dnsPolicy: "Default",
            volumes: [
              {
                name: "config-volume",
                configMap: {
                  name: "coredns",
                  items: [
                    { key: "Corefile", path: "Corefile" },
                    ...(options.nodeHosts ? [{ key: "NodeHosts", path: "NodeHosts" }] : []),
                  ],
                },
              },
            ],
          },
        },
      },
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: meta("kube-dns", {
        labels: { ...LABELS, "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS" },
        annotations: { "prometheus.io/port": "9153", "prometheus.io/scrape": "true" },
      }),
      spec: {
        selector: LABELS,
        clusterIP: clusterDnsIp(options.serviceSubnet),
        ports: [
          { name: "dns", port: 53, protocol: "UDP", targetPort: 53 },
          { name: "dns-tcp", port: 53, protocol: "TCP", targetPort: 53 },
          { name: "metrics", port: 9153, protocol: "TCP", targetPort: 9153 },
        ],
      },
    },
  ];
}

/** The objects as one multi-document YAML, ready for `kubectl apply -f -`. */
export function corednsManifest(options: CorednsManifestOptions): string {
  return corednsObjects(options)
    .map((object) => stringify(object))
    .join("---\n");
}
