/**
 * Which remote clusters this agent connects to, and with what: Cilium's one-file-per-cluster config
 * directory, read from the `clustermesh-remotes` Secret (one key per cluster: etcd client YAML) and
 * the `clustermesh-apiserver-remote-cert` Secret (this cluster's client certificate), as Cilium's
 * projected volume maps them (https://github.com/cilium/cilium/blob/main/pkg/clustermesh/common/config.go). Pure: the watcher feeds it
 * the Secrets' data.
 */
import { createHash } from "node:crypto";
import {
  COMMON_CLIENT,
  isRemoteClusterConfig,
  parseRemoteClusterConfig,
} from "../../lib/clustermesh/remote-config.js";
import { MESH_DOMAIN } from "../../lib/clustermesh/resources.js";
import type { EtcdClientTls } from "../../lib/etcd/client.js";
import { clusterNameProblem } from "../../lib/kvstore/cluster-identity.js";

export interface RemoteConnection {
  name: string;
  endpoints: string[];
  tls: EtcdClientTls;
  /** Name checked against the remote etcd's server certificate (`<name>.mesh.cilium.io`). */
  serverName: string;
  /** Changes whenever anything that needs a reconnect changes (endpoints, CA, certificate). */
  fingerprint: string;
}

/** A configured cluster: usable, or why not (shown in the status instead of silently dropped). */
export type RemoteEntry = { name: string; connection: RemoteConnection } | { name: string; error: string };

export interface SecretsInput {
  localClusterName: string;
  /** `clustermesh-remotes` data (base64 values, as the API returns them); undefined = no Secret. */
  remotes: Record<string, string> | undefined;
  /** `clustermesh-apiserver-remote-cert` data (ca.crt, tls.crt, tls.key, base64). */
  remoteCert: Record<string, string> | undefined;
}

const decode = (value: string | undefined) =>
  value === undefined ? undefined : Buffer.from(value, "base64").toString("utf8");

/** Resolves a config's file name the way the projected volume lays the Secrets out. */
function fileContent(input: SecretsInput, file: string): string | undefined {
  const certKey: Record<string, string> = {
    [COMMON_CLIENT.ca]: "ca.crt",
    [COMMON_CLIENT.cert]: "tls.crt",
    [COMMON_CLIENT.key]: "tls.key",
  };
  if (certKey[file] !== undefined) return decode(input.remoteCert?.[certKey[file]]);
  return decode(input.remotes?.[file]);
}

export function remoteEntries(input: SecretsInput): RemoteEntry[] {
  const entries: RemoteEntry[] = [];
  for (const [name, value] of Object.entries(input.remotes ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const text = decode(value) ?? "";
    // other keys (a remote's CA, …) are files the configs refer to, not clusters
    if (!isRemoteClusterConfig(text)) continue;
    if (name === input.localClusterName) continue; // Cilium: "Ignoring configuration for own cluster"
    const nameProblem = clusterNameProblem(name);
    if (nameProblem) {
      entries.push({ name, error: `invalid remote cluster name: ${nameProblem}` });
      continue;
    }
    try {
      const config = parseRemoteClusterConfig(name, text);
      const missing: string[] = [];
      const read = (file: string) => {
        const content = fileContent(input, file);
        if (!content) missing.push(file);
        return content ?? "";
      };
      const tls = { ca: read(config.trustedCaFile), cert: read(config.certFile), key: read(config.keyFile) };
      if (missing.length > 0) {
        entries.push({ name, error: `missing TLS material: ${missing.join(", ")}` });
        continue;
      }
      const fingerprint = createHash("sha256")
        .update(JSON.stringify([config.endpoints, tls.ca, tls.cert, tls.key]))
        .digest("hex");
      entries.push({
        name,
        connection: {
          name,
          endpoints: config.endpoints,
          tls,
          serverName: `${name}.${MESH_DOMAIN}`,
          fingerprint,
        },
      });
    } catch (error) {
      entries.push({ name, error: (error as Error).message });
    }
  }
  return entries;
}
