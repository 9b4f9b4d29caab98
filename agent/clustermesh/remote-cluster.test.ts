// Unit tests of RemoteCluster parts that need no etcd (the session loop is in remote-cluster.root.test.ts).
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import type { Etcd3 } from "etcd3";
import { DEFAULT_LIFECYCLE } from "../../lib/clustermesh/lifecycle.js";
import type { WatchStore } from "../../lib/kvstore/watch-store.js";
import { createLogger, silentLogger } from "../../lib/log.js";
import { RemoteCluster } from "./remote-cluster.js";

function capturingLogger(): { log: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: createLogger({ name: "test", level: "debug", pretty: false, destination }), lines };
}

describe("RemoteCluster", () => {
  it("a watch that fails on a remote without canaries is logged with its error, then retried", async () => {
    const { log, lines } = capturingLogger();
    const remote = new RemoteCluster(
      "c2",
      { name: "c2", endpoints: [], tls: {} as never, serverName: "c2.mesh.cilium.io", fingerprint: "f" },
      {
        local: { name: "c1", id: 1, maxConnectedClusters: 255 },
        settings: DEFAULT_LIFECYCLE,
        log,
        reserveId: () => undefined,
        releaseId: () => {},
        onChange: () => {},
        persist: () => {},
        forget: () => {},
      },
    );
    const stop = new AbortController();
    let runs = 0;
    const store = {
      prefix: "cilium/state/nodes/v1/c2/",
      run: async () => {
        runs++;
        if (runs === 1) throw new Error("watch stream reset", { cause: new Error("ECONNRESET") });
        stop.abort();
      },
    } as unknown as WatchStore<unknown>;
    const watchImmediately = (
      remote as unknown as {
        watchImmediately(store: WatchStore<unknown>, client: Etcd3, signal: AbortSignal): Promise<void>;
      }
    ).watchImmediately.bind(remote);
    await watchImmediately(store, {} as Etcd3, stop.signal);

    assert.equal(runs, 2, "retried after the failure");
    const logged = lines.find((line) => line.msg === "watch broke; relisting after a backoff");
    assert.ok(logged, `the failure is logged; got ${JSON.stringify(lines)}`);
    assert.equal(logged.level, 40, "at warn level");
    assert.equal(logged.cluster, "c2");
    assert.equal(logged.prefix, "cilium/state/nodes/v1/c2/");
    const err = logged.err as { message: string; stack: string };
    assert.match(err.message, /watch stream reset/);
    assert.match(err.stack, /caused by: Error: ECONNRESET/, "with its cause");
  });

  it("serves ipcache entries and services only once the nodes they are judged against are listed", () => {
    const remote = new RemoteCluster(
      "c2",
      { name: "c2", endpoints: [], tls: {} as never, serverName: "c2.mesh.cilium.io", fingerprint: "f" },
      {
        local: { name: "c1", id: 1, maxConnectedClusters: 255 },
        settings: DEFAULT_LIFECYCLE,
        log: silentLogger(),
        reserveId: () => undefined,
        releaseId: () => {},
        onChange: () => {},
        persist: () => {},
        forget: () => {},
      },
    );
    const store = (lists: number, entries: [string, unknown][]) => ({
      lists,
      values: () => entries.map(([, value]) => value),
    });
    const node = { Name: "w", Cluster: "c2" };
    const stores = {
      nodes: store(0, [["c2/w", node]]),
      services: store(1, [["demo/echo", { name: "echo" }]]),
      ipcache: store(1, [["10.2.0.7", { IP: "10.2.0.7" }]]),
      identities: store(1, []),
    };
    // the session has the remote's cluster id; its ipcache and services were listed before its nodes
    Object.assign(remote, { clusterId: 2, stores });
    const early = remote.view();
    assert.deepEqual(
      [early?.nodes.length, early?.services.length, early?.ipcache.length],
      [0, 0, 0],
      "nothing to judge against yet: nothing served (else refused as foreign-address)",
    );
    stores.nodes.lists = 1;
    const listed = remote.view();
    assert.deepEqual([listed?.nodes.length, listed?.services.length, listed?.ipcache.length], [1, 1, 1]);
  });
});
