/**
 * The remotes KVStoreMesh caches: Cilium's --clustermesh-config directory (the cilium-kvstoremesh
 * Secret mounted with this cluster's remote client certificate as common-etcd-client.*), one file
 * per remote. Polled: files of a mounted Secret are swapped through symlinks, which fs.watch does
 * not reliably report; a change of any file reconfigures (only changed remotes reconnect).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { type RemoteEntry, remoteEntriesFromFiles } from "../../lib/clustermesh/remote-entries.js";

/** Every regular file of `dir` (following symlinks; dot-files are the mount's own bookkeeping). */
export function readConfigDir(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const name of readdirSync(dir)) {
    if (name.startsWith(".")) continue;
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    files.set(name, readFileSync(path, "utf8"));
  }
  return files;
}

export interface ConfigDirWatch {
  stop(): void;
}

/**
 * Calls `onChange` with the parsed entries now and whenever the directory's content changes.
 * A directory that cannot be read counts as empty only if it does not exist (nothing configured);
 * other read errors keep the last configuration and are reported.
 */
export function watchConfigDir(
  dir: string,
  localClusterName: string,
  onChange: (entries: RemoteEntry[]) => void,
  onError: (error: Error) => void,
  intervalMs = 2_000,
): ConfigDirWatch {
  let last: string | undefined;
  const poll = () => {
    let files: Map<string, string>;
    try {
      files = readConfigDir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") files = new Map();
      else {
        onError(new Error(`reading the clustermesh config directory ${dir}`, { cause: error }));
        return;
      }
    }
    const snapshot = JSON.stringify([...files].sort(([a], [b]) => (a < b ? -1 : 1)));
    if (snapshot === last) return;
    last = snapshot;
    onChange(remoteEntriesFromFiles(localClusterName, files));
  };
  poll();
  const timer = setInterval(poll, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
