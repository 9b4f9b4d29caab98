/**
 * Kubernetes NetworkPolicy (networking.k8s.io/v1,
 * https://github.com/kubernetes/api/blob/master/networking/v1/types.go) → ParsedPolicy. Pure.
 *
 * Semantics kept exactly: policyTypes absent = Ingress, plus Egress when `egress` has rules; a
 * selected direction with no rules denies everything; a rule without `from`/`to` (or with an empty
 * list) admits every peer, without `ports` every port; a peer with podSelector only selects pods of
 * the policy's namespace, with namespaceSelector only every pod of the matching namespaces, with both
 * their intersection; `{}` selects all. Beyond Kubernetes: pod and namespace selectors match only the
 * local cluster (Cilium ≥ 1.19), and ipBlock matches addresses outside the cluster's pods, as in Cilium.
 */
import { NAMESPACE_LABELS_PREFIX } from "../identity/labels.js";
import { FieldErrors } from "./errors.js";
import { NAMESPACE_KEY, parseCidrPeer, scopeSelector } from "./peers.js";
import { parseNetworkPolicyPort } from "./ports.js";
import {
  egressNamedPortWarnings,
  type ParsedPolicy,
  type PeerSelector,
  type PolicyRule,
  type PortRule,
} from "./rules.js";
import { type LabelSelector, parseLabelSelector } from "./selector.js";
import type { PolicyDirection } from "./types.js";

export interface ParseOptions {
  /** the local cluster's name (selectors without a cluster label match only it) */
  clusterName: string;
}

type Json = Record<string, unknown>;
const isRecord = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const podKey = (key: string) => `k8s:${key}`;
const namespaceKey = (key: string) => `k8s:${NAMESPACE_LABELS_PREFIX}${key}`;

function listAt(value: unknown, path: string, errors: FieldErrors): unknown[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) {
    errors.add(path, "must be a list");
    return [];
  }
  return value;
}

function parsePeer(
  peer: unknown,
  path: string,
  namespace: string,
  options: ParseOptions,
  errors: FieldErrors,
) {
  if (!isRecord(peer)) {
    errors.add(path, "must be an object (podSelector, namespaceSelector or ipBlock)");
    return undefined;
  }
  const { podSelector, namespaceSelector, ipBlock, ...rest } = peer;
  for (const key of Object.keys(rest))
    if (rest[key] !== undefined) errors.add(`${path}.${key}`, "unknown field");
  if (ipBlock !== undefined) {
    if (podSelector !== undefined || namespaceSelector !== undefined)
      errors.add(path, "ipBlock cannot be combined with podSelector or namespaceSelector");
    if (!isRecord(ipBlock)) {
      errors.add(`${path}.ipBlock`, "must be an object (cidr, except)");
      return undefined;
    }
    return parseCidrPeer(
      ipBlock.cidr,
      ipBlock.except,
      { cidr: `${path}.ipBlock.cidr`, except: `${path}.ipBlock.except` },
      errors,
    );
  }
  if (podSelector === undefined && namespaceSelector === undefined) {
    errors.add(path, "must have podSelector, namespaceSelector or ipBlock");
    return undefined;
  }
  const pods =
    podSelector === undefined
      ? { requirements: [] }
      : parseLabelSelector(podSelector, `${path}.podSelector`, errors, podKey);
  if (namespaceSelector === undefined)
    return pods && labelsPeer(scopeSelector(pods, { clusterName: options.clusterName, namespace }));
  const namespaces = parseLabelSelector(namespaceSelector, `${path}.namespaceSelector`, errors, namespaceKey);
  if (!pods || !namespaces) return undefined;
  // the namespace selector replaces the policy's namespace; the requirement on the namespace's name
  // label (kubernetes.io/metadata.name) stays a namespace-labels requirement, which the pod's labels carry
  const selector = scopeSelector(
    { requirements: [...pods.requirements, ...namespaces.requirements] },
    { clusterName: options.clusterName },
  );
  return labelsPeer(selector);
}

const labelsPeer = (selector: LabelSelector): PeerSelector => ({ type: "labels", selector });

function parseRules(
  list: unknown[],
  direction: PolicyDirection,
  policy: { namespace: string; name: string },
  options: ParseOptions,
  errors: FieldErrors,
): PolicyRule[] {
  const peersField = direction === "ingress" ? "from" : "to";
  return list.map((item, index) => {
    const path = `spec.${direction}[${index}]`;
    const rule: PolicyRule = {
      ref: { kind: "NetworkPolicy", namespace: policy.namespace, name: policy.name, direction, index },
      verdict: "allow",
      peers: null,
      ports: null,
    };
    if (!isRecord(item)) {
      errors.add(path, `must be an object (${peersField}, ports)`);
      return rule;
    }
    // @kubernetes/client-node's typed objects call `from` `_from` (a reserved word in its generator)
    const { [peersField]: wirePeers, _from: typedFrom, ports: portsValue, ...rest } = item;
    const peersValue = wirePeers ?? (direction === "ingress" ? typedFrom : undefined);
    for (const key of Object.keys(rest))
      if (rest[key] !== undefined) errors.add(`${path}.${key}`, "unknown field");
    const peers = listAt(peersValue, `${path}.${peersField}`, errors);
    // absent or empty: every peer (Kubernetes: "If this field is empty or missing, this rule matches all sources")
    if (peers && peers.length > 0)
      rule.peers = peers
        .map((p, i) => parsePeer(p, `${path}.${peersField}[${i}]`, policy.namespace, options, errors))
        .filter((p): p is PeerSelector => p !== undefined);
    const ports = listAt(portsValue, `${path}.ports`, errors);
    if (ports && ports.length > 0)
      rule.ports = ports
        .map((p, i) => parseNetworkPolicyPort(p, `${path}.ports[${i}]`, errors))
        .filter((p): p is PortRule => p !== undefined);
    return rule;
  });
}

/** Parses a NetworkPolicy object; `errors` lists every bad field (then `policy` is undefined). */
export function parseNetworkPolicy(
  object: unknown,
  options: ParseOptions,
): { policy?: ParsedPolicy; errors: FieldErrors } {
  const errors = new FieldErrors();
  if (!isRecord(object) || !isRecord(object.metadata)) {
    errors.add("metadata", "missing");
    return { errors };
  }
  const name = String(object.metadata.name ?? "");
  const namespace = String(object.metadata.namespace ?? "");
  if (!name) errors.add("metadata.name", "missing");
  if (!namespace) errors.add("metadata.namespace", "missing (NetworkPolicy is namespaced)");
  const spec = object.spec;
  if (!isRecord(spec)) {
    errors.add("spec", "must be an object");
    return { errors };
  }
  const { podSelector, policyTypes, ingress, egress, ...rest } = spec;
  for (const key of Object.keys(rest))
    if (rest[key] !== undefined) errors.add(`spec.${key}`, "unknown field");
  const subject =
    podSelector === undefined
      ? { requirements: [] } // required by the API; absent in a hand-written object means {}
      : parseLabelSelector(podSelector, "spec.podSelector", errors, podKey);
  const ingressList = listAt(ingress, "spec.ingress", errors) ?? [];
  const egressList = listAt(egress, "spec.egress", errors) ?? [];
  const enforce = { ingress: true, egress: egressList.length > 0 };
  if (policyTypes !== undefined && policyTypes !== null) {
    if (!Array.isArray(policyTypes) || policyTypes.length === 0)
      errors.add("spec.policyTypes", "must be a non-empty list of Ingress and/or Egress");
    else {
      enforce.ingress = false;
      enforce.egress = false;
      policyTypes.forEach((type, i) => {
        if (type === "Ingress") enforce.ingress = true;
        else if (type === "Egress") enforce.egress = true;
        else errors.add(`spec.policyTypes[${i}]`, `must be Ingress or Egress (got ${JSON.stringify(type)})`);
      });
    }
  }
  const ref = { namespace, name };
  const rules = [
    ...(enforce.ingress ? parseRules(ingressList, "ingress", ref, options, errors) : []),
    ...(enforce.egress ? parseRules(egressList, "egress", ref, options, errors) : []),
  ];
  if (errors.list.length > 0 || !subject) return { errors };
  return {
    errors,
    policy: {
      kind: "NetworkPolicy",
      namespace,
      name,
      subjects: [
        {
          selector: {
            requirements: [
              ...subject.requirements,
              { key: NAMESPACE_KEY, operator: "In", values: [namespace] },
            ],
          },
          enforce,
          rules,
        },
      ],
      warnings: egressNamedPortWarnings(rules, (rule) => `spec.egress[${rule.ref.index}].ports`),
    },
  };
}
