import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SpecProgress } from "./progress.js";

// excerpts of e2e.test --ginkgo.v output (v1.33.13)
const OUTPUT = `SSSSSSSSSSSSSSSSS
------------------------------
[sig-network] Services should serve multiport endpoints from pods [Conformance] [sig-network, Conformance]
k8s.io/kubernetes@v1.33.13/test/e2e/network/service.go:814
  STEP: Creating a kubernetes client @ 12/06/26 01:39:26.45
  STEP: Destroying namespace "services-5420" for this suite. @ 12/06/26 01:39:33.22
• [6.775 seconds]
------------------------------
[sig-network] Services should be able to switch session affinity for NodePort service [LinuxOnly] [Conformance] [sig-network, Conformance]
k8s.io/kubernetes@v1.33.13/test/e2e/network/service.go:2244
  STEP: Creating a kubernetes client @ 12/06/26 01:37:20.45
• [FAILED] [125.792 seconds]
[sig-network] Services [It] should be able to switch session affinity for NodePort service [LinuxOnly] [Conformance] [sig-network, Conformance]
k8s.io/kubernetes@v1.33.13/test/e2e/network/service.go:2244

  [FAILED] Affinity should hold but didn't.
------------------------------
[sig-network] Netpol [Feature:SCTPConnectivity] should enforce policy [Feature:NetworkPolicy]
k8s.io/kubernetes@v1.33.13/test/e2e/network/netpol/network_policy.go:1390
S [SKIPPED] [0.005 seconds]
`;

describe("SpecProgress", () => {
  it("yields one line per finished spec with its state and time", () => {
    const follower = new SpecProgress();
    const lines = OUTPUT.split("\n")
      .map((line) => follower.line(line))
      .filter(Boolean);
    assert.deepEqual(lines, [
      "PASSED 6.775s [sig-network] Services should serve multiport endpoints from pods [Conformance] [sig-network, Conformance]",
      "FAILED 125.792s [sig-network] Services should be able to switch session affinity for NodePort service [LinuxOnly] [Conformance] [sig-network, Conformance]",
      "SKIPPED 0.005s [sig-network] Netpol [Feature:SCTPConnectivity] should enforce policy [Feature:NetworkPolicy]",
    ]);
  });
});
