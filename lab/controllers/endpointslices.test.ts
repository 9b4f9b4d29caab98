import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1EndpointSlice, V1Pod, V1Service } from "@kubernetes/client-node";
import { SERVICE_NAME_LABEL } from "../../lib/api/service-annotations.js";
import { desiredEndpointSlices, MANAGED_BY, MANAGED_BY_LABEL, planEndpointSlices } from "./endpointslices.js";

const service: V1Service = {
  metadata: { name: "echo", namespace: "demo", uid: "svc-uid" },
  spec: {
    selector: { app: "echo" },
    ports: [
      { name: "http", port: 80, targetPort: "http" as unknown as number, protocol: "TCP" },
      { name: "dns", port: 53, targetPort: 5353 as unknown as number, protocol: "UDP" },
    ],
  },
};

function pod(
  name: string,
  ip: string | undefined,
  options: { ready?: boolean; terminating?: boolean; httpPort?: number } = {},
): V1Pod {
  return {
    metadata: {
      name,
      namespace: "demo",
      uid: `${name}-uid`,
      labels: { app: "echo" },
      ...(options.terminating ? { deletionTimestamp: new Date() } : {}),
    },
    spec: {
      nodeName: "w1",
      containers: [{ name: "c", ports: [{ name: "http", containerPort: options.httpPort ?? 8080 }] }],
    },
    status: {
      phase: "Running",
      ...(ip ? { podIP: ip, podIPs: [{ ip }] } : {}),
      conditions: [{ type: "Ready", status: options.ready === false ? "False" : "True" }],
    },
  };
}

describe("EndpointSlice controller", () => {
  it("builds a slice with conditions, targetRef, nodeName, named ports and labels", () => {
    const [slice, ...rest] = desiredEndpointSlices(service, [
      pod("a", "10.0.0.1"),
      pod("b", "10.0.0.2", { ready: false }),
      pod("c", "10.0.0.3", { terminating: true }),
      pod("pending", undefined),
      {
        ...pod("other", "10.0.0.9"),
        metadata: { ...pod("other", "10.0.0.9").metadata, labels: { app: "x" } },
      },
    ]);
    assert.equal(rest.length, 0);
    assert.equal(slice.addressType, "IPv4");
    assert.equal(slice.metadata?.labels?.[SERVICE_NAME_LABEL], "echo");
    assert.equal(slice.metadata?.labels?.[MANAGED_BY_LABEL], MANAGED_BY);
    assert.equal(slice.metadata?.ownerReferences?.[0].uid, "svc-uid");
    assert.deepEqual(slice.ports, [
      { name: "http", port: 8080, protocol: "TCP" },
      { name: "dns", port: 5353, protocol: "UDP" },
    ]);
    const conditions = Object.fromEntries(slice.endpoints.map((e) => [e.targetRef?.name, e.conditions]));
    assert.deepEqual(conditions, {
      a: { ready: true, serving: true, terminating: false },
      b: { ready: false, serving: false, terminating: false },
      c: { ready: false, serving: true, terminating: true },
    });
    assert.equal(slice.endpoints[0].nodeName, "w1");
    assert.deepEqual(slice.endpoints[0].addresses, ["10.0.0.1"]);
  });

  it("splits pods whose named port resolves differently into separate slices", () => {
    const slices = desiredEndpointSlices(service, [
      pod("a", "10.0.0.1"),
      pod("b", "10.0.0.2", { httpPort: 9090 }),
    ]);
    assert.equal(slices.length, 2);
    assert.notEqual(slices[0].metadata?.name, slices[1].metadata?.name);
  });

  it("keeps an empty slice for a service without endpoints, none for a selector-less service", () => {
    assert.equal(desiredEndpointSlices(service, [])[0].endpoints.length, 0);
    assert.deepEqual(
      desiredEndpointSlices({ ...service, spec: { ...service.spec, selector: undefined } }, []),
      [],
    );
  });

  it("plans create, update when readiness flips, and delete for vanished services", () => {
    const first = planEndpointSlices([service], [pod("a", "10.0.0.1", { ready: false })], []);
    assert.equal(first.create.length, 1);
    const existing: V1EndpointSlice = {
      ...first.create[0],
      metadata: { ...first.create[0].metadata, resourceVersion: "7" },
    };
    assert.deepEqual(planEndpointSlices([service], [pod("a", "10.0.0.1", { ready: false })], [existing]), {
      create: [],
      update: [],
      delete: [],
    });
    const flipped = planEndpointSlices([service], [pod("a", "10.0.0.1")], [existing]);
    assert.equal(flipped.update.length, 1);
    assert.equal(flipped.update[0].metadata?.resourceVersion, "7");
    assert.equal(flipped.update[0].endpoints[0].conditions?.ready, true);
    const gone = planEndpointSlices([], [], [existing]);
    assert.deepEqual(gone.delete, [{ namespace: "demo", name: existing.metadata?.name }]);
  });

  it("makes one slice per family for dual-stack services", () => {
    const dual = { ...service, spec: { ...service.spec, ipFamilies: ["IPv4", "IPv6"] } };
    const p = pod("a", "10.0.0.1");
    p.status = { ...p.status, podIPs: [{ ip: "10.0.0.1" }, { ip: "fd00::1" }] };
    const slices = desiredEndpointSlices(dual, [p]);
    assert.deepEqual(
      slices.map((s) => [s.addressType, s.endpoints[0].addresses[0]]),
      [
        ["IPv4", "10.0.0.1"],
        ["IPv6", "fd00::1"],
      ],
    );
  });
});
