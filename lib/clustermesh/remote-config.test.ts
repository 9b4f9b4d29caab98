import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  isRemoteClusterConfig,
  parseRemoteClusterConfig,
  renderRemoteClusterConfig,
} from "./remote-config.js";

describe("remote cluster config", () => {
  it("reads the config Cilium's Helm chart generates, file paths reduced to Secret keys", () => {
    const config = parseRemoteClusterConfig(
      "cluster2",
      [
        "endpoints:",
        "- https://cluster2.mesh.cilium.io:32379",
        "trusted-ca-file: /var/lib/cilium/clustermesh/common-etcd-client-ca.crt",
        "key-file: /var/lib/cilium/clustermesh/common-etcd-client.key",
        "cert-file: /var/lib/cilium/clustermesh/common-etcd-client.crt",
      ].join("\n"),
    );
    assert.deepEqual(config, {
      name: "cluster2",
      endpoints: ["https://cluster2.mesh.cilium.io:32379"],
      trustedCaFile: "common-etcd-client-ca.crt",
      certFile: "common-etcd-client.crt",
      keyFile: "common-etcd-client.key",
    });
  });

  it("round-trips what meshctl writes", () => {
    const config = {
      name: "c2",
      endpoints: ["https://172.30.0.4:32379"],
      trustedCaFile: "c2.etcd-client-ca.crt",
      certFile: "common-etcd-client.crt",
      keyFile: "common-etcd-client.key",
    };
    const text = renderRemoteClusterConfig(config);
    assert.ok(isRemoteClusterConfig(text));
    assert.deepEqual(parseRemoteClusterConfig("c2", text), config);
  });

  it("rejects configs without usable endpoints, naming the cluster", () => {
    assert.throws(() => parseRemoteClusterConfig("c2", "endpoints: []"), /remote cluster c2: endpoints/);
    assert.throws(() => parseRemoteClusterConfig("c2", "endpoints: [http://1.2.3.4:2379]"), /must use https/);
    assert.throws(() => parseRemoteClusterConfig("c2", "endpoints: [':::']"), /not a URL/);
    assert.throws(() => parseRemoteClusterConfig("c2", "endpoints: [\n"), /not YAML/);
    assert.ok(!isRemoteClusterConfig("tls.crt: x"));
  });
});
