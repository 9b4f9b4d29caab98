/**
 * The Hubble certificate Secrets install issues against the cluster's CA, with the names Cilium's
 * Hubble clients check (https://docs.cilium.io/en/stable/observability/hubble/configuration/tls/):
 * each agent serves `*.<cluster>.hubble-grpc.cilium.io` on its node; the relay serves
 * `*.hubble-relay.cilium.io` and presents the same certificate as a client to the agents and to
 * other clusters' relays (both serverAuth and clientAuth). Kept while issued by that CA for this
 * cluster, re-issued otherwise, so a re-run changes nothing and a new CA replaces them.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { CertificateBundle, isIssuedBy, issueLeafCert } from "../../certs/authority.js";
import { agentCertDnsName, HubbleObjects, RELAY_CERT_DNS_NAME } from "../api/hubble.js";
import { MESH_NAMESPACE } from "../api/rbac.js";
import { applySecret, coreApi, decodeSecretData, encodeSecretData, readSecret } from "../k8s/client.js";
import { PART_OF } from "./names.js";

const hubbleAgentCommonName = (cluster: string) => `hubble-server.${cluster}`;
const hubbleRelayCommonName = (cluster: string) => `hubble-relay.${cluster}`;

const issueBoth = (ca: CertificateBundle, commonName: string, dnsName: string) =>
  issueLeafCert(ca, { commonName, dnsNames: [dnsName], serverAuth: true, clientAuth: true });

export async function ensureHubbleCerts(
  kc: KubeConfig,
  ca: CertificateBundle,
  clusterName: string,
): Promise<string[]> {
  const core = coreApi(kc);
  const wanted = [
    [
      HubbleObjects.agentCert,
      hubbleAgentCommonName(clusterName),
      () => issueBoth(ca, hubbleAgentCommonName(clusterName), agentCertDnsName(clusterName)),
    ],
    [
      HubbleObjects.relayCert,
      hubbleRelayCommonName(clusterName),
      () => issueBoth(ca, hubbleRelayCommonName(clusterName), RELAY_CERT_DNS_NAME),
    ],
  ] as const;
  const issued: string[] = [];
  for (const [name, commonName, issue] of wanted) {
    const secret = await readSecret(core, name);
    const cert = decodeSecretData(secret, "tls.crt");
    const key = decodeSecretData(secret, "tls.key");
    if (
      cert &&
      key &&
      isIssuedBy(cert, ca.certPem) &&
      new CertificateBundle(cert, key, ca.certPem).commonName === commonName
    )
      continue;
    const bundle = issue();
    await applySecret(core, {
      metadata: { name, namespace: MESH_NAMESPACE, labels: { ...PART_OF } },
      type: "kubernetes.io/tls",
      data: encodeSecretData({ "ca.crt": bundle.caPem, "tls.crt": bundle.certPem, "tls.key": bundle.keyPem }),
    });
    issued.push(name);
  }
  return issued;
}
