/**
 * An informer over client-node's ListWatch (the machinery behind makeInformer) that keeps itself
 * running: ListWatch stops on a watch error (connection refused, 410 Gone after compaction, …),
 * so we list and watch again after a pause, and a cache survives API server restarts. The agent,
 * the lab's controllers and kubelets, and the clustermesh-apiserver all watch through it.
 */
import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  Watch,
} from "@kubernetes/client-node";
import type { Logger } from "../log.js";
import { apiStatus } from "./client.js";

export type InformerEvent = "add" | "update" | "delete";

export interface Informer<T extends KubernetesObject> {
  readonly name: string;
  list(): readonly T[];
  get(name: string, namespace?: string): T | undefined;
  /** True once the first list has been applied. */
  synced(): boolean;
  stop(): Promise<void>;
}

export interface InformerOptions<T extends KubernetesObject> {
  /** For logs and status. */
  name: string;
  kubeConfig: KubeConfig;
  /** Watch path, e.g. /api/v1/pods. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  fieldSelector?: string;
  labelSelector?: string;
  /** Every add, update and delete. */
  onChange?: (object: T, event: InformerEvent) => void;
  /** After each (re)list has been applied to the cache: `first` when the informer has just synced. */
  onListed?: (first: boolean) => void;
  /**
   * A resource the API does not serve yet (a CRD not yet created: 404) lists as empty, so whoever
   * waits for the sync is not held up by it; the watch keeps retrying until it appears.
   */
  notServedAsEmpty?: boolean;
  log: Logger;
  restartDelayMs?: number;
}

const EMPTY_LIST = { apiVersion: "v1", kind: "List", items: [], metadata: { resourceVersion: "0" } };

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
        if (!(options.notServedAsEmpty && apiStatus(error) === 404)) throw error;
        options.log.debug({ informer: options.name }, "resource not served (yet); listing it as empty");
        list = EMPTY_LIST;
      }
      // ListWatch applies the list (emitting add/update/delete) after this resolves: report after that.
      setImmediate(() => {
        if (stopped) return;
        const first = !synced;
        synced = true;
        options.onListed?.(first);
      });
      return list;
    },
    false,
    options.labelSelector,
    options.fieldSelector,
  );
  for (const event of ["add", "update", "delete"] as const) {
    informer.on(event, (object: T) => options.onChange?.(object, event));
  }
  const restart = (error: unknown) => {
    if (stopped) return;
    options.log.debug({ informer: options.name, err: error }, "watch ended; restarting");
    clearTimeout(restartTimer);
    restartTimer = setTimeout(() => {
      if (!stopped) informer.start().catch(restart);
    }, options.restartDelayMs ?? 500);
  };
  informer.on("error", restart);
  informer.start().catch(restart);
  return {
    name: options.name,
    list: () => informer.list(),
    get: (name, namespace) => informer.get(name, namespace),
    synced: () => synced,
    stop: async () => {
      stopped = true;
      clearTimeout(restartTimer);
      await informer.stop();
    },
  };
}
