import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { podResolvConf } from "./dns.js";

const dns = { nameservers: ["10.96.0.10"], domain: "cluster.local" };
const pod = (spec: V1Pod["spec"] = { containers: [] }, namespace = "demo"): V1Pod => ({
  metadata: { name: "p", namespace },
  spec,
});

describe("pod resolv.conf (kubelet dnsPolicy)", () => {
  it("ClusterFirst (the default): cluster DNS, the namespace's search list, ndots:5", () => {
    assert.equal(
      podResolvConf(pod(), dns),
      "search demo.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n",
    );
  });

  it("Default, hostNetwork with ClusterFirst, or no cluster DNS: the node's (nothing written)", () => {
    assert.equal(podResolvConf(pod({ containers: [], dnsPolicy: "Default" }), dns), undefined);
    assert.equal(podResolvConf(pod({ containers: [], hostNetwork: true }), dns), undefined);
    assert.equal(podResolvConf(pod(), undefined), undefined);
    assert.match(
      podResolvConf(pod({ containers: [], hostNetwork: true, dnsPolicy: "ClusterFirstWithHostNet" }), dns) ??
        "",
      /nameserver 10\.96\.0\.10/,
    );
  });

  it("None takes dnsConfig only; dnsConfig merges into ClusterFirst, options override by name", () => {
    assert.equal(
      podResolvConf(
        pod({
          containers: [],
          dnsPolicy: "None",
          dnsConfig: { nameservers: ["10.0.0.53"], searches: ["a.example"], options: [{ name: "edns0" }] },
        }),
        dns,
      ),
      "search a.example\nnameserver 10.0.0.53\noptions edns0\n",
    );
    assert.equal(
      podResolvConf(
        pod({ containers: [], dnsConfig: { searches: ["x.y"], options: [{ name: "ndots", value: "2" }] } }),
        dns,
      ),
      "search demo.svc.cluster.local svc.cluster.local cluster.local x.y\nnameserver 10.96.0.10\noptions ndots:2\n",
    );
  });
});
