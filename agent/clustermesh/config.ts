/**
 * Which remote clusters this agent connects to: the `clustermesh-remotes` Secret (one key per
 * cluster: etcd client YAML), the `clustermesh-apiserver-remote-cert` Secret (this cluster's
 * client certificate for other clusters) and, in KVStoreMesh mode, `clustermesh-apiserver-local-cert`
 * (for the local etcd), laid out as Cilium's projected volume maps them into one directory
 * (https://github.com/cilium/cilium/blob/main/pkg/clustermesh/common/config.go), then parsed like
 * any config directory (lib/clustermesh/remote-entries.ts). Pure: the watcher feeds it the
 * Secrets' data.
 */
import { COMMON_CLIENT, LOCAL_CLIENT } from "../../lib/clustermesh/remote-config.js";
import {
  type RemoteEntry,
  remoteEntriesFromFiles,
  secretsAsFiles,
} from "../../lib/clustermesh/remote-entries.js";

export interface SecretsInput {
  localClusterName: string;
  /** `clustermesh-remotes` data (base64 values, as the API returns them); undefined = no Secret. */
  remotes: Record<string, string> | undefined;
  /** `clustermesh-apiserver-remote-cert` data (ca.crt, tls.crt, tls.key, base64). */
  remoteCert: Record<string, string> | undefined;
  /** `clustermesh-apiserver-local-cert` data: KVStoreMesh mode's entries point at the local etcd with it. */
  localCert?: Record<string, string> | undefined;
}

export function remoteEntries(input: SecretsInput): RemoteEntry[] {
  const files = secretsAsFiles(input.remotes, [
    { data: input.remoteCert, files: COMMON_CLIENT },
    { data: input.localCert, files: LOCAL_CLIENT },
  ]);
  return remoteEntriesFromFiles(input.localClusterName, files);
}
