/**
 * Informer caches over client-node's ListWatch (the machinery behind makeInformer). ListWatch stops
 * on a watch error (connection refused, 410 Gone, …); we restart it after a pause, so a cache
 * survives API server restarts. Every change calls onChange, which the agent uses to trigger its
 * level-triggered reconcilers.
 */
import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  Watch,
} from "@kubernetes/client-node";
import type { Logger } from "../../lib/log.js";

export interface Cache<T extends KubernetesObject> {
  readonly name: string;
  list(): readonly T[];
  get(name: string, namespace?: string): T | undefined;
  /** True once the first list has been received. */
  synced(): boolean;
  stop(): Promise<void>;
}

export interface CacheOptions<T extends KubernetesObject> {
  name: string;
  kubeConfig: KubeConfig;
  /** Watch path, e.g. /api/v1/pods. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  fieldSelector?: string;
  onChange: (object: T | undefined, deleted: boolean) => void;
  log: Logger;
  restartDelayMs?: number;
}

export function startCache<T extends KubernetesObject>(options: CacheOptions<T>): Cache<T> {
  let stopped = false;
  let isSynced = false;
  let restartTimer: NodeJS.Timeout | undefined;
  const informer = new ListWatch<T>(
    options.path,
    new Watch(options.kubeConfig),
    async () => {
      const list = await options.list();
      // ListWatch diffs the new list against its cache after this resolves: report after that.
      setImmediate(() => {
        isSynced = true;
        options.onChange(undefined, false);
      });
      return list;
    },
    false,
    undefined,
    options.fieldSelector,
  );
  informer.on("add", (object) => options.onChange(object, false));
  informer.on("update", (object) => options.onChange(object, false));
  informer.on("delete", (object) => options.onChange(object, true));
  const restart = (error: unknown) => {
    if (stopped) return;
    options.log.debug({ cache: options.name, err: String(error) }, "watch ended; restarting");
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
    synced: () => isSynced,
    stop: async () => {
      stopped = true;
      clearTimeout(restartTimer);
      await informer.stop();
    },
  };
}

/** HTTP status of a client-node ApiException, or undefined. */
export function apiStatus(error: unknown): number | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "number" ? code : undefined;
}

/**
 * Runs work when triggered, never twice at once; triggers during a run coalesce into one more run.
 * A failing run is retried after retryMs (level-triggered reconciliation).
 */
export class Trigger {
  private running = false;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly name: string,
    private readonly work: () => Promise<void>,
    private readonly log: Logger,
    private readonly debounceMs = 10,
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

  /** Runs now (or right after the current run) and resolves when a run that started after this call ends. */
  async runNow(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.running) {
      this.again = true;
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      return;
    }
    await this.runOnce();
  }

  private async runOnce(): Promise<void> {
    this.running = true;
    this.again = false;
    let failed = false;
    try {
      await this.work();
    } catch (error) {
      failed = true;
      this.log.warn({ err: error, loop: this.name }, "reconcile failed; retrying");
    } finally {
      this.running = false;
    }
    if (this.again) {
      await this.runOnce();
      return;
    }
    const waiters = this.idleWaiters.splice(0);
    for (const resolve of waiters) resolve();
    if (failed) this.trigger(this.retryMs);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }
}
