import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1EndpointSlice, V1Service } from "@kubernetes/client-node";
import type { MeshEndpoint, MeshIdentity, MeshNode } from "../../lib/api/crds.js";
import { isGlobalService, isSharedService } from "../../lib/api/service-annotations.js";
import { encodeIpIdentityPair } from "../../lib/kvstore/values/ipcache.js";
import { encodeNode } from "../../lib/kvstore/values/node.js";
import { encodeService } from "../../lib/kvstore/values/service.js";
import { IpOwnership, ipEntriesFor } from "./endpoint.js";
import { identityValueFor } from "./identity.js";
import { nodeValueFor } from "./node.js";
import { clusterServiceFor } from "./service.js";

const cluster3 = { name: "cluster3", id: 3 };

const service = (annotations: Record<string, string>): V1Service => ({
  metadata: { name: "echo-service", namespace: "ns-alpha", annotations },
  spec: {
    clusterIP: "10.96.0.10",
    clusterIPs: ["10.96.0.10"],
    selector: { app: "echo" },
    ports: [{ name: "http", port: 80, protocol: "TCP" }],
  },
});
const slice: V1EndpointSlice = {
  metadata: {
    name: "echo-service-abc",
    namespace: "ns-alpha",
    labels: { "kubernetes.io/service-name": "echo-service" },
  },
  addressType: "IPv4",
  ports: [{ name: "http", port: 8080, protocol: "TCP" }],
  endpoints: [
    { addresses: ["10.244.1.10"], conditions: { ready: true } },
    { addresses: ["10.244.1.11"], conditions: { ready: false, serving: false } },
  ],
};

describe("service conversion", () => {
  // globalnamespace-services.txtar, in Cilium v1.18.4's shape: ClusterService.Hostnames has no
  // omitempty there, so an empty "hostnames":{} is written (newer releases drop it).
  it("produces Cilium's golden value for a global service (globalnamespace-services.txtar)", () => {
    const value = clusterServiceFor(
      cluster3,
      service({ "service.cilium.io/global": "true" }),
      [slice],
      undefined,
    );
    assert.ok(value);
    assert.equal(
      encodeService(value),
      '{"cluster":"cluster3","namespace":"ns-alpha","name":"echo-service","frontends":{"10.96.0.10":{"http":{"Protocol":"TCP","Port":80}}},"backends":{"10.244.1.10":{"http":{"Protocol":"TCP","Port":8080}}},"hostnames":{},"labels":{},"selector":{"app":"echo"},"includeExternal":true,"shared":true,"clusterID":3}',
    );
  });

  it("exports only global + shared services in global namespaces", () => {
    assert.equal(clusterServiceFor(cluster3, service({}), [slice], undefined), undefined);
    assert.equal(
      clusterServiceFor(
        cluster3,
        service({ "service.cilium.io/global": "true", "service.cilium.io/shared": "false" }),
        [slice],
        undefined,
      ),
      undefined,
    );
    assert.ok(
      clusterServiceFor(cluster3, service({ "io.cilium/global-service": "TRUE" }), [slice], undefined),
    );
    assert.equal(
      clusterServiceFor(cluster3, service({ "service.cilium.io/global": "true" }), [slice], {
        metadata: { name: "ns-alpha", annotations: { "clustermesh.cilium.io/global": "false" } },
      }),
      undefined,
    );
    assert.equal(
      isSharedService(service({ "service.cilium.io/shared": "true" })),
      false,
      "shared needs global",
    );
    assert.equal(isGlobalService(service({ "service.cilium.io/global": "false" })), false);
  });

  it("a slice the EndpointSlice controller wrote without endpoints (null) adds no backend", () => {
    const empty = {
      ...slice,
      metadata: { ...slice.metadata, name: "echo-service-ctrl" },
      endpoints: null,
    } as unknown as V1EndpointSlice;
    const value = clusterServiceFor(
      cluster3,
      service({ "service.cilium.io/global": "true" }),
      [slice, empty],
      undefined,
    );
    assert.deepEqual(Object.keys(value?.backends ?? {}), ["10.244.1.10"]);
  });

  it("headless services have no frontends; serving-but-terminating backends stay", () => {
    const headless = service({ "service.cilium.io/global": "true" });
    headless.spec = { ...headless.spec, clusterIP: "None", clusterIPs: ["None"] };
    const terminating: V1EndpointSlice = {
      ...slice,
      endpoints: [
        {
          addresses: ["10.244.1.12"],
          conditions: { ready: false, serving: true, terminating: true },
          hostname: "h",
          zone: "z",
        },
      ],
    };
    const value = clusterServiceFor(cluster3, headless, [terminating], undefined);
    assert.deepEqual(value?.frontends, {});
    assert.deepEqual(Object.keys(value?.backends ?? {}), ["10.244.1.12"]);
    assert.deepEqual(value?.hostnames, { "10.244.1.12": "h" });
    assert.deepEqual(value?.zones, { "10.244.1.12": { zone: "z", forZones: null } });
  });
});

describe("node conversion", () => {
  const mesh: MeshNode = {
    apiVersion: "clustermesh.io/v1alpha1",
    kind: "MeshNode",
    metadata: { name: "n1" },
    spec: {
      addresses: [{ type: "CiliumInternalIP", ip: "10.3.0.1" }],
      ipam: { podCIDRs: ["10.3.0.0/24"] },
      encryption: { wireguardPublicKey: "VRksOB6ZNds4oXWIGfSVpvc0gBhcOWFmzvTDcyvULlI=" },
      bootID: "570d3fd1-93db-4862-ba99-6a3c2c10c38f",
      clusterName: "cluster3",
      clusterID: 3,
    },
  };
  it("merges the core Node and the MeshNode", () => {
    const value = nodeValueFor(
      cluster3,
      "n1",
      {
        metadata: { name: "n1" },
        spec: { podCIDRs: ["10.9.0.0/24"] },
        status: {
          addresses: [
            { type: "InternalIP", address: "172.18.0.2" },
            { type: "Hostname", address: "n1" },
          ],
        },
      },
      mesh,
    );
    assert.ok(value);
    assert.deepEqual(value.IPAddresses, [
      { Type: "CiliumInternalIP", IP: "10.3.0.1" },
      { Type: "InternalIP", IP: "172.18.0.2" },
    ]);
    assert.equal(value.IPv4AllocCIDR, "10.3.0.0/24");
    assert.match(
      encodeNode(value),
      /"Annotations":\{"network.cilium.io\/wg-pub-key":"VRks.*"WireguardPubKey":"VRks/,
    );
    assert.equal(value.ClusterID, 3);
  });
  it("works from the core Node alone", () => {
    const value = nodeValueFor(
      cluster3,
      "n2",
      {
        metadata: { name: "n2" },
        spec: { podCIDRs: ["10.9.0.0/24", "fd00::/64"] },
        status: { addresses: [{ type: "InternalIP", address: "172.18.0.3" }] },
      },
      undefined,
    );
    assert.equal(value?.IPv6AllocCIDR, "fd00::/64");
    assert.equal(nodeValueFor(cluster3, "n3", undefined, undefined), undefined);
  });
});

describe("identity and endpoint conversion", () => {
  it("formats the golden identity labels and refuses foreign ids", () => {
    const identity = (name: string, labels: Record<string, string>): MeshIdentity => ({
      apiVersion: "clustermesh.io/v1alpha1",
      kind: "MeshIdentity",
      metadata: { name },
      "security-labels": labels,
    });
    const labels = {
      "k8s:app": "baz",
      "k8s:io.kubernetes.pod.namespace": "bar",
      "k8s:io.cilium.k8s.policy.cluster": "cluster3",
    };
    const ok = identityValueFor(cluster3, identity("196915", labels));
    assert.deepEqual(ok, {
      ok: true,
      id: 196915,
      labels: "k8s:app=baz;k8s:io.cilium.k8s.policy.cluster=cluster3;k8s:io.kubernetes.pod.namespace=bar;",
      namespace: "bar",
    });
    assert.equal(identityValueFor(cluster3, identity("65537", labels)).ok, false);
    assert.equal(identityValueFor(cluster3, identity("196915", {})).ok, false);
    assert.equal(identityValueFor(cluster3, identity("x", labels)).ok, false);
  });

  const endpoint = (name: string, ip: string): MeshEndpoint => ({
    apiVersion: "clustermesh.io/v1alpha1",
    kind: "MeshEndpoint",
    metadata: { name, namespace: "bar" },
    status: {
      id: "lxc1",
      containerID: "c",
      identity: { id: 199475, labels: [] },
      networking: { addressing: [{ ipv4: ip }], node: "172.18.0.2" },
      namedPorts: [{ name: "http", port: 8080, protocol: "TCP" }],
      state: "ready",
    },
  });
  it("maps endpoints to ipcache values with Mask null", () => {
    const [entry] = ipEntriesFor(endpoint("cep-002", "10.244.2.74"));
    assert.equal(
      encodeIpIdentityPair(entry),
      '{"IP":"10.244.2.74","Mask":null,"HostIP":"172.18.0.2","ID":199475,"Key":0,"Metadata":"","K8sNamespace":"bar","K8sPodName":"cep-002","NamedPorts":[{"Name":"http","Port":8080,"Protocol":"TCP"}]}',
    );
  });
  it("publishes the endpoint's IPsec key index as Key (Cilium: status.encryption.key)", () => {
    const withKey = endpoint("cep-002", "10.244.2.74");
    withKey.status.encryption = { key: 3 };
    assert.equal(ipEntriesFor(withKey)[0].Key, 3);
    withKey.status.encryption = { key: 300 };
    assert.equal(ipEntriesFor(withKey)[0].Key, 0);
  });
  it("keeps the first owner of an IP and falls back to the next", () => {
    const owners = new IpOwnership();
    owners.set("bar/a", ipEntriesFor(endpoint("a", "10.0.0.1")));
    owners.set("bar/b", ipEntriesFor(endpoint("b", "10.0.0.1")));
    assert.equal(owners.published("10.0.0.1")?.K8sPodName, "a");
    assert.deepEqual(owners.set("bar/a", []), ["10.0.0.1"]);
    assert.equal(owners.published("10.0.0.1")?.K8sPodName, "b");
    owners.set("bar/b", []);
    assert.equal(owners.published("10.0.0.1"), undefined);
  });
});
