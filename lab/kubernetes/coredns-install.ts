import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { KubernetesControlPlane } from "./control-plane.js";
import { COREDNS_USER, corednsManifest, corefile } from "./coredns.js";
import { writeKubeconfig } from "./kubeconfig.js";
import { issueKubernetesClient } from "./pki.js";

/**
 * Writes what the lab's CoreDNS pods read from the host (their kubeconfig and the Corefile, under
 * `dir`) and returns the manifest to apply (`kubectl apply -f -`). `binary`: see corednsBinary().
 */
export function prepareCoredns(
  controlPlane: KubernetesControlPlane,
  options: { dir: string; serviceSubnet: string; clusterName: string; binary: string; replicas?: number },
): string {
  mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  const client = issueKubernetesClient(controlPlane.pki, "coredns", COREDNS_USER);
  const kubeconfigPath = join(options.dir, "coredns.conf");
  writeKubeconfig(kubeconfigPath, {
    server: controlPlane.apiServerUrl,
    caPem: readFileSync(controlPlane.pki.ca.cert, "utf8"),
    certPem: readFileSync(client.cert, "utf8"),
    keyPem: readFileSync(client.key, "utf8"),
    context: `coredns@${options.clusterName}`,
    cluster: options.clusterName,
    user: "coredns",
  });
  const corefilePath = join(options.dir, "Corefile");
  // No upstream: lab pods resolve cluster names only, nothing is forwarded off the machine.
  const corefileText = corefile({ kubeconfig: kubeconfigPath, upstream: false });
  writeFileSync(corefilePath, corefileText);
  return corednsManifest({
    serviceSubnet: options.serviceSubnet,
    binary: options.binary,
    corefilePath,
    corefileText,
    replicas: options.replicas,
  });
}
