/**
 * Which remote clusters to connect to, and with what: Cilium's one-file-per-cluster config
 * directory (https://github.com/cilium/cilium/blob/main/pkg/clustermesh/common/config.go). Each
 * file holding "endpoints:" is the etcd client config of the cluster it is named after; the TLS
 * files it names are looked up in the same directory. Used by the agent (its remotes Secret) and by
 * the clustermesh-apiserver in KVStoreMesh mode (the cilium-kvstoremesh Secret). Pure.
 */
import { createHash } from "node:crypto";
import type { EtcdClientTls } from "../etcd/client.js";
import { clusterNameProblem } from "../kvstore/cluster-identity.js";
import { isRemoteClusterConfig, parseRemoteClusterConfig } from "./remote-config.js";
import { MESH_DOMAIN } from "./resources.js";

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

/** `files`: file name → content, as the config directory holds them. */
export function remoteEntriesFromFiles(
  localClusterName: string,
  files: ReadonlyMap<string, string>,
): RemoteEntry[] {
  const entries: RemoteEntry[] = [];
  for (const [name, text] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    // other files (a remote's CA, the client certificate, …) are what the configs refer to
    if (!isRemoteClusterConfig(text)) continue;
    if (name === localClusterName) continue; // Cilium: "Ignoring configuration for own cluster"
    const nameProblem = clusterNameProblem(name);
    if (nameProblem) {
      entries.push({ name, error: `invalid remote cluster name: ${nameProblem}` });
      continue;
    }
    try {
      const config = parseRemoteClusterConfig(name, text);
      const missing: string[] = [];
      const read = (file: string) => {
        const content = files.get(file);
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

/** A client certificate Secret's keys (kubernetes.io/tls + ca.crt) → the file names configs use. */
export interface CertificateFiles {
  ca: string;
  cert: string;
  key: string;
}

/**
 * A config directory as a projected volume lays Secrets out: the remotes Secret's keys as they
 * are, each client certificate Secret's ca.crt/tls.crt/tls.key under its file names. Secret data
 * is base64, as the API returns it. Pure.
 */
export function secretsAsFiles(
  remotes: Record<string, string> | undefined,
  certificates: readonly { data: Record<string, string> | undefined; files: CertificateFiles }[],
): Map<string, string> {
  const decode = (value: string) => Buffer.from(value, "base64").toString("utf8");
  const files = new Map<string, string>();
  for (const [name, value] of Object.entries(remotes ?? {})) files.set(name, decode(value));
  for (const { data, files: names } of certificates) {
    const keys: Record<string, string> = { "ca.crt": names.ca, "tls.crt": names.cert, "tls.key": names.key };
    for (const [key, file] of Object.entries(keys)) {
      const value = data?.[key];
      if (value !== undefined) files.set(file, decode(value));
    }
  }
  return files;
}
