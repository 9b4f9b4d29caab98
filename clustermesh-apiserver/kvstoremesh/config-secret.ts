/**
 * The remotes KVStoreMesh caches, read from the Kubernetes API: the clustermesh-kvstoremesh Secret
 * (what `clustermesh connect` records) with this cluster's remote client certificate as
 * common-etcd-client.* — the same files Cilium's kvstoremesh volume mounts, without waiting for
 * the kubelet to refresh a mounted Secret (a minute or more after a connect). Polled with GETs
 * (RBAC grants exactly these two Secrets, which a watch or list cannot be limited to).
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { COMMON_CLIENT } from "../../lib/clustermesh/remote-config.js";
import {
  type RemoteEntry,
  remoteEntriesFromFiles,
  secretsAsFiles,
} from "../../lib/clustermesh/remote-entries.js";
import { coreApi, readSecret } from "../../lib/k8s/client.js";
import type { ConfigDirWatch } from "./config-dir.js";

export interface ConfigSecretNames {
  /** The remotes (one key per cluster) and the CAs they refer to. */
  remotes: string;
  /** kubernetes.io/tls + ca.crt: this cluster's client certificate for the remotes' etcds. */
  clientCert: string;
}

/** Calls `onChange` with the parsed entries once read and whenever either Secret's content changes. */
export function watchConfigSecret(
  kubeConfig: KubeConfig,
  names: ConfigSecretNames,
  localClusterName: string,
  onChange: (entries: RemoteEntry[]) => void,
  onError: (error: Error) => void,
  intervalMs = 2_000,
): ConfigDirWatch {
  const core = coreApi(kubeConfig);
  let last: string | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const poll = async () => {
    try {
      const [remotes, cert] = await Promise.all([
        readSecret(core, names.remotes),
        readSecret(core, names.clientCert),
      ]);
      const files = secretsAsFiles(remotes?.data, [{ data: cert?.data, files: COMMON_CLIENT }]);
      const snapshot = JSON.stringify([...files].sort(([a], [b]) => (a < b ? -1 : 1)));
      if (snapshot !== last) {
        last = snapshot;
        onChange(remoteEntriesFromFiles(localClusterName, files));
      }
    } catch (error) {
      // the last configuration stays in force; the next poll retries
      onError(new Error(`reading Secrets ${names.remotes} and ${names.clientCert}`, { cause: error }));
    }
    if (!stopped) {
      timer = setTimeout(() => void poll(), intervalMs);
      timer.unref();
    }
  };
  void poll();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
