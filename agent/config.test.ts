import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, parseAgentFlags } from "./config.js";

const base = [
  "--kubeconfig=/k",
  "--node-name=n1",
  "--cluster-name=c1",
  "--cluster-id=3",
  "--bpffs-root=/sys/fs/bpf/x",
  "--cgroup-root=/sys/fs/cgroup/unified/lab/n1",
  "--socket=/run/a.sock",
  "--state-dir=/var/lib/a",
  "--metrics-address=172.18.0.2:9962",
];

describe("agent flags", () => {
  it("parses the lab's contract with defaults", () => {
    const config = parseAgentFlags(base);
    assert.equal(config.clusterId, 3);
    assert.deepEqual(config.metricsAddress, { host: "172.18.0.2", port: 9962 });
    assert.equal(config.mtu, 1500);
    assert.equal(config.tunnelPort, 8472);
    assert.equal(config.underlayInterface, "eth0");
    assert.equal(config.ipsecBackend, "auto");
    assert.equal(parseAgentFlags([...base, "--ipsec-backend=kernel-xfrm"]).ipsecBackend, "kernel-xfrm");
    assert.equal(config.endpointAttach, "tc");
    assert.equal(parseAgentFlags([...base, "--endpoint-attach=tcx"]).endpointAttach, "tcx");
  });

  it("rejects missing and invalid values with the flag's name", () => {
    assert.throws(() => parseAgentFlags(base.slice(1)), /--kubeconfig is required/);
    assert.throws(() => parseAgentFlags([...base, "--cluster-id=0"]), /--cluster-id/);
    assert.throws(() => parseAgentFlags([...base, "--cluster-id=256"]), ConfigError);
    assert.throws(() => parseAgentFlags([...base, "--cluster-name=Bad_Name"]), /--cluster-name/);
    assert.throws(() => parseAgentFlags([...base, "--metrics-address=nohost"]), /--metrics-address/);
    assert.throws(() => parseAgentFlags([...base, "--mtu=100"]), /--mtu/);
    assert.throws(() => parseAgentFlags([...base, "--bogus"]), ConfigError);
    assert.throws(
      () => parseAgentFlags([...base, "--ipsec-backend=xfrm"]),
      /--ipsec-backend: "xfrm" is not auto, kernel-xfrm or libipsec/,
    );
    assert.throws(
      () => parseAgentFlags([...base, "--endpoint-attach=xdp"]),
      /--endpoint-attach: "xdp" is not tc or tcx/,
    );
  });
});
