/**
 * The last known state of each remote cluster, kept in the agent's --state-dir so that a restarted
 * agent reconciles its (pinned, adopted) datapath against it instead of against nothing: remote
 * nodes, endpoints and backends stay programmed until the remote's watch stores have relisted
 * (Cilium #23823: connectivity to global services lost on agent restart). Written atomically,
 * debounced; removed when the cluster is disconnected.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { IPIdentityPair } from "../../lib/kvstore/values/ipcache.js";
import type { NodeValue } from "../../lib/kvstore/values/node.js";
import type { ClusterService } from "../../lib/kvstore/values/service.js";
import type { Logger } from "../../lib/log.js";

export interface PersistedRemote {
  version: 1;
  name: string;
  clusterId: number;
  savedAt: string;
  nodes: readonly NodeValue[];
  services: readonly ClusterService[];
  ipcache: readonly IPIdentityPair[];
}

const FILE_SUFFIX = ".json";

export class RemoteStateDir {
  constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  private file(name: string): string {
    return join(this.dir, `${name}${FILE_SUFFIX}`);
  }

  names(): string[] {
    try {
      return readdirSync(this.dir)
        .filter((f) => f.endsWith(FILE_SUFFIX))
        .map((f) => f.slice(0, -FILE_SUFFIX.length));
    } catch (error) {
      // ENOENT: nothing saved yet; anything else (EACCES) would silently forget every remote
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      return [];
    }
  }

  load(name: string): PersistedRemote | undefined {
    try {
      const state = JSON.parse(readFileSync(this.file(name), "utf8")) as PersistedRemote;
      const ok =
        state.version === 1 &&
        state.name === name &&
        Number.isInteger(state.clusterId) &&
        [state.nodes, state.services, state.ipcache].every(Array.isArray);
      if (!ok) throw new Error("unexpected shape");
      return state;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT")
        this.log.warn({ cluster: name, err: error }, "ignoring unreadable persisted remote cluster state");
      return undefined;
    }
  }

  save(state: PersistedRemote): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.file(state.name)}.tmp`;
    writeFileSync(tmp, JSON.stringify(state));
    renameSync(tmp, this.file(state.name));
  }

  remove(name: string): void {
    rmSync(this.file(name), { force: true });
  }
}
