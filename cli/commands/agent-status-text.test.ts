import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encryptionSummary } from "./agent-status-text.js";

describe("agent status text", () => {
  it("encryption: mode, backend, key id, peers, skipped", () => {
    const text = encryptionSummary(
      {
        mode: "ipsec",
        backend: "strongswan-libipsec",
        keyId: 3,
        peers: [{ node: "w1", cluster: "c2", endpoint: "172.18.1.2", sas: { ike: 1, child: 1 } }],
        saCounts: { ike: 1, child: 1, byConnection: {} },
        skipped: [{ node: "c1/x", reason: "missing-boot-id" }],
        skippedTotal: { "missing-boot-id": 1 },
        dropPrefixes: ["10.9.7.0/24"],
      },
      0,
    );
    assert.match(text.lines[0], /ipsec, backend strongswan-libipsec, key id 3, SAs: 1 IKE \/ 1 CHILD/);
    assert.match(text.lines.join("\n"), /skipped c1\/x: missing-boot-id/);
    assert.deepEqual(text.table?.rows, [["w1", "c2", "172.18.1.2", 1, 1]]);
    assert.deepEqual(encryptionSummary({ mode: "none" }).lines, ["Encryption:  none"]);
    const kernel = encryptionSummary(
      {
        mode: "ipsec",
        backend: "kernel-xfrm",
        backendDetail: "kernel ESP probe: rfc4106(gcm(aes)) ESP state accepted",
        keyId: 4,
        peers: [{ node: "w1", cluster: "c2", endpoint: "172.18.1.2", states: { in: 2, out: 1 } }],
        xfrmStates: { in: 2, out: 1 },
        skipped: [],
        skippedTotal: {},
        dropPrefixes: [],
      },
      0,
    );
    assert.match(kernel.lines[0], /backend kernel-xfrm, key id 4, ESP states: 2 in \/ 1 out/);
    assert.match(kernel.lines[1], /chosen by kernel ESP probe: rfc4106/);
    assert.deepEqual(kernel.table?.header.slice(3), ["ESP STATES IN", "ESP STATES OUT"]);
    assert.deepEqual(kernel.table?.rows, [["w1", "c2", "172.18.1.2", 2, 1]]);
  });
});
