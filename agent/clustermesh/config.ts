/**
 * Which remote clusters this agent connects to: the `clustermesh-remotes` Secret (one key per
 * cluster: etcd client YAML) and the `clustermesh-apiserver-remote-cert` Secret (this cluster's
 * client certificate), laid out as Cilium's projected volume maps them into one directory
 * (https://github.com/cilium/cilium/blob/main/pkg/clustermesh/common/config.go), then parsed like
 * any config directory (lib/clustermesh/remote-entries.ts). Pure: the watcher feeds it the
 * Secrets' data.
 */
import { COMMON_CLIENT, LOCAL_CLIENT } from "../../lib/clustermesh/remote-config.js";
import { type RemoteEntry, remoteEntriesFromFiles } from "../../lib/clustermesh/remote-entries.js";

export interface SecretsInput {
  localClusterName: string;
  /** `clustermesh-remotes` data (base64 values, as the API returns them); undefined = no Secret. */
  remotes: Record<string, string> | undefined;
  /** `clustermesh-apiserver-remote-cert` data (ca.crt, tls.crt, tls.key, base64). */
  remoteCert: Record<string, string> | undefined;
  /** `clustermesh-apiserver-local-cert` data: KVStoreMesh mode's entries point at the local etcd with it. */
  localCert?: Record<string, string> | undefined;
}

const decode = (value: string) => Buffer.from(value, "base64").toString("utf8");

export function remoteEntries(input: SecretsInput): RemoteEntry[] {
  const files = new Map<string, string>();
  for (const [name, value] of Object.entries(input.remotes ?? {})) files.set(name, decode(value));
  const mount = (
    secret: Record<string, string> | undefined,
    names: typeof COMMON_CLIENT | typeof LOCAL_CLIENT,
  ) => {
    const certFiles: Record<string, string> = {
      "ca.crt": names.ca,
      "tls.crt": names.cert,
      "tls.key": names.key,
    };
    for (const [key, file] of Object.entries(certFiles)) {
      const value = secret?.[key];
      if (value !== undefined) files.set(file, decode(value));
    }
  };
  mount(input.remoteCert, COMMON_CLIENT);
  mount(input.localCert, LOCAL_CLIENT);
  return remoteEntriesFromFiles(input.localClusterName, files);
}
