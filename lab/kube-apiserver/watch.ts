/**
 * Watch streams: one etcd watch per HTTP watch (etcd3 multiplexes them over one gRPC stream), turned
 * into Kubernetes watch events — newline-delimited `{"type","object"}` JSON over chunked HTTP.
 * Selector transitions follow kube-apiserver: an object that starts matching is ADDED, one that stops
 * matching is DELETED. A start version etcd has compacted gives an ERROR event with a 410 Expired Status.
 */
import type { ServerResponse } from "node:http";
import type { IKeyValue } from "etcd3";
import type { Logger } from "../../lib/log.js";
import { badRequest, expired } from "./errors.js";
import type { KubeObject } from "./objects.js";
import { apiVersionOf, type ResourceType } from "./registry.js";
import { matchesFilter, type ObjectFilter } from "./selectors.js";
import type { ObjectStore } from "./storage.js";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface WatchRequest {
  store: ObjectStore;
  rt: ResourceType;
  namespace?: string;
  filter: ObjectFilter;
  /** The `resourceVersion` query parameter: absent or "0" means "current state first, then changes". */
  resourceVersion?: string;
  allowBookmarks: boolean;
  timeoutSeconds: number;
  bookmarkIntervalMs: number;
  /** Turns a stored object into what clients see (apiVersion and kind of the requested version). */
  present(object: KubeObject): KubeObject;
  log: Logger;
}

async function isCompactedError(error: unknown, store: ObjectStore, revision: number): Promise<boolean> {
  if (error instanceof Error && /compacted/.test(error.message)) return true;
  return store.isCompacted(revision);
}

export function parseResourceVersion(text: string): number {
  if (!/^\d+$/.test(text)) throw badRequest(`invalid resource version "${text}"`);
  return Number(text);
}

export async function serveWatch(res: ServerResponse, request: WatchRequest): Promise<void> {
  const { store, rt, namespace, filter } = request;
  const initial: KubeObject[] = [];
  let startRevision: number;
  if (!request.resourceVersion || request.resourceVersion === "0") {
    const listed = await store.list(rt, namespace);
    initial.push(...listed.items.filter((o) => matchesFilter(filter, o)));
    startRevision = listed.revision + 1;
  } else {
    startRevision = parseResourceVersion(request.resourceVersion) + 1;
  }

  const write = (type: WatchEventType, object: unknown) => {
    if (!res.writableEnded) res.write(`${JSON.stringify({ type, object })}\n`);
  };
  const startStream = () => {
    res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-cache, private" });
    res.flushHeaders();
  };
  const tooOld = () => expired(`too old resource version: ${request.resourceVersion} (compacted)`).toStatus();

  let watcher: Awaited<ReturnType<ObjectStore["watch"]>>;
  try {
    watcher = await store.watch(rt, namespace, startRevision);
  } catch (error) {
    if (!(await isCompactedError(error, store, startRevision))) throw error;
    startStream();
    write("ERROR", tooOld());
    res.end();
    return;
  }

  startStream();
  for (const object of initial) write("ADDED", request.present(object));
  // The newest revision this stream is known to be complete up to: what a BOOKMARK may announce.
  let deliveredRevision = startRevision - 1;

  const timers: NodeJS.Timeout[] = [];
  let finished = false;
  /** Ends the stream; `etcdCancelled` when etcd already dropped the watcher (nothing to cancel). */
  const finish = (etcdCancelled = false) => {
    if (finished) return;
    finished = true;
    for (const timer of timers) clearTimeout(timer);
    if (!res.writableEnded) res.end();
    watcher.removeAllListeners("put");
    watcher.removeAllListeners("delete");
    watcher.on("error", () => {});
    if (etcdCancelled) return;
    try {
      // cancel() can throw synchronously while the etcd client reconnects its watch stream.
      // a watch whose stream already broke fails to cancel: it is gone either way
      watcher.cancel().catch(() => {});
    } catch {
      // The watcher goes away with the stream anyway: nothing is left to cancel.
    }
  };
  res.on("close", () => finish());
  timers.push(setTimeout(() => finish(), request.timeoutSeconds * 1000));
  if (request.allowBookmarks) {
    const interval = setInterval(() => {
      write("BOOKMARK", {
        kind: rt.kind,
        apiVersion: apiVersionOf(rt),
        metadata: { resourceVersion: String(deliveredRevision) },
      });
    }, request.bookmarkIntervalMs);
    timers.push(interval);
  }

  watcher.on("put", (kv: IKeyValue, previous?: IKeyValue) => {
    const current = store.decode(kv);
    const matchesNow = matchesFilter(filter, current);
    const created = kv.version === "1" || previous === undefined;
    const matchedBefore = !created && previous !== undefined && matchesFilter(filter, store.decode(previous));
    if (matchesNow && (created || !matchedBefore)) write("ADDED", request.present(current));
    else if (matchesNow) write("MODIFIED", request.present(current));
    else if (matchedBefore) write("DELETED", request.present(current));
    deliveredRevision = Math.max(deliveredRevision, Number(kv.mod_revision));
  });
  watcher.on("delete", (kv: IKeyValue, previous?: IKeyValue) => {
    if (previous && matchesFilter(filter, store.decode(previous))) {
      write("DELETED", request.present(store.decode(previous, kv.mod_revision)));
    }
    deliveredRevision = Math.max(deliveredRevision, Number(kv.mod_revision));
  });
  watcher.on("data", (response: { events: unknown[]; header: { revision: string } }) => {
    // A progress notification (no events) means the watch is complete up to the header's revision.
    if (response.events.length === 0)
      deliveredRevision = Math.max(deliveredRevision, Number(response.header.revision));
  });
  watcher.on("error", (error: Error) => {
    isCompactedError(error, store, deliveredRevision + 1)
      .then((compacted) => {
        if (compacted) write("ERROR", tooOld());
        else request.log.warn({ err: error, resource: rt.resource }, "etcd watch failed; closing the stream");
      })
      .finally(() => finish(true));
  });
}
