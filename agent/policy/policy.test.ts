// The agent's policy path without a kernel: policies, identities and endpoints fed level-triggered
// (only changes reach the resolver), deltas applied as key-level map writes, slots, flags, removal,
// adoption after a restart, invalid policies reported with their fields.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  EndpointPolicyFlags,
  PolicyDir,
  type PolicyMapEntry,
  type PolicyMapKey,
} from "../../bpf/datapath/policy-codecs.js";
import { policyMapKeyString } from "../../bpf/datapath/policy-entries.js";
import type { PolicyDropCount } from "../../bpf/datapath/policy-maps.js";
import { silentLogger } from "../../lib/log.js";
import { PolicyResolver } from "../../lib/policy/resolver.js";
import { PolicyController, type PolicyMapsIo } from "./controller.js";
import { PolicyFeed, type PolicyObject, type PolicySnapshot } from "./feed.js";
import { slotOfFlags } from "./slots.js";
import { conditionPatch } from "./status-writer.js";

class FakeMaps implements PolicyMapsIo {
  readonly entriesByKey = new Map<string, [PolicyMapKey, PolicyMapEntry]>();
  writes = 0;
  /** slots whose revision was bumped, in order */
  bumped: number[] = [];
  drops: PolicyDropCount[] = [];
  write(
    upserts: ReadonlyArray<readonly [PolicyMapKey, PolicyMapEntry]>,
    deletes: readonly PolicyMapKey[],
  ): void {
    for (const [key, value] of upserts) this.entriesByKey.set(policyMapKeyString(key), [key, value]);
    for (const key of deletes)
      assert.ok(this.entriesByKey.delete(policyMapKeyString(key)), "delete of an absent key");
    this.writes += upserts.length + deletes.length;
  }
  entries(): Array<[PolicyMapKey, PolicyMapEntry]> {
    return [...this.entriesByKey.values()];
  }
  readDrops(): PolicyDropCount[] {
    return this.drops;
  }
  clearDrops(): void {}
  bumpRevisions(slots: Iterable<number>): Map<number, number> {
    this.bumped.push(...slots);
    return new Map();
  }
}

const webPolicy = (version: string, port: unknown = 80): PolicyObject => ({
  kind: "NetworkPolicy",
  namespace: "demo",
  name: "web",
  version,
  object: {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "web", namespace: "demo" },
    spec: {
      podSelector: { matchLabels: { app: "web" } },
      ingress: [
        {
          from: [{ podSelector: { matchLabels: { app: "client" } } }],
          ports: [{ protocol: "TCP", port }],
        },
      ],
    },
  },
});
const clientIdentity = (id: number, cluster: string) => ({
  id,
  cluster,
  labels: ["k8s:app=client", "k8s:io.kubernetes.pod.namespace=demo"],
});
const web = { id: "lxcweb", identity: 0x01_0100, labels: ["k8s:app=web"], namespace: "demo" };

function setup() {
  const maps = new FakeMaps();
  let flagChanges = 0;
  const controller = new PolicyController({
    maps,
    onFlagsChanged: () => flagChanges++,
    log: silentLogger(),
  });
  const feed = new PolicyFeed(new PolicyResolver({ clusterName: "c1" }), "c1");
  const sync = (snapshot: PolicySnapshot) => {
    const result = feed.sync(snapshot);
    controller.apply(result.deltas);
    controller.retain(new Set(snapshot.endpoints.map((endpoint) => endpoint.id)));
    return result;
  };
  return { maps, controller, sync, flagChanges: () => flagChanges };
}

describe("agent policy: feed, controller", () => {
  it("enforces a NetworkPolicy on the selected endpoint; the local-cluster default keeps cluster 2 out", () => {
    const { maps, controller, sync, flagChanges } = setup();
    const identities = [clientIdentity(0x01_0200, "c1"), clientIdentity(0x02_0200, "c2")];
    sync({ policies: [webPolicy("1")], identities, endpoints: [web] });
    const flags = controller.flagsOf(web.id);
    assert.ok(flags & EndpointPolicyFlags.ingressEnforced);
    assert.ok(!(flags & EndpointPolicyFlags.egressEnforced));
    assert.equal(flagChanges(), 1);
    const peers = maps.entries().map(([key]) => key.identity);
    assert.ok(peers.includes(0x01_0200), "c1's client admitted");
    assert.ok(!peers.includes(0x02_0200), "a selector without a cluster label does not admit cluster 2");
    const slot = slotOfFlags(flags);
    assert.deepEqual(maps.bumped, [slot], "newly enforced: connections judged again");
    controller.flagsWritten(new Map([[web.id, 0]]));
    assert.deepEqual(maps.bumped, [slot], "not before the datapath has the new flags");
    controller.flagsWritten(new Map([[web.id, flags]]));
    assert.deepEqual(maps.bumped, [slot, slot], "and again once it has them");
    controller.flagsWritten(new Map([[web.id, flags]]));
    assert.equal(maps.bumped.length, 2, "once");
  });

  it("a write that fails leaves the endpoint not programmed (its ADD must fail) until a retry works", () => {
    const { maps, controller, sync } = setup();
    const snapshot = {
      policies: [webPolicy("1")],
      identities: [clientIdentity(0x01_0200, "c1")],
      endpoints: [web],
    };
    const write = maps.write.bind(maps);
    maps.write = () => {
      throw new Error("map full");
    };
    sync(snapshot);
    assert.equal(controller.programmed(web.id), false);
    assert.equal(controller.flagsOf(web.id), 0);
    maps.write = write;
    // the next run states the endpoint again
    controller.apply([
      { endpoint: web.id, enforced: { ingress: true, egress: false }, upserts: [], deletes: [] },
    ]);
    assert.equal(controller.programmed(web.id), true);
    assert.ok(controller.flagsOf(web.id) & EndpointPolicyFlags.ingressEnforced);
    assert.ok(maps.entries().length > 0, "the entries the failed write lacked are written");
    controller.retain(new Set());
    assert.equal(controller.programmed(web.id), true, "a gone endpoint is forgotten");
  });

  it("feeds only changes: an unchanged sync writes nothing; 10k unmatched remote identities write nothing", () => {
    const { maps, sync } = setup();
    const base = {
      policies: [webPolicy("1")],
      identities: [clientIdentity(0x01_0200, "c1")],
      endpoints: [web],
    };
    sync(base);
    const writes = maps.writes;
    sync(base);
    const remote = Array.from({ length: 10_000 }, (_, index) => ({
      id: 0x02_0000 + 256 + index,
      cluster: "c2",
      labels: ["k8s:app=other"],
    }));
    sync({ ...base, identities: [...base.identities, ...remote] });
    assert.equal(maps.writes, writes);
  });

  it("a remote cluster disconnected: its identities stop matching", () => {
    const { maps, sync } = setup();
    // allow from cluster c2's clients explicitly (cluster label in the selector)
    const policy = webPolicy("1");
    const spec = (policy.object as { spec: { ingress: Array<{ from: unknown[] }> } }).spec;
    spec.ingress[0].from = [
      { podSelector: { matchLabels: { app: "client", "io.cilium.k8s.policy.cluster": "c2" } } },
    ];
    const remote = clientIdentity(0x02_0200, "c2");
    sync({ policies: [policy], identities: [remote], endpoints: [web] });
    assert.ok(maps.entries().some(([key]) => key.identity === remote.id));
    sync({ policies: [policy], identities: [], endpoints: [web] });
    assert.ok(!maps.entries().some(([key]) => key.identity === remote.id));
  });

  it("an egress named port resolves against the cluster's pods' container ports, and follows them", () => {
    const { maps, sync } = setup();
    const client = { id: "lxcclient", identity: 0x01_0200, labels: ["k8s:app=client"], namespace: "demo" };
    const webIdentity = {
      id: web.identity,
      cluster: "c1",
      labels: ["k8s:app=web", "k8s:io.kubernetes.pod.namespace=demo"],
    };
    const egress: PolicyObject = {
      kind: "NetworkPolicy",
      namespace: "demo",
      name: "to-web",
      version: "1",
      object: {
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: "to-web", namespace: "demo" },
        spec: {
          podSelector: { matchLabels: { app: "client" } },
          policyTypes: ["Egress"],
          egress: [{ to: [{ podSelector: { matchLabels: { app: "web" } } }], ports: [{ port: "http" }] }],
        },
      },
    };
    const egressPorts = () =>
      maps
        .entries()
        .filter(([key]) => key.direction === PolicyDir.egress)
        .map(([key]) => `${key.identity}/${key.proto}/${key.port}`)
        .sort();
    const snapshot = (namedPorts: Array<{ name: string; port: number; protocol: string }>) => ({
      policies: [egress],
      identities: [webIdentity],
      endpoints: [client],
      namedPorts,
    });
    let result = sync(snapshot([{ name: "http", port: 8080, protocol: "TCP" }]));
    assert.deepEqual(egressPorts(), [`${web.identity}/6/8080`]);
    assert.equal(result.conditions[0].condition.reason, "Valid");

    result = sync(
      snapshot([
        { name: "http", port: 8081, protocol: "" },
        { name: "dns", port: 53, protocol: "UDP" },
      ]),
    );
    assert.deepEqual(egressPorts(), [`${web.identity}/6/8081`], "the pods' port changed: so does the entry");
    result = sync(snapshot([{ name: "http", port: 8081, protocol: "UDP" }]));
    assert.deepEqual(egressPorts(), [], "no pod has it over TCP: it matches nothing");
    assert.equal(result.conditions[0].condition.reason, "ValidWithWarnings");
    assert.match(result.conditions[0].condition.message, /named port "http" in an egress rule/);
  });

  it("an invalid policy is reported with its field and does not replace the valid version", () => {
    const { maps, sync } = setup();
    const identities = [clientIdentity(0x01_0200, "c1")];
    sync({ policies: [webPolicy("1")], identities, endpoints: [web] });
    const before = maps.entries().length;
    const result = sync({
      policies: [webPolicy("2", "eighty-thousand-and-one")],
      identities,
      endpoints: [web],
    });
    assert.equal(result.invalid.length, 1);
    assert.match(
      result.invalid[0].errors.map((error) => error.path).join(),
      /spec\.ingress\[0\]\.ports\[0\]\.port/,
    );
    assert.equal(maps.entries().length, before, "the earlier version stays in force");
  });

  it("a gone endpoint's entries and slot are released; a restart adopts slots and rewrites nothing", () => {
    const first = setup();
    const snapshot = {
      policies: [webPolicy("1")],
      identities: [clientIdentity(0x01_0200, "c1")],
      endpoints: [web],
    };
    first.sync(snapshot);
    const flags = first.controller.flagsOf(web.id);

    // the next agent: same maps, the endpoint's flags as cm_endpoints holds them
    const restarted = new PolicyController({
      maps: first.maps,
      onFlagsChanged: () => undefined,
      log: silentLogger(),
    });
    restarted.adopt([{ id: web.id, flags }]);
    const feed = new PolicyFeed(new PolicyResolver({ clusterName: "c1" }), "c1");
    const writes = first.maps.writes;
    const keys = first.maps.entries().length;
    restarted.apply(feed.sync(snapshot).deltas);
    assert.equal(restarted.flagsOf(web.id), flags);
    assert.equal(slotOfFlags(restarted.flagsOf(web.id)), slotOfFlags(flags));
    // rule numbers are the new run's: values may be rewritten in place, never keys added or deleted
    assert.equal(first.maps.entries().length, keys);
    assert.ok(first.maps.writes - writes <= keys);

    restarted.retain(new Set());
    assert.equal(first.maps.entries().length, 0);
    assert.equal(restarted.flagsOf(web.id), 0);
    assert.equal(
      first.maps.bumped.at(-1),
      slotOfFlags(flags),
      "the released slot's connections judged again",
    );
  });

  it("a narrowing bumps the endpoint slot's revision after its writes; a widening does not", () => {
    const { maps, controller, sync } = setup();
    const identities = [clientIdentity(0x01_0200, "c1"), clientIdentity(0x01_0300, "c1")];
    sync({ policies: [webPolicy("1")], identities, endpoints: [web] });
    const slot = slotOfFlags(controller.flagsOf(web.id));
    maps.bumped.length = 0;
    let writesAtBump = -1;
    const bump = maps.bumpRevisions.bind(maps);
    maps.bumpRevisions = (slots) => {
      writesAtBump = maps.writes;
      return bump(slots);
    };
    const writes = maps.writes;
    sync({
      policies: [webPolicy("1")],
      identities: [...identities, clientIdentity(0x01_0400, "c1")],
      endpoints: [web],
    });
    assert.deepEqual(maps.bumped, [], "a peer more: nothing to judge again");
    sync({ policies: [webPolicy("1")], identities: identities.slice(0, 1), endpoints: [web] });
    assert.deepEqual(maps.bumped, [slot], "peers fewer: judged again");
    assert.ok(writesAtBump > writes + 1, "after the deletes were written");
    sync({ policies: [webPolicy("2", 8080)], identities: identities.slice(0, 1), endpoints: [web] });
    assert.deepEqual(maps.bumped, [slot, slot], "another port: judged again");
  });
});

describe("policy status condition", () => {
  const invalid = {
    type: "Valid",
    status: "False",
    reason: "InvalidPolicy",
    message: "not enforced: spec.x: bad",
  } as const;
  const now = new Date("2026-12-06T02:00:00Z");

  it("writes the condition an object lacks, with its generation, and nothing once it is there", () => {
    const patch = conditionPatch({ metadata: { generation: 3 } }, invalid, now);
    assert.deepEqual(patch, {
      status: { conditions: [{ ...invalid, lastTransitionTime: now.toISOString(), observedGeneration: 3 }] },
    });
    assert.equal(conditionPatch({ metadata: { generation: 3 }, ...patch }, invalid, now), undefined);
  });

  it("keeps the transition time while the status stays, and other conditions", () => {
    const earlier = "2026-12-05T00:00:00.000Z";
    const object = {
      metadata: { generation: 4 },
      status: {
        conditions: [
          { type: "Other", status: "True" },
          { ...invalid, message: "old", lastTransitionTime: earlier, observedGeneration: 3 },
        ],
      },
    };
    const patch = conditionPatch(object, invalid, now);
    assert.deepEqual(
      patch?.status.conditions.map((c) => [c.type, c.lastTransitionTime]),
      [
        ["Other", undefined],
        ["Valid", earlier],
      ],
    );
  });
});
