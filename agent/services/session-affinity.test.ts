import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Service } from "@kubernetes/client-node";
import { desiredServices } from "./desired.js";
import { DEFAULT_AFFINITY_TIMEOUT_SECONDS, sessionAffinityTimeout } from "./session-affinity.js";

const sticky = (spec: Partial<NonNullable<V1Service["spec"]>>): V1Service => ({
  metadata: { name: "web", namespace: "demo" },
  spec: { clusterIP: "10.101.0.10", ports: [{ port: 80, protocol: "TCP" }], ...spec },
});

describe("ClientIP session affinity of a Service", () => {
  it("None (or unset) is no affinity; ClientIP defaults to 3 h; the timeout is taken as given", () => {
    assert.equal(sessionAffinityTimeout(sticky({})), undefined);
    assert.equal(sessionAffinityTimeout(sticky({ sessionAffinity: "None" })), undefined);
    assert.equal(
      sessionAffinityTimeout(sticky({ sessionAffinity: "ClientIP" })),
      DEFAULT_AFFINITY_TIMEOUT_SECONDS,
    );
    assert.equal(
      sessionAffinityTimeout(
        sticky({ sessionAffinity: "ClientIP", sessionAffinityConfig: { clientIP: { timeoutSeconds: 10 } } }),
      ),
      10,
    );
  });

  it("values the API server would refuse are reported with the field and replaced", () => {
    const problems: string[] = [];
    const report = (message: string) => problems.push(message);
    assert.equal(sessionAffinityTimeout(sticky({ sessionAffinity: "Cookie" }), report), undefined);
    assert.equal(
      sessionAffinityTimeout(
        sticky({ sessionAffinity: "ClientIP", sessionAffinityConfig: { clientIP: { timeoutSeconds: 0 } } }),
        report,
      ),
      DEFAULT_AFFINITY_TIMEOUT_SECONDS,
    );
    assert.match(problems[0], /spec\.sessionAffinity "Cookie"/);
    assert.match(problems[1], /spec\.sessionAffinityConfig\.clientIP\.timeoutSeconds 0/);
  });

  it("desiredServices gives the ClusterIP and NodePort frontends of a ClientIP Service the timeout", () => {
    const out = desiredServices({
      services: [
        sticky({
          type: "NodePort",
          sessionAffinity: "ClientIP",
          sessionAffinityConfig: { clientIP: { timeoutSeconds: 30 } },
          ports: [{ port: 80, nodePort: 30080, protocol: "TCP" }],
        }),
      ],
      endpointSlices: [],
      nodeAddresses: ["172.30.0.2"],
      isKnownAddress: () => true,
    });
    assert.deepEqual(
      out.map((s) => [s.frontend.address, s.affinityTimeoutSeconds]),
      [
        ["10.101.0.10", 30],
        ["172.30.0.2", 30],
      ],
    );
  });
});
