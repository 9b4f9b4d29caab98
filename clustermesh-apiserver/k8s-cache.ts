/**
 * An informer over client-node's ListWatch that survives API server restarts (ListWatch stops on
 * a watch error; we restart it) and treats a resource the API does not serve yet (a CRD not yet
 * created: 404) as empty, so readiness does not hang on it; it keeps retrying until it appears.
 * Events: onChange(object, deleted) per object; onSynced once after the first list is applied.
 */
import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  Watch,
} from "@kubernetes/client-node";
import type { Logger } from "../lib/log.js";

export interface InformerOptions<T extends KubernetesObject> {
  name: string;
  kubeConfig: KubeConfig;
  /** Watch path, e.g. /api/v1/services. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  onChange: (object: T, deleted: boolean) => void;
  onSynced: () => void;
  /** Counts every event (for /metrics). */
  onEvent?: (kind: "add" | "update" | "delete") => void;
  log: Logger;
  restartDelayMs?: number;
}

export interface Informer<T extends KubernetesObject> {
  readonly name: string;
  list(): readonly T[];
  get(name: string, namespace?: string): T | undefined;
  readonly synced: boolean;
  stop(): Promise<void>;
}

function httpStatus(error: unknown): number | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "number" ? code : undefined;
}

export function startInformer<T extends KubernetesObject>(options: InformerOptions<T>): Informer<T> {
  let stopped = false;
  let synced = false;
  let restartTimer: NodeJS.Timeout | undefined;
  const informer = new ListWatch<T>(
    options.path,
    new Watch(options.kubeConfig),
    async () => {
      let list: KubernetesListObject<T>;
      try {
        list = await options.list();
      } catch (error) {
        if (httpStatus(error) !== 404) throw error;
        options.log.debug({ informer: options.name }, "resource not served (yet); treating as empty");
        list = { apiVersion: "v1", kind: "List", items: [], metadata: { resourceVersion: "0" } };
      }
      // ListWatch applies the list (emitting add/update/delete) after this resolves.
      setImmediate(() => {
        if (!synced && !stopped) {
          synced = true;
          options.onSynced();
        }
      });
      return list;
    },
    false,
  );
  const emit = (kind: "add" | "update" | "delete") => (object: T) => {
    options.onEvent?.(kind);
    options.onChange(object, kind === "delete");
  };
  informer.on("add", emit("add"));
  informer.on("update", emit("update"));
  informer.on("delete", emit("delete"));
  const restart = (error: unknown) => {
    if (stopped) return;
    options.log.debug({ informer: options.name, err: String(error) }, "watch ended; restarting");
    clearTimeout(restartTimer);
    restartTimer = setTimeout(() => {
      if (!stopped) informer.start().catch(restart);
    }, options.restartDelayMs ?? 1_000);
  };
  informer.on("error", restart);
  informer.start().catch(restart);
  return {
    name: options.name,
    list: () => informer.list(),
    get: (name, namespace) => informer.get(name, namespace),
    get synced() {
      return synced;
    },
    stop: async () => {
      stopped = true;
      clearTimeout(restartTimer);
      await informer.stop();
    },
  };
}
