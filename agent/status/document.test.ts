import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type StatusSnapshot, statusDocument } from "./document.js";

const identity = (id: number, labels: Record<string, string>) => ({
  apiVersion: "clustermesh.io/v1alpha1",
  kind: "MeshIdentity" as const,
  metadata: { name: String(id) },
  "security-labels": labels,
});

const starting: StatusSnapshot = {
  node: "n1",
  cluster: { name: "c7", id: 7 },
  encryptionMode: "wireguard",
  ready: false,
  caches: {},
  datapath: { loaded: false, links: 0, current: undefined },
  tunnel: { device: "cm_vxlan", ifindex: undefined },
  lastReconcile: undefined,
  podCidr: undefined,
  nodeIp: undefined,
  endpoints: [],
  identities: [],
  encryption: undefined,
  counters: {},
  clustermesh: undefined,
};

describe("the status document", () => {
  it("describes an agent that has built nothing yet: not synced, mode only, no remote clusters", () => {
    const status = statusDocument(starting);
    assert.equal(status.health.kubernetes.synced, false);
    assert.deepEqual(status.encryption, { mode: "wireguard" });
    assert.deepEqual(status.clustermesh, { remoteClusters: [], remoteIdentities: [] });
    assert.deepEqual(status.services, []);
  });

  it("lists only this cluster's identities (cluster id in bits 16-23), by id", () => {
    const status = statusDocument({
      ...starting,
      caches: { nodes: true, pods: true },
      identities: [
        identity((7 << 16) + 2, { "k8s:app": "b" }),
        identity((8 << 16) + 1, { "k8s:app": "remote" }),
        identity((7 << 16) + 1, { "k8s:app": "a" }),
      ],
    });
    assert.equal(status.health.kubernetes.synced, true);
    assert.deepEqual(
      status.identities.map((i) => i.id),
      [(7 << 16) + 1, (7 << 16) + 2],
    );
  });
});
