import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Backend, ServiceKey, ServiceValue } from "./codecs.js";
import { Proto, ServiceFlags } from "./codecs.js";
import {
  type CurrentDatapathState,
  type DatapathOp,
  type DesiredDatapathState,
  type DesiredService,
  reconcileDatapath,
} from "./reconcile.js";

const EMPTY_CURRENT: CurrentDatapathState = {
  services: [],
  backends: new Map(),
  revNat: new Map(),
  endpoints: [],
  ipcache: [],
};
const NOTHING: DesiredDatapathState = { services: [], endpoints: [], remoteNodes: [], ipcache: [] };

function svc(backends: string[], port = 80): DesiredService {
  return {
    frontend: { address: "10.96.0.10", port, proto: Proto.TCP },
    backends: backends.map((address) => ({ address, port: 8080 })),
  };
}

/** An in-memory model of the maps, so tests can apply ops and check invariants after every single op. */
class FakeMaps {
  services = new Map<string, [ServiceKey, ServiceValue]>();
  backends = new Map<number, Backend>();
  revNat = new Map<number, { address: string; port: number }>();
  endpoints = new Map<string, [{ address: string }, import("./codecs.js").EndpointInfo]>();
  ipcache = new Map<string, [import("./codecs.js").IpcacheKey, import("./codecs.js").IpcacheValue]>();

  static key(key: ServiceKey): string {
    return `${key.address}|${key.port}|${key.proto}|${key.backendSlot}`;
  }

  apply(op: DatapathOp): void {
    switch (op.map) {
      case "services":
        if (op.op === "set") this.services.set(FakeMaps.key(op.key), [op.key, op.value]);
        else assert.ok(this.services.delete(FakeMaps.key(op.key)), "deleting an existing slot");
        break;
      case "backends":
        if (op.op === "set") this.backends.set(op.key, op.value);
        else assert.ok(this.backends.delete(op.key));
        break;
      case "revNat":
        if (op.op === "set") this.revNat.set(op.key, op.value);
        else assert.ok(this.revNat.delete(op.key));
        break;
      case "endpoints":
        if (op.op === "set") this.endpoints.set(op.key.address, [op.key, op.value]);
        else this.endpoints.delete(op.key.address);
        break;
      case "ipcache":
        if (op.op === "set") this.ipcache.set(op.key.prefix, [op.key, op.value]);
        else this.ipcache.delete(op.key.prefix);
        break;
    }
  }

  current(): CurrentDatapathState {
    return {
      services: [...this.services.values()],
      backends: new Map(this.backends),
      revNat: new Map(this.revNat),
      endpoints: [...this.endpoints.values()],
      ipcache: [...this.ipcache.values()],
    };
  }

  /** What the datapath would see for a frontend: every selectable backend address, or undefined. */
  selectable(port = 80): string[] | undefined {
    const frontend = this.services.get(`10.96.0.10|${port}|6|0`);
    if (!frontend) return undefined;
    const result: string[] = [];
    for (let slot = 1; slot <= frontend[1].count; slot++) {
      const entry = this.services.get(`10.96.0.10|${port}|6|${slot}`);
      assert.ok(entry, `slot ${slot} of ${frontend[1].count} exists`);
      const backend = this.backends.get(entry[1].backendId);
      assert.ok(backend, `slot ${slot} points at an existing backend`);
      result.push(backend.address);
    }
    assert.ok(this.revNat.has(frontend[1].revNatIndex), "rev-NAT entry exists while the frontend does");
    return result.sort();
  }

  /** Applies a plan op by op, checking after each op that a live service never has zero backends. */
  converge(desired: DesiredDatapathState, port = 80): DatapathOp[] {
    const ops = reconcileDatapath(desired, this.current());
    const wasLive = (this.selectable(port)?.length ?? 0) > 0;
    const willBeLive = desired.services.some((s) => s.frontend.port === port && s.backends.length > 0);
    for (const op of ops) {
      this.apply(op);
      const now = this.selectable(port);
      if (wasLive && willBeLive)
        assert.ok(now && now.length > 0, `service stayed live after ${JSON.stringify(op)}`);
    }
    return ops;
  }
}

describe("reconcileDatapath", () => {
  it("creates backends, rev-NAT, slots and then the frontend, in that order", () => {
    const ops = reconcileDatapath({ ...NOTHING, services: [svc(["10.0.0.1", "10.0.0.2"])] }, EMPTY_CURRENT);
    assert.deepEqual(
      ops.map((op) => `${op.op} ${op.map}${op.map === "services" ? ` slot ${op.key.backendSlot}` : ""}`),
      [
        "set backends",
        "set backends",
        "set revNat",
        "set services slot 1",
        "set services slot 2",
        "set services slot 0",
      ],
    );
  });

  it("writes ClientIP affinity (flag + timeout) into the frontend entry only, and rewrites it when it changes", () => {
    const maps = new FakeMaps();
    const sticky = { ...svc(["10.0.0.1", "10.0.0.2"]), affinityTimeoutSeconds: 30 };
    maps.converge({ ...NOTHING, services: [sticky] });
    const frontend = () => maps.services.get("10.96.0.10|80|6|0")?.[1];
    assert.deepEqual([frontend()?.flags, frontend()?.backendId], [ServiceFlags.Affinity, 30]);
    const slot = maps.services.get("10.96.0.10|80|6|1")?.[1];
    assert.equal(slot?.flags ?? 0, 0, "backend slots carry no affinity");
    assert.deepEqual(reconcileDatapath({ ...NOTHING, services: [sticky] }, maps.current()), []);
    const ops = maps.converge({ ...NOTHING, services: [svc(["10.0.0.1", "10.0.0.2"])] });
    assert.deepEqual(
      ops.map((op) => `${op.op} ${op.map}${op.map === "services" ? ` slot ${op.key.backendSlot}` : ""}`),
      ["set services slot 0"],
    );
    assert.deepEqual([frontend()?.flags, frontend()?.backendId], [0, 0]);
  });

  it("is idempotent: converged maps produce no ops", () => {
    const maps = new FakeMaps();
    const desired: DesiredDatapathState = {
      services: [svc(["10.0.0.1", "10.0.0.2"]), svc(["10.0.0.1"], 443)],
      endpoints: [
        {
          address: "10.1.0.5",
          ifindex: 4,
          identity: 1000,
          mac: "02:00:00:00:00:05",
          nodeMac: "02:00:00:00:01:05",
        },
      ],
      remoteNodes: [{ nodeIp: "172.20.0.2", podCidrs: ["10.2.0.0/24"], nodeIdentity: 6, podCidrIdentity: 2 }],
      ipcache: [{ prefix: "10.2.0.7/32", identity: 70000, tunnelEndpoint: "172.20.0.2" }],
    };
    maps.converge(desired);
    assert.deepEqual(reconcileDatapath(desired, maps.current()), []);
    assert.equal(maps.backends.size, 2, "a backend shared by two services is stored once");
  });

  it("never leaves a live service without backends while replacing its whole backend set", () => {
    const maps = new FakeMaps();
    maps.converge({ ...NOTHING, services: [svc(["10.0.0.1", "10.0.0.2", "10.0.0.3"])] });
    maps.converge({ ...NOTHING, services: [svc(["10.0.1.1"])] });
    assert.deepEqual(maps.selectable(), ["10.0.1.1"]);
    maps.converge({ ...NOTHING, services: [svc(["10.0.2.1", "10.0.2.2", "10.0.2.3", "10.0.2.4"])] });
    assert.deepEqual(maps.selectable(), ["10.0.2.1", "10.0.2.2", "10.0.2.3", "10.0.2.4"]);
    assert.equal(maps.backends.size, 4, "unreferenced backends were deleted");
  });

  it("grows before publishing the new count, shrinks after", () => {
    const maps = new FakeMaps();
    maps.converge({ ...NOTHING, services: [svc(["10.0.0.1"])] });
    const grow = maps.converge({ ...NOTHING, services: [svc(["10.0.0.1", "10.0.0.2", "10.0.0.3"])] });
    const frontendAt = grow.findIndex((op) => op.map === "services" && op.key.backendSlot === 0);
    const lastSlotAt = grow.findLastIndex((op) => op.map === "services" && op.key.backendSlot > 0);
    assert.ok(lastSlotAt < frontendAt);
    const shrink = maps.converge({ ...NOTHING, services: [svc(["10.0.0.3"])] });
    const shrinkFrontend = shrink.findIndex((op) => op.map === "services" && op.key.backendSlot === 0);
    const firstSlotDelete = shrink.findIndex((op) => op.map === "services" && op.op === "delete");
    assert.ok(shrinkFrontend < firstSlotDelete);
    assert.deepEqual(maps.selectable(), ["10.0.0.3"]);
  });

  it("keeps surviving backends in their slots and ids (minimal writes)", () => {
    const maps = new FakeMaps();
    maps.converge({ ...NOTHING, services: [svc(["10.0.0.1", "10.0.0.2", "10.0.0.3"])] });
    const ids = new Map([...maps.backends].map(([id, b]) => [b.address, id]));
    const ops = maps.converge({ ...NOTHING, services: [svc(["10.0.0.1", "10.0.0.3", "10.0.0.4"])] });
    // only 10.0.0.2's slot changes (to the new backend), plus the new backend and the old one's removal
    assert.deepEqual(
      ops.map((op) => `${op.op} ${op.map}`),
      ["set backends", "set services", "delete backends"],
    );
    assert.equal(ids.get("10.0.0.1"), [...maps.backends].find(([, b]) => b.address === "10.0.0.1")?.[0]);
  });

  it("keeps terminating backends for existing flows but gives them no slot", () => {
    const maps = new FakeMaps();
    maps.converge({ ...NOTHING, services: [svc(["10.0.0.1", "10.0.0.2"])] });
    maps.converge({
      ...NOTHING,
      services: [
        {
          ...svc(["10.0.0.1"]),
          backends: [
            { address: "10.0.0.1", port: 8080 },
            { address: "10.0.0.2", port: 8080, terminating: true },
          ],
        },
      ],
    });
    assert.deepEqual(maps.selectable(), ["10.0.0.1"]);
    assert.ok([...maps.backends.values()].some((b) => b.address === "10.0.0.2" && b.state === 1));
  });

  it("removes a service: frontend first, then slots, rev-NAT, and backends last", () => {
    const maps = new FakeMaps();
    maps.converge({ ...NOTHING, services: [svc(["10.0.0.1", "10.0.0.2"])] });
    const ops = reconcileDatapath(NOTHING, maps.current());
    assert.deepEqual(
      ops.map((op) => `${op.op} ${op.map}${op.map === "services" ? ` slot ${op.key.backendSlot}` : ""}`),
      [
        "delete services slot 0",
        "delete services slot 1",
        "delete services slot 2",
        "delete revNat",
        "delete backends",
        "delete backends",
      ],
    );
    for (const op of ops) maps.apply(op);
    assert.equal(maps.services.size + maps.backends.size + maps.revNat.size, 0);
  });

  it("a service with no backends gets a frontend with count 0 (dropped and counted by the datapath)", () => {
    const ops = reconcileDatapath({ ...NOTHING, services: [svc([])] }, EMPTY_CURRENT);
    const frontend = ops.find((op) => op.map === "services");
    assert.ok(frontend && frontend.op === "set");
    assert.equal(frontend.value.count, 0);
  });

  it("expands remote nodes into ipcache entries; individual entries win", () => {
    const ops = reconcileDatapath(
      {
        ...NOTHING,
        remoteNodes: [
          {
            nodeIp: "172.20.0.2",
            podCidrs: ["10.2.0.0/24"],
            nodeIdentity: 6,
            podCidrIdentity: 2,
            remoteCluster: true,
          },
        ],
        ipcache: [{ prefix: "10.2.0.0/24", identity: 9, tunnelEndpoint: "172.20.0.3" }],
      },
      EMPTY_CURRENT,
    );
    assert.deepEqual(
      ops.map((op) => (op.op === "set" && op.map === "ipcache" ? [op.key.prefix, op.value] : undefined)),
      [
        ["172.20.0.2/32", { identity: 6, remoteCluster: true }],
        ["10.2.0.0/24", { identity: 9, tunnelEndpoint: "172.20.0.3" }],
      ],
    );
  });

  it("updates changed endpoints and removes stale ones, writes before deletes", () => {
    const maps = new FakeMaps();
    const ep = (address: string, ifindex: number) => ({
      address,
      ifindex,
      identity: 1,
      mac: "02:00:00:00:00:01",
      nodeMac: "02:00:00:00:00:02",
    });
    maps.converge({ ...NOTHING, endpoints: [ep("10.1.0.1", 3), ep("10.1.0.2", 4)] });
    const ops = maps.converge({ ...NOTHING, endpoints: [ep("10.1.0.1", 5), ep("10.1.0.3", 6)] });
    assert.deepEqual(
      ops.map((op) => `${op.op} ${op.key && (op.key as { address: string }).address}`),
      ["set 10.1.0.1", "set 10.1.0.3", "delete 10.1.0.2"],
    );
  });

  it("rejects duplicate frontends", () => {
    assert.throws(() =>
      reconcileDatapath({ ...NOTHING, services: [svc(["10.0.0.1"]), svc(["10.0.0.2"])] }, EMPTY_CURRENT),
    );
  });
});
