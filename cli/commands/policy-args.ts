/**
 * `meshctl policy trace`'s endpoint and port arguments, parsed before anything is reached:
 *   --from/--to  ns/pod (read from the cluster), an IP address (outside the pods: world or a CIDR
 *                rule's block), or labels `app=x,tier=web` (namespace from `io.kubernetes.pod.namespace=`,
 *                default `default`; a `k8s:` source is accepted and dropped)
 *   --dport      80, 80/tcp, 53/udp, 9000/sctp
 */
import { isIP } from "node:net";
import {
  NAMESPACE_LABEL,
  NAMESPACE_LABELS_PREFIX,
  SERVICE_ACCOUNT_LABEL,
} from "../../lib/identity/labels.js";
import { protocolNumber } from "../../lib/policy/ports.js";
import { UsageError } from "../../lib/usage-error.js";

export type EndpointArg =
  | { type: "pod"; namespace: string; pod: string }
  | { type: "address"; ip: string }
  | {
      type: "labels";
      namespace: string;
      labels: Record<string, string>;
      namespaceLabels: Record<string, string>;
      serviceAccount?: string;
    };

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function parseEndpointArg(flag: string, value: string): EndpointArg {
  const text = value.trim();
  if (isIP(text)) return { type: "address", ip: text };
  if (!text.includes("=")) {
    const [namespace, pod, extra] = text.split("/");
    if (extra !== undefined || !pod || !NAME.test(namespace) || !NAME.test(pod))
      throw new UsageError(`${flag}: "${value}" is not ns/pod, an IP address or labels (app=x,tier=y)`);
    return { type: "pod", namespace, pod };
  }
  const labels: Record<string, string> = {};
  const namespaceLabels: Record<string, string> = {};
  let namespace = "default";
  let serviceAccount: string | undefined;
  for (const pair of text.split(",")) {
    const eq = pair.indexOf("=");
    const key = pair
      .slice(0, eq)
      .trim()
      .replace(/^(k8s|any):/, "");
    const v = pair.slice(eq + 1).trim();
    if (eq <= 0 || key === "") throw new UsageError(`${flag}: "${pair}" is not key=value`);
    if (key === NAMESPACE_LABEL) namespace = v;
    else if (key === SERVICE_ACCOUNT_LABEL) serviceAccount = v;
    else if (key.startsWith(NAMESPACE_LABELS_PREFIX))
      namespaceLabels[key.slice(NAMESPACE_LABELS_PREFIX.length)] = v;
    else labels[key] = v;
  }
  return {
    type: "labels",
    namespace,
    labels,
    namespaceLabels,
    ...(serviceAccount ? { serviceAccount } : {}),
  };
}

export function parseDport(value: string): { port: number; protocol: number; text: string } {
  const [portText, protoText = "tcp", extra] = value.trim().split("/");
  const port = Number(portText);
  const protocol = protocolNumber(protoText);
  if (extra !== undefined || !/^\d+$/.test(portText) || port < 1 || port > 65535 || protocol === undefined)
    throw new UsageError(`--dport: "${value}" is not port[/protocol] (1..65535, tcp|udp|sctp), e.g. 80/tcp`);
  return { port, protocol, text: `${port}/${protoText.toUpperCase()}` };
}
