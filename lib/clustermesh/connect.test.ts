import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createCa } from "../../certs/authority.js";
import { type ClusterAccess, connectProblems } from "./access.js";
import { connectionPairs, groupBySource, remoteConfigChanges } from "./connect.js";

const ca = createCa().certPem;
const access = (
  context: string,
  clusterName: string,
  clusterId: number,
  extra: Partial<ClusterAccess> = {},
): ClusterAccess => ({
  context,
  clusterName,
  clusterId,
  maxConnectedClusters: 255,
  encryption: "none",
  endpoints: ["https://172.30.0.2:32379"],
  caPem: ca,
  serviceType: "NodePort",
  kvstoremesh: false,
  ...extra,
});

describe("connect", () => {
  it("pairs clusters per connection mode", () => {
    assert.deepEqual(connectionPairs("a", ["b"], "bidirectional"), [
      ["a", "b"],
      ["b", "a"],
    ]);
    assert.deepEqual(connectionPairs("a", ["b", "c"], "unicast"), [
      ["a", "b"],
      ["a", "c"],
    ]);
    assert.equal(connectionPairs("a", ["b", "c"], "mesh").length, 6);
  });

  it("writes each cluster once in a full mesh of ten: 10 sources with the 9 others each", () => {
    const names = Array.from({ length: 10 }, (_, i) => `c${i + 1}`);
    const grouped = groupBySource(connectionPairs(names[0], names.slice(1), "mesh"));
    assert.equal(grouped.size, 10);
    for (const name of names) {
      assert.deepEqual(
        grouped.get(name),
        names.filter((other) => other !== name),
      );
    }
    assert.deepEqual(
      [...groupBySource(connectionPairs("a", ["b", "c"], "bidirectional"))],
      [
        ["a", ["b", "c"]],
        ["b", ["a"]],
        ["c", ["a"]],
      ],
    );
  });

  it("accepts distinct names and ids with a shared CA", () => {
    assert.deepEqual(connectProblems([access("x", "c1", 1), access("y", "c2", 2)], false), []);
  });

  it("refuses clashing names or ids, mismatched CAs, and differing settings, naming the clusters", () => {
    const problems = (list: ClusterAccess[], allow = false) => connectProblems(list, allow).join("\n");
    assert.match(
      problems([access("x", "c1", 1), access("y", "c1", 2)]),
      /contexts x and y are both named "c1"/,
    );
    assert.match(
      problems([access("x", "c1", 1), access("y", "c2", 1)]),
      /c1 \(x\) and c2 \(y\) both have cluster id 1/,
    );
    const other = createCa().certPem;
    assert.match(
      problems([access("x", "c1", 1), access("y", "c2", 2, { caPem: other })]),
      /different CAs.*--allow-mismatching-ca/,
    );
    assert.equal(problems([access("x", "c1", 1), access("y", "c2", 2, { caPem: other })], true), "");
    assert.match(
      problems([access("x", "c1", 1), access("y", "c2", 2, { encryption: "wireguard" })]),
      /encryption differs/,
    );
    assert.match(
      problems([access("x", "c1", 1), access("y", "c2", 2, { maxConnectedClusters: 511 })]),
      /max-connected-clusters differs/,
    );
    assert.match(problems([access("x", "default", 1), access("y", "c2", 2)]), /"default" cannot join/);
  });

  it("records the remote for the agents directly, or with KVStoreMesh for the apiserver and the local etcd for the agents", () => {
    const c2 = access("y", "c2", 2, { endpoints: ["https://172.30.0.9:32379"] });
    const direct = remoteConfigChanges(access("x", "c1", 1), c2);
    assert.match(direct.agents.c2 ?? "", /172\.30\.0\.9:32379[\s\S]*common-etcd-client-ca\.crt/);
    assert.deepEqual(direct.kvstoremesh, { c2: undefined, "c2.etcd-client-ca.crt": undefined });

    const cached = remoteConfigChanges(access("x", "c1", 1, { kvstoremesh: true }), c2);
    assert.equal(cached.kvstoremesh.c2, direct.agents.c2);
    // the agents of c1 read c2 from c1's own etcd, as local-c1
    assert.match(cached.agents.c2 ?? "", /172\.30\.0\.2:32379[\s\S]*local-etcd-client-ca\.crt/);
    assert.match(cached.agents.c2 ?? "", /local-etcd-client\.crt[\s\S]*local-etcd-client\.key/);
    assert.equal(cached.agents["c2.etcd-client-ca.crt"], undefined);

    const otherCa = remoteConfigChanges(access("x", "c1", 1, { kvstoremesh: true }), {
      ...c2,
      caPem: createCa().certPem,
    });
    assert.match(otherCa.kvstoremesh.c2 ?? "", /c2\.etcd-client-ca\.crt/);
    assert.match(otherCa.kvstoremesh["c2.etcd-client-ca.crt"] ?? "", /BEGIN CERTIFICATE/);
  });
});
