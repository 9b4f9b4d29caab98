/**
 * The L3/L4 part of CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy (cilium.io/v2,
 * https://github.com/cilium/cilium/blob/main/pkg/policy/api/rule.go, ingress.go, egress.go) →
 * ParsedPolicy. Pure.
 *
 * A rule (`spec`, or each of `specs`) selects endpoints with endpointSelector (a CNP adds its
 * namespace) and enforces a direction when it has allow or deny rules there, unless
 * enableDefaultDeny says false. Peers are the union of from/toEndpoints (scoped to the policy's
 * namespace for a CNP and to the local cluster unless they name one), from/toEntities, from/toCIDR
 * and from/toCIDRSet; a rule with no peer field but toPorts admits every peer on those ports, a rule
 * with neither (`{}`) admits nothing. What is outside L3/L4 (L7 rules, FQDNs, services, groups,
 * ICMP, requires, authentication, node selectors) is refused with the field, not silently widened.
 */
import { FieldErrors } from "./errors.js";
import type { ParseOptions } from "./network-policy.js";
import { ENTITIES, entityPeers, NAMESPACE_KEY, parseCidrPeer, scopeSelector } from "./peers.js";
import { parseCiliumPort } from "./ports.js";
import {
  egressNamedPortWarnings,
  type ParsedPolicy,
  type PeerSelector,
  type PolicyRule,
  type PolicySubject,
  type PortRule,
} from "./rules.js";
import { parseLabelSelector } from "./selector.js";
import type { PolicyDirection, PolicyKind, PolicyVerdict } from "./types.js";

type Json = Record<string, unknown>;
const isRecord = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const UNSUPPORTED: Record<string, string> = {
  toFQDNs: "DNS-based rules",
  toServices: "service-based rules",
  toGroups: "cloud-provider groups",
  fromGroups: "cloud-provider groups",
  fromRequires: "requirements",
  toRequires: "requirements",
  icmps: "ICMP rules",
  authentication: "mutual authentication",
  fromNodes: "node selectors",
  toNodes: "node selectors",
};
const RULE_FIELDS = new Set(["toPorts", "fromEndpoints", "toEndpoints", "fromEntities", "toEntities"]);

interface RuleContext {
  kind: PolicyKind;
  namespace?: string;
  name: string;
  spec?: number;
  clusterName: string;
  errors: FieldErrors;
}

function list(value: unknown, path: string, errors: FieldErrors): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    errors.add(path, "must be a list");
    return [];
  }
  return value;
}

function parseRule(
  item: unknown,
  path: string,
  direction: PolicyDirection,
  verdict: PolicyVerdict,
  index: number,
  ctx: RuleContext,
): PolicyRule {
  const { errors } = ctx;
  const rule: PolicyRule = {
    ref: {
      kind: ctx.kind,
      ...(ctx.namespace ? { namespace: ctx.namespace } : {}),
      name: ctx.name,
      direction,
      index,
      ...(ctx.spec !== undefined ? { spec: ctx.spec } : {}),
    },
    verdict,
    peers: [],
    ports: null,
  };
  if (!isRecord(item)) {
    errors.add(path, "must be an object");
    return rule;
  }
  const p = direction === "ingress" ? "from" : "to";
  const known = new Set([`${p}Endpoints`, `${p}Entities`, `${p}CIDR`, `${p}CIDRSet`, "toPorts"]);
  let anyPeerField = false;
  let everyPeer = false;
  const peers: PeerSelector[] = [];
  for (const [key, value] of Object.entries(item)) {
    const at = `${path}.${key}`;
    if (UNSUPPORTED[key]) {
      errors.add(at, `${UNSUPPORTED[key]} are not supported (L3/L4 policy only)`);
      continue;
    }
    if (!known.has(key)) {
      errors.add(
        at,
        RULE_FIELDS.has(key) || key.endsWith("CIDR") || key.endsWith("CIDRSet")
          ? `not valid in an ${direction} rule`
          : "unknown field",
      );
      continue;
    }
    if (key === "toPorts") continue;
    anyPeerField = true;
    list(value, at, errors).forEach((entry, i) => {
      const entryAt = `${at}[${i}]`;
      if (key.endsWith("Endpoints")) {
        const selector = parseLabelSelector(entry, entryAt, errors);
        if (selector)
          peers.push({
            type: "labels",
            selector: scopeSelector(selector, { clusterName: ctx.clusterName, namespace: ctx.namespace }),
          });
      } else if (key.endsWith("Entities")) {
        const entity = typeof entry === "string" ? entityPeers(entry, ctx.clusterName) : undefined;
        if (entity === undefined)
          errors.add(entryAt, `unknown entity ${JSON.stringify(entry)} (known: ${ENTITIES.join(", ")})`);
        else if (entity === null) everyPeer = true;
        else peers.push(...entity);
      } else if (key.endsWith("CIDRSet")) {
        if (!isRecord(entry)) {
          errors.add(entryAt, "must be an object (cidr, except)");
          return;
        }
        if (entry.cidrGroupRef !== undefined) {
          errors.add(`${entryAt}.cidrGroupRef`, "CiliumCIDRGroups are not supported");
          return;
        }
        const peer = parseCidrPeer(
          entry.cidr,
          entry.except,
          { cidr: `${entryAt}.cidr`, except: `${entryAt}.except` },
          errors,
        );
        if (peer) peers.push(peer);
      } else {
        const peer = parseCidrPeer(entry, undefined, { cidr: entryAt, except: entryAt }, errors);
        if (peer) peers.push(peer);
      }
    });
  }
  const toPorts = list(item.toPorts, `${path}.toPorts`, errors);
  if (toPorts.length > 0) {
    const ports: PortRule[] = [];
    toPorts.forEach((entry, i) => {
      const at = `${path}.toPorts[${i}]`;
      if (!isRecord(entry)) {
        errors.add(at, "must be an object (ports)");
        return;
      }
      for (const key of Object.keys(entry)) {
        if (key === "rules") errors.add(`${at}.rules`, "L7 rules are not supported (L3/L4 policy only)");
        else if (key !== "ports")
          errors.add(
            `${at}.${key}`,
            key === "terminatingTLS" ||
              key === "originatingTLS" ||
              key === "serverNames" ||
              key === "listener"
              ? "not supported (L3/L4 policy only)"
              : "unknown field",
          );
      }
      const items = list(entry.ports, `${at}.ports`, errors);
      if (items.length === 0 && entry.ports !== undefined) errors.add(`${at}.ports`, "must not be empty");
      items.forEach((port, j) => {
        ports.push(...parseCiliumPort(port, `${at}.ports[${j}]`, errors));
      });
    });
    rule.ports = ports;
  }
  // Cilium: a rule with only toPorts is L4-only (every peer); `{}` selects nothing
  if (everyPeer || (!anyPeerField && toPorts.length > 0)) rule.peers = null;
  else rule.peers = peers;
  return rule;
}

function parseSpec(spec: unknown, path: string, ctx: RuleContext): PolicySubject | undefined {
  const { errors } = ctx;
  if (!isRecord(spec)) {
    errors.add(path, "must be an object (endpointSelector, ingress, egress, …)");
    return undefined;
  }
  const allowed = new Set([
    "endpointSelector",
    "ingress",
    "ingressDeny",
    "egress",
    "egressDeny",
    "enableDefaultDeny",
    "description",
    "labels",
    "log",
  ]);
  for (const key of Object.keys(spec)) {
    if (key === "nodeSelector")
      errors.add(`${path}.nodeSelector`, "host policies are not supported (use endpointSelector)");
    else if (!allowed.has(key)) errors.add(`${path}.${key}`, "unknown field");
  }
  if (spec.endpointSelector === undefined) errors.add(`${path}.endpointSelector`, "missing");
  const selector =
    spec.endpointSelector === undefined
      ? undefined
      : parseLabelSelector(spec.endpointSelector, `${path}.endpointSelector`, errors);
  const rules: PolicyRule[] = [];
  const sections: Array<[string, PolicyDirection, PolicyVerdict]> = [
    ["ingress", "ingress", "allow"],
    ["ingressDeny", "ingress", "deny"],
    ["egress", "egress", "allow"],
    ["egressDeny", "egress", "deny"],
  ];
  const has = { ingress: false, egress: false };
  for (const [field, direction, verdict] of sections) {
    const items = list(spec[field], `${path}.${field}`, errors);
    if (items.length > 0) has[direction] = true;
    items.forEach((item, i) => {
      rules.push(parseRule(item, `${path}.${field}[${i}]`, direction, verdict, i, ctx));
    });
  }
  const enforce = { ...has };
  const defaultDeny = spec.enableDefaultDeny;
  if (defaultDeny !== undefined && defaultDeny !== null) {
    if (!isRecord(defaultDeny))
      errors.add(`${path}.enableDefaultDeny`, "must be an object (ingress, egress)");
    else
      for (const direction of ["ingress", "egress"] as const) {
        const flag = defaultDeny[direction];
        if (flag === undefined) continue;
        if (typeof flag !== "boolean")
          errors.add(`${path}.enableDefaultDeny.${direction}`, "must be true or false");
        else if (!flag) enforce[direction] = false;
      }
  }
  if (!selector) return undefined;
  const subject = ctx.namespace
    ? {
        requirements: [
          ...selector.requirements.filter((r) => r.key !== NAMESPACE_KEY),
          { key: NAMESPACE_KEY, operator: "In" as const, values: [ctx.namespace] },
        ],
      }
    : selector;
  return { selector: subject, enforce, rules };
}

/** Parses a CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy; `errors` lists every bad field. */
export function parseCiliumPolicy(
  object: unknown,
  options: ParseOptions,
): { policy?: ParsedPolicy; errors: FieldErrors } {
  const errors = new FieldErrors();
  if (!isRecord(object) || !isRecord(object.metadata)) {
    errors.add("metadata", "missing");
    return { errors };
  }
  const kind: PolicyKind =
    object.kind === "CiliumClusterwideNetworkPolicy"
      ? "CiliumClusterwideNetworkPolicy"
      : "CiliumNetworkPolicy";
  const name = String(object.metadata.name ?? "");
  const namespace = kind === "CiliumNetworkPolicy" ? String(object.metadata.namespace ?? "") : undefined;
  if (!name) errors.add("metadata.name", "missing");
  if (namespace === "") errors.add("metadata.namespace", "missing (CiliumNetworkPolicy is namespaced)");
  const base = { kind, ...(namespace ? { namespace } : {}), name, clusterName: options.clusterName, errors };
  const subjects: PolicySubject[] = [];
  if (object.spec === undefined && object.specs === undefined) errors.add("spec", "missing (spec or specs)");
  if (object.spec !== undefined) {
    const subject = parseSpec(object.spec, "spec", base);
    if (subject) subjects.push(subject);
  }
  if (object.specs !== undefined)
    list(object.specs, "specs", errors).forEach((spec, i) => {
      const subject = parseSpec(spec, `specs[${i}]`, { ...base, spec: i });
      if (subject) subjects.push(subject);
    });
  if (errors.list.length > 0) return { errors };
  const warnings = egressNamedPortWarnings(
    subjects.flatMap((subject) => subject.rules),
    (rule) =>
      `${rule.ref.spec !== undefined ? `specs[${rule.ref.spec}]` : "spec"}.egress${rule.verdict === "deny" ? "Deny" : ""}[${rule.ref.index}].toPorts`,
  );
  return { errors, policy: { kind, ...(namespace ? { namespace } : {}), name, subjects, warnings } };
}
