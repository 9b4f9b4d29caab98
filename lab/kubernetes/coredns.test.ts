import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { clusterDnsIp, corednsManifest, corefile } from "./coredns.js";

describe("CoreDNS add-on (kubeadm's, for lab pods)", () => {
  it("puts kube-dns at the 10th address of the service CIDR, as kubeadm does", () => {
    assert.equal(clusterDnsIp("10.96.0.0/16"), "10.96.0.10");
    assert.equal(clusterDnsIp("fd00:10:96::/112"), "fd00:10:96::a");
  });

  it("serves cluster.local from the API server and authenticates with the kubeconfig when given", () => {
    const text = corefile({ kubeconfig: "/lab/coredns.conf" });
    assert.match(
      text,
      /kubernetes cluster\.local in-addr\.arpa ip6\.arpa \{[^}]*kubeconfig \/lab\/coredns\.conf\n/,
    );
    assert.match(text, /forward \. \/etc\/resolv\.conf/);
    assert.doesNotMatch(corefile(), /kubeconfig/);
  });

  it("without upstream, forwards nothing and drops the loop probe (nothing leaves the lab)", () => {
    const text = corefile({ upstream: false });
    assert.doesNotMatch(text, /forward|loop/);
    assert.match(text, /kubernetes cluster\.local/);
    assert.match(text, /\n {4}cache 30 \{/);
  });

  it("renders the add-on's objects; the pod runs the given binary on the Corefile the ConfigMap shows", () => {
    const text = corefile({ kubeconfig: "/k" });
    const docs = parseAllDocuments(
      corednsManifest({
        serviceSubnet: "10.201.128.0/20",
        binary: "/cache/coredns",
        corefilePath: "/lab/Corefile",
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
    assert.deepEqual([...container.command, ...container.args], ["/cache/coredns", "-conf", "/lab/Corefile"]);
    assert.equal(deployment.spec.template.spec.serviceAccountName, "coredns");
    assert.equal(service.spec.clusterIP, "10.201.128.10");
    assert.deepEqual(service.spec.selector, deployment.spec.selector.matchLabels);
  });
});
