import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1EndpointSlice, V1Service } from "@kubernetes/client-node";
import { cidrContains, parseCidr } from "../../lib/cidr.js";
import {
  desiredServices,
  type RemoteServiceBackends,
  type ServiceProblem,
  selectBackends,
} from "./desired.js";

const podCidr = parseCidr("10.1.0.0/16");
const isKnownAddress = (ip: string) => cidrContains(podCidr, ip);

function service(name: string, spec: V1Service["spec"]): V1Service {
  return { metadata: { name, namespace: "demo" }, spec };
}

function slice(
  serviceName: string,
  endpoints: { ip: string; ready?: boolean; serving?: boolean; terminating?: boolean }[],
) {
  return {
    addressType: "IPv4",
    metadata: {
      name: `${serviceName}-abc`,
      namespace: "demo",
      labels: { "kubernetes.io/service-name": serviceName },
    },
    ports: [
      { name: "http", port: 8080, protocol: "TCP" },
      { name: "dns", port: 5353, protocol: "UDP" },
    ],
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: { ready: e.ready ?? true, serving: e.serving, terminating: e.terminating },
    })),
  } as V1EndpointSlice;
}

const echo = service("echo", {
  clusterIP: "10.101.0.10",
  type: "NodePort",
  ports: [
    { name: "http", port: 80, targetPort: "http" as never, nodePort: 30080, protocol: "TCP" },
    { name: "dns", port: 53, protocol: "UDP" },
  ],
});

describe("desired services", () => {
  it("maps ClusterIP and NodePort ports to the slices' named ports", () => {
    const out = desiredServices({
      services: [echo],
      endpointSlices: [slice("echo", [{ ip: "10.1.1.5" }, { ip: "10.1.2.7" }])],
      nodeAddresses: ["172.30.0.3"],
      isKnownAddress,
    });
    assert.deepEqual(
      out.map((s) => [
        s.frontend.address,
        s.frontend.port,
        s.frontend.proto,
        s.backends.map((b) => `${b.address}:${b.port}`),
      ]),
      [
        ["10.101.0.10", 80, 6, ["10.1.1.5:8080", "10.1.2.7:8080"]],
        ["172.30.0.3", 30080, 6, ["10.1.1.5:8080", "10.1.2.7:8080"]],
        ["10.101.0.10", 53, 17, ["10.1.1.5:5353", "10.1.2.7:5353"]],
      ],
    );
  });

  it("uses ready endpoints, serving ones when none is ready, and keeps terminating ones for old flows", () => {
    const mixed = desiredServices({
      services: [echo],
      endpointSlices: [
        slice("echo", [
          { ip: "10.1.1.5" },
          { ip: "10.1.1.6", ready: false, serving: true, terminating: true },
        ]),
      ],
      nodeAddresses: [],
      isKnownAddress,
    })[0].backends;
    assert.deepEqual(mixed, [
      { address: "10.1.1.5", port: 8080 },
      { address: "10.1.1.6", port: 8080, terminating: true },
    ]);
    const noneReady = desiredServices({
      services: [echo],
      endpointSlices: [slice("echo", [{ ip: "10.1.1.6", ready: false, serving: true, terminating: true }])],
      nodeAddresses: [],
      isKnownAddress,
    })[0].backends;
    assert.deepEqual(noneReady, [{ address: "10.1.1.6", port: 8080 }]);
    const notServing = desiredServices({
      services: [echo],
      endpointSlices: [slice("echo", [{ ip: "10.1.1.7", ready: false, serving: false }])],
      nodeAddresses: [],
      isKnownAddress,
    })[0].backends;
    assert.deepEqual(notServing, []);
  });

  it("skips headless services, bad ports and addresses outside the cluster, reporting each", () => {
    const problems: ServiceProblem[] = [];
    const out = desiredServices({
      services: [
        service("headless", { clusterIP: "None", ports: [{ port: 80 }] }),
        service("badport", { clusterIP: "10.101.0.11", ports: [{ port: 70000 }] }),
        echo,
      ],
      endpointSlices: [slice("echo", [{ ip: "192.0.2.9" }, { ip: "10.1.1.5" }])],
      nodeAddresses: [],
      isKnownAddress,
      onProblem: (p) => problems.push(p),
    });
    assert.deepEqual(
      out.map((s) => s.frontend.address),
      ["10.101.0.10", "10.101.0.10"],
    );
    assert.deepEqual(out[0].backends, [{ address: "10.1.1.5", port: 8080 }]);
    assert.ok(problems.some((p) => p.object === "Service demo/badport" && /port 70000/.test(p.message)));
    assert.ok(
      problems.some((p) => p.object === "EndpointSlice demo/echo-abc" && /192.0.2.9/.test(p.message)),
    );
  });
});

describe("global services: remote backends and affinity", () => {
  const globalEcho = (annotations: Record<string, string>) => ({
    ...echo,
    metadata: { ...echo.metadata, annotations: { "service.cilium.io/global": "true", ...annotations } },
  });
  const remote: RemoteServiceBackends[] = [
    {
      cluster: "c2",
      backends: {
        "10.2.0.5": { http: { Protocol: "TCP", Port: 8080 }, dns: { Protocol: "UDP", Port: 5353 } },
        "10.2.0.6": { http: { Protocol: "TCP", Port: 8080 } },
        // same name, other protocol: not a backend of the TCP port
        "10.2.0.7": { http: { Protocol: "UDP", Port: 8080 } },
      },
    },
  ];
  const run = (service: V1Service, localIps: { ip: string; ready?: boolean; terminating?: boolean }[]) =>
    desiredServices({
      services: [service],
      endpointSlices: localIps.length ? [slice("echo", localIps)] : [],
      nodeAddresses: ["172.30.0.3"],
      isKnownAddress,
      remoteBackends: new Map([["demo/echo", remote]]),
    });
  const httpBackends = (out: ReturnType<typeof run>, address = "10.101.0.10") =>
    out
      .find((s) => s.frontend.address === address && s.frontend.port !== 53)
      ?.backends.map((b) => `${b.address}:${b.port}${b.terminating ? "!" : ""}`);

  it("merges remote backends into the local ClusterIP and NodePort of a global service", () => {
    const out = run(globalEcho({}), [{ ip: "10.1.1.5" }]);
    assert.deepEqual(httpBackends(out), ["10.1.1.5:8080", "10.2.0.5:8080", "10.2.0.6:8080"]);
    assert.deepEqual(httpBackends(out, "172.30.0.3"), ["10.1.1.5:8080", "10.2.0.5:8080", "10.2.0.6:8080"]);
    const dns = out.find((s) => s.frontend.port === 53)?.backends.map((b) => b.address);
    assert.deepEqual(dns, ["10.1.1.5", "10.2.0.5"], "UDP port: only the remote backend exporting it");
  });

  it("ignores remote backends for a service that is not global (or legacy-annotated false)", () => {
    assert.deepEqual(httpBackends(run(echo, [{ ip: "10.1.1.5" }])), ["10.1.1.5:8080"]);
    const legacyFalse = {
      ...echo,
      metadata: { ...echo.metadata, annotations: { "io.cilium/global-service": "false" } },
    };
    assert.deepEqual(httpBackends(run(legacyFalse, [{ ip: "10.1.1.5" }])), ["10.1.1.5:8080"]);
    const legacyTrue = {
      ...echo,
      metadata: { ...echo.metadata, annotations: { "io.cilium/global-service": "TRUE" } },
    };
    assert.equal(httpBackends(run(legacyTrue, [{ ip: "10.1.1.5" }]))?.length, 3);
  });

  it("affinity local: remote backends only while no local backend is active", () => {
    const local = globalEcho({ "service.cilium.io/affinity": "local" });
    assert.deepEqual(httpBackends(run(local, [{ ip: "10.1.1.5" }])), ["10.1.1.5:8080"]);
    assert.deepEqual(httpBackends(run(local, [])), ["10.2.0.5:8080", "10.2.0.6:8080"], "failover");
    assert.deepEqual(
      httpBackends(run(local, [{ ip: "10.1.1.5", ready: false, terminating: true }])),
      ["10.1.1.5:8080!", "10.2.0.5:8080", "10.2.0.6:8080"],
      "a terminating local backend keeps its flows but does not count as active",
    );
  });

  it("affinity remote: local backends only while there is no remote backend", () => {
    const remoteFirst = globalEcho({ "service.cilium.io/affinity": "Remote" });
    assert.deepEqual(httpBackends(run(remoteFirst, [{ ip: "10.1.1.5" }])), [
      "10.2.0.5:8080",
      "10.2.0.6:8080",
    ]);
    const out = desiredServices({
      services: [remoteFirst],
      endpointSlices: [slice("echo", [{ ip: "10.1.1.5" }])],
      nodeAddresses: [],
      isKnownAddress,
      remoteBackends: new Map(),
    });
    assert.deepEqual(httpBackends(out), ["10.1.1.5:8080"]);
  });

  it("affinity none or unknown: everything", () => {
    for (const value of ["none", "bogus"]) {
      const out = run(globalEcho({ "service.cilium.io/affinity": value }), [{ ip: "10.1.1.5" }]);
      assert.equal(httpBackends(out)?.length, 3, value);
    }
  });

  it("selectBackends drops a remote backend equal to a local one", () => {
    const local = [{ address: "10.1.1.5", port: 80 }];
    assert.deepEqual(selectBackends(local, [{ address: "10.1.1.5", port: 80 }], "none"), local);
  });

  it("programs nothing for remote backends without a local service of that name", () => {
    const out = desiredServices({
      services: [],
      endpointSlices: [],
      nodeAddresses: [],
      isKnownAddress,
      remoteBackends: new Map([["demo/echo", remote]]),
    });
    assert.deepEqual(out, []);
  });
});
