import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { clusterDnsIp, corednsManifest, corefile } from "./coredns.js";

describe("CoreDNS add-on (kubeadm's, for lab pods)", () => {
  it("puts kube-dns at the 10th address of the service CIDR, as kubeadm does", () => {
    assert.equal(clusterDnsIp("10.96.0.0/16"), "10.96.0.10");
    assert.equal(clusterDnsIp("fd00:10:96::/112"), "fd00:10:96::a");
  });

  it("serves cluster.local from the API server with the pod's own credentials (in-cluster config)", () => {
    const text = corefile();
    assert.match(text, /kubernetes cluster\.local in-addr\.arpa ip6\.arpa \{/);
    assert.match(text, /forward \. \/etc\/resolv\.conf/);
    assert.doesNotMatch(text, /kubeconfig/);
  });

  it("with nodeHosts, answers node names from the ConfigMap's NodeHosts before the cluster's names fall through", () => {
    const text = corefile({ upstream: false, nodeHosts: true });
    assert.match(text, /hosts \/etc\/coredns\/NodeHosts \{[^}]*fallthrough/);
    const docs = parseAllDocuments(
      corednsManifest({
        serviceSubnet: "10.96.0.0/16",
        binary: "/b",
        corefileText: text,
        nodeHosts: "172.30.0.2 c1-control-plane\n",
      }),
    ).map((d) => d.toJS());
    const [, , , configMap, deployment] = docs;
    assert.equal(configMap.data.NodeHosts, "172.30.0.2 c1-control-plane\n");
    assert.deepEqual(
      deployment.spec.template.spec.volumes[0].configMap.items.map((i: { key: string }) => i.key),
      ["Corefile", "NodeHosts"],
    );
  });

  it("without upstream, forwards nothing and drops the loop probe (nothing leaves the lab)", () => {
    const text = corefile({ upstream: false });
    assert.doesNotMatch(text, /forward|loop/);
    assert.match(text, /kubernetes cluster\.local/);
    assert.match(text, /\n {4}cache 30 \{/);
  });

  it("renders the add-on's objects; the pod runs the given binary on the Corefile of the ConfigMap it mounts", () => {
    const text = corefile();
    const docs = parseAllDocuments(
      corednsManifest({
        serviceSubnet: "10.201.128.0/20",
        binary: "/cache/coredns",
        corefileText: text,
      }),
    ).map((d) => d.toJS());
    assert.deepEqual(
      docs.map((d) => `${d.kind}/${d.metadata.name}`),
      [
        "ServiceAccount/coredns",
        "ClusterRole/system:coredns",
        "ClusterRoleBinding/system:coredns",
        "ConfigMap/coredns",
        "Deployment/coredns",
        "Service/kube-dns",
      ],
    );
    const [, , , configMap, deployment, service] = docs;
    assert.equal(configMap.data.Corefile, text);
    const container = deployment.spec.template.spec.containers[0];
    assert.deepEqual(
      [...container.command, ...container.args],
      ["/cache/coredns", "-conf", "/etc/coredns/Corefile"],
    );
    assert.deepEqual(container.volumeMounts, [
      { name: "config-volume", mountPath: "/etc/coredns", readOnly: true },
    ]);
    assert.equal(deployment.spec.template.spec.volumes[0].configMap.name, configMap.metadata.name);
    assert.equal(deployment.spec.template.spec.serviceAccountName, "coredns");
    assert.equal(service.spec.clusterIP, "10.201.128.10");
    assert.deepEqual(service.spec.selector, deployment.spec.selector.matchLabels);
  });
});
