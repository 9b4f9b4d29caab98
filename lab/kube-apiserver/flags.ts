/** kube-apiserver's command-line flags (the subset the lab uses), parsed and validated up front. */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { parseTokenFile } from "./auth.js";
import { parsePortRange, ServiceIpRange } from "./ipalloc.js";
import type { KubeApiServerOptions } from "./server.js";

export class FlagError extends Error {}

interface FlagSpec {
  name: string;
  required?: boolean;
  default?: string;
  help: string;
}

export const FLAGS: FlagSpec[] = [
  { name: "bind-address", default: "0.0.0.0", help: "IP address to serve HTTPS on" },
  { name: "secure-port", default: "6443", help: "port to serve HTTPS on (0: any free port)" },
  { name: "advertise-address", help: "IP the default/kubernetes Endpoints point at (default: bind-address)" },
  { name: "tls-cert-file", required: true, help: "serving certificate (PEM)" },
  { name: "tls-private-key-file", required: true, help: "serving key (PEM)" },
  {
    name: "client-ca-file",
    required: true,
    help: "CA whose client certificates authenticate users (CN = user, O = groups)",
  },
  { name: "token-auth-file", help: 'static bearer tokens, CSV lines token,user,uid[,"group1,group2"]' },
  { name: "etcd-servers", required: true, help: "comma-separated etcd URLs (https://ip:2379)" },
  { name: "etcd-cafile", required: true, help: "CA of the etcd server certificate" },
  { name: "etcd-certfile", required: true, help: "etcd client certificate" },
  { name: "etcd-keyfile", required: true, help: "etcd client key" },
  {
    name: "etcd-servername",
    help: "name to check in the etcd server certificate (default clustermesh-apiserver.cilium.io)",
  },
  { name: "etcd-prefix", default: "/registry", help: "key prefix of every object in etcd" },
  { name: "service-cluster-ip-range", required: true, help: "CIDR ClusterIPs are allocated from" },
  { name: "service-node-port-range", default: "30000-32767", help: "range NodePorts are allocated from" },
  { name: "kubelet-client-certificate", help: "client certificate for the kubelets (pods/log, pods/exec)" },
  { name: "kubelet-client-key", help: "key of --kubelet-client-certificate" },
  {
    name: "kubelet-certificate-authority",
    help: "CA of the kubelets' serving certificates (unverified when absent)",
  },
  { name: "cluster-name", default: "kubernetes", help: "name of the cluster (for logs)" },
  {
    name: "kubernetes-version",
    default: "v1.31.0",
    help: "version /version reports (kubectl picks its version from it)",
  },
  {
    name: "min-request-timeout",
    default: "1800",
    help: "seconds a watch without timeoutSeconds stays open at least",
  },
  { name: "v", default: "0", help: "log verbosity (>= 4: debug)" },
];

export function usage(): string {
  return [
    "usage: kube-apiserver [flags]",
    ...FLAGS.map(
      (f) =>
        `  --${f.name}${f.required ? " (required)" : ""}${f.default ? ` (default ${f.default})` : ""}\n      ${f.help}`,
    ),
  ].join("\n");
}

/** Accepts `--flag value` and `--flag=value`; unknown or valueless flags are errors naming the flag. */
export function parseFlags(argv: string[]): Map<string, string> {
  const known = new Map(FLAGS.map((f) => [f.name, f]));
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--"))
      throw new FlagError(`unexpected argument "${arg}" (flags look like --name=value)`);
    const eq = arg.indexOf("=");
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    if (!known.has(name)) throw new FlagError(`unknown flag: --${name}`);
    const value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : argv[i + 1];
    if (eq < 0) {
      if (value === undefined || value.startsWith("--"))
        throw new FlagError(`flag needs an argument: --${name}`);
      i++;
    }
    values.set(name, value);
  }
  for (const flag of FLAGS) {
    if (!values.has(flag.name) && flag.default !== undefined) values.set(flag.name, flag.default);
    if (flag.required && !values.get(flag.name)) throw new FlagError(`missing required flag: --${flag.name}`);
  }
  return values;
}

function readFlagFile(flags: Map<string, string>, name: string): string {
  const path = flags.get(name) ?? "";
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new FlagError(
      `--${name}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      { cause: error },
    );
  }
}

function check<T>(name: string, value: string, parse: (v: string) => T): T {
  try {
    return parse(value);
  } catch (error) {
    throw new FlagError(`--${name}: ${(error as Error).message}`, { cause: error });
  }
}

export function optionsFromFlags(
  flags: Map<string, string>,
): Omit<KubeApiServerOptions, "log"> & { verbosity: number } {
  const get = (name: string) => flags.get(name) ?? "";
  const bindAddress = get("bind-address");
  if (!isIP(bindAddress)) throw new FlagError(`--bind-address: "${bindAddress}" is not an IP address`);
  const advertise = flags.get("advertise-address");
  if (advertise !== undefined && !isIP(advertise))
    throw new FlagError(`--advertise-address: "${advertise}" is not an IP address`);
  const port = Number(get("secure-port"));
  if (!/^\d+$/.test(get("secure-port")) || port > 65535)
    throw new FlagError(`--secure-port: "${get("secure-port")}" is not a port number`);
  const endpoints = get("etcd-servers")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const endpoint of endpoints) {
    check("etcd-servers", endpoint, (e) => {
      const url = new URL(e);
      if (url.protocol !== "https:")
        throw new Error(`"${e}" must be an https:// URL (etcd requires client certificates)`);
    });
  }
  check("service-cluster-ip-range", get("service-cluster-ip-range"), (v) => new ServiceIpRange(v));
  check("service-node-port-range", get("service-node-port-range"), parsePortRange);
  const hasKubeletCert = flags.has("kubelet-client-certificate");
  if (hasKubeletCert !== flags.has("kubelet-client-key"))
    throw new FlagError(
      `--${hasKubeletCert ? "kubelet-client-key" : "kubelet-client-certificate"} is required with the other kubelet client flag`,
    );
  if (!/^v\d+\.\d+\.\d+/.test(get("kubernetes-version")))
    throw new FlagError(`--kubernetes-version: "${get("kubernetes-version")}" is not like v1.31.0`);
  const minRequestTimeoutSeconds = Number(get("min-request-timeout"));
  if (!(minRequestTimeoutSeconds > 0))
    throw new FlagError(`--min-request-timeout: "${get("min-request-timeout")}" is not a positive number`);
  const verbosity = Number(get("v"));
  if (!Number.isInteger(verbosity)) throw new FlagError(`--v: "${get("v")}" is not an integer`);
  return {
    bindAddress,
    securePort: port,
    advertiseAddress: advertise,
    tls: { cert: readFlagFile(flags, "tls-cert-file"), key: readFlagFile(flags, "tls-private-key-file") },
    clientCa: readFlagFile(flags, "client-ca-file"),
    tokens: flags.has("token-auth-file")
      ? check("token-auth-file", readFlagFile(flags, "token-auth-file"), parseTokenFile)
      : undefined,
    etcd: {
      endpoints,
      tls: {
        ca: readFlagFile(flags, "etcd-cafile"),
        cert: readFlagFile(flags, "etcd-certfile"),
        key: readFlagFile(flags, "etcd-keyfile"),
      },
      serverName: flags.get("etcd-servername"),
    },
    etcdPrefix: get("etcd-prefix"),
    serviceClusterIpRange: get("service-cluster-ip-range"),
    serviceNodePortRange: get("service-node-port-range"),
    kubeletClient: hasKubeletCert
      ? {
          cert: readFlagFile(flags, "kubelet-client-certificate"),
          key: readFlagFile(flags, "kubelet-client-key"),
          ca: flags.has("kubelet-certificate-authority")
            ? readFlagFile(flags, "kubelet-certificate-authority")
            : undefined,
        }
      : undefined,
    clusterName: get("cluster-name"),
    kubernetesVersion: get("kubernetes-version"),
    minRequestTimeoutSeconds,
    verbosity,
  };
}
