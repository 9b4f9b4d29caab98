import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FlagError, optionsFromFlags, parseFlags } from "./flags.js";

describe("kube-apiserver flags", () => {
  it("accepts --flag value and --flag=value and fills defaults", () => {
    const flags = parseFlags([
      "--tls-cert-file=/a",
      "--tls-private-key-file",
      "/b",
      "--client-ca-file=/c",
      "--etcd-servers=https://127.0.0.1:2379",
      "--etcd-cafile=/d",
      "--etcd-certfile=/e",
      "--etcd-keyfile=/f",
      "--service-cluster-ip-range=10.96.0.0/16",
    ]);
    assert.equal(flags.get("tls-private-key-file"), "/b");
    assert.equal(flags.get("secure-port"), "6443");
    assert.equal(flags.get("etcd-prefix"), "/registry");
  });

  it("names the offending flag", () => {
    assert.throws(() => parseFlags(["--nope=1"]), /unknown flag: --nope/);
    assert.throws(() => parseFlags(["--secure-port"]), /flag needs an argument: --secure-port/);
    assert.throws(() => parseFlags([]), /missing required flag: --tls-cert-file/);
    const base = [
      "--tls-cert-file=/a",
      "--tls-private-key-file=/b",
      "--client-ca-file=/c",
      "--etcd-servers=http://127.0.0.1:2379",
      "--etcd-cafile=/d",
      "--etcd-certfile=/e",
      "--etcd-keyfile=/f",
      "--service-cluster-ip-range=10.96.0.0/16",
    ];
    assert.throws(
      () => optionsFromFlags(parseFlags(base)),
      (e: Error) => e instanceof FlagError && /--etcd-servers/.test(e.message),
    );
    assert.throws(() => optionsFromFlags(parseFlags([...base, "--bind-address=nope"])), /--bind-address/);
    const https = base.map((f) => f.replace("http://", "https://"));
    assert.throws(
      () => optionsFromFlags(parseFlags([...https, "--service-node-port-range=5-1"])),
      /--service-node-port-range/,
    );
    assert.throws(() => optionsFromFlags(parseFlags(https)), /--tls-cert-file: cannot read \/a/);
  });
});
