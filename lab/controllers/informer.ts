import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  Watch,
} from "@kubernetes/client-node";
import type { Logger } from "../../lib/log.js";

/**
 * A list+watch cache that keeps itself running: client-node's ListWatch stops on a watch error
 * (connection refused, 410 Gone after compaction, …), so we restart it after a short pause.
 */
export interface Cache<T extends KubernetesObject> {
  list(): readonly T[];
  get(name: string, namespace?: string): T | undefined;
  /** True once the first list has been received. */
  synced(): boolean;
  stop(): Promise<void>;
}

export interface CacheOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** Watch path, e.g. /api/v1/pods. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  fieldSelector?: string;
  labelSelector?: string;
  /** Called after every add/update/delete and after each (re)list. */
  onChange: (obj?: T, deleted?: boolean) => void;
  log: Logger;
  restartDelayMs?: number;
}

export async function startCache<T extends KubernetesObject>(options: CacheOptions<T>): Promise<Cache<T>> {
  let stopped = false;
  let isSynced = false;
  let restartTimer: NodeJS.Timeout | undefined;
  const informer = new ListWatch<T>(
    options.path,
    new Watch(options.kubeConfig),
    async () => {
      const list = await options.list();
      isSynced = true;
      // The informer compares the new list with its cache after this resolves; tell the caller then.
      setImmediate(() => options.onChange());
      return list;
    },
    false,
    options.labelSelector,
    options.fieldSelector,
  );
  informer.on("add", (obj) => options.onChange(obj, false));
  informer.on("update", (obj) => options.onChange(obj, false));
  informer.on("delete", (obj) => options.onChange(obj, true));
  const restart = (error: unknown) => {
    if (stopped) return;
    options.log.debug({ path: options.path, err: String(error) }, "watch ended; restarting");
    clearTimeout(restartTimer);
    restartTimer = setTimeout(() => {
      if (!stopped) informer.start().catch(restart);
    }, options.restartDelayMs ?? 500);
  };
  informer.on("error", restart);
  informer.start().catch(restart);
  return {
    list: () => informer.list(),
    get: (name, namespace) => informer.get(name, namespace),
    synced: () => isSynced,
    stop: async () => {
      stopped = true;
      clearTimeout(restartTimer);
      await informer.stop();
    },
  };
}

/** Kubernetes API error code of a client-node ApiException (or undefined). */
export function apiErrorCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "number" ? code : undefined;
}

/**
 * Runs `work` whenever triggered, never twice at once: triggers during a run coalesce into one more
 * run after it. A failing run is retried after retryMs (level-triggered reconciliation).
 */
export class Coalescer {
  private running = false;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly work: () => Promise<void>,
    private readonly log: Logger,
    private readonly debounceMs = 20,
    private readonly retryMs = 1_000,
  ) {}

  trigger(delayMs = this.debounceMs): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runOnce();
    }, delayMs);
  }

  private async runOnce(): Promise<void> {
    this.running = true;
    this.again = false;
    let failed = false;
    try {
      await this.work();
    } catch (error) {
      failed = true;
      this.log.warn(
        { err: error instanceof Error ? error.message : String(error) },
        "reconcile failed; will retry",
      );
    } finally {
      this.running = false;
    }
    if (this.again) this.trigger();
    else if (failed) this.trigger(this.retryMs);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }
}
