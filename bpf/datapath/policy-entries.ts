/**
 * Pure: one endpoint's policy (lib/policy/types.ts, as the resolver states it) → the cm_policy
 * entries and endpoint flags the datapath probes (bpf/include/dp_policy.h).
 *  - port ranges become exact ports plus 16- and 256-aligned blocks (the largest aligned block that
 *    fits at each step), so a packet's lookups stay exact-key; 1000-2000 is 26 keys;
 *    a range over every port is the protocol's wildcard;
 *  - "deny wins" is resolved here: the datapath takes the first entry it finds, most specific first
 *    (peer identity before identity 0; port, blocks, protocol, any protocol), so an allow entry that
 *    a deny entry found later would also match becomes a deny entry for the overlap.
 *  - the levels the endpoint uses go into its flags: the datapath skips probes that cannot hit.
 */
import {
  type EndpointPolicy,
  type PolicyKey,
  type PolicyRuleRef,
  type PolicyValue,
  policyKeyString,
} from "../../lib/policy/types.js";
import {
  EndpointPolicyFlags,
  POLICY_LEVELS,
  PolicyDir,
  type PolicyDirCode,
  PolicyLevel,
  type PolicyLevelCode,
  type PolicyMapEntry,
  type PolicyMapKey,
  PolicyVerdictCode,
} from "./policy-codecs.js";

const MAX_PORT = 0xffff;

export type PolicyMapEntries = Map<string, readonly [PolicyMapKey, PolicyMapEntry]>;

export interface FlattenedPolicy {
  /** EP_F_* bits for endpoint_info.flags */
  flags: number;
  entries: PolicyMapEntries;
  /** entries refused (not written), with the field at fault */
  rejected: Array<{ key: string; field: string; reason: string }>;
}

export const policyMapKeyString = (key: PolicyMapKey): string =>
  `${key.policyId}/${key.direction}/${key.identity}/${key.proto}/${key.level}/${key.port}`;

interface L4 {
  proto: number;
  level: PolicyLevelCode;
  port: number;
}

/** Why an entry cannot be written, naming the PolicyKey field; undefined when it is valid. */
function invalidField(key: PolicyKey): { field: string; reason: string } | undefined {
  const isInt = (value: number, max: number) => Number.isInteger(value) && value >= 0 && value <= max;
  if (!isInt(key.identity, 0xffff_ffff))
    return { field: "identity", reason: `not an identity: ${key.identity}` };
  if (!isInt(key.protocol, 255)) return { field: "protocol", reason: `not an IP protocol: ${key.protocol}` };
  if (!isInt(key.port, MAX_PORT)) return { field: "port", reason: `not a port: ${key.port}` };
  if (!isInt(key.endPort, MAX_PORT)) return { field: "endPort", reason: `not a port: ${key.endPort}` };
  if (key.protocol === 0 && (key.port !== 0 || key.endPort !== 0))
    return { field: "port", reason: "a port needs a protocol" };
  if (key.port !== 0 && key.endPort !== 0 && key.endPort < key.port)
    return { field: "endPort", reason: `range reversed: ${key.port}-${key.endPort}` };
  return undefined;
}

/** The exact-key port levels one PolicyKey's protocol and port range cover. */
export function expandPorts(key: Pick<PolicyKey, "protocol" | "port" | "endPort">): L4[] {
  if (key.protocol === 0) return [{ proto: 0, level: PolicyLevel.any, port: 0 }];
  const end = key.endPort || key.port;
  if (key.port === 0 || (key.port <= 1 && end === MAX_PORT))
    return [{ proto: key.protocol, level: PolicyLevel.proto, port: 0 }];
  const out: L4[] = [];
  for (let port = key.port; port <= end; ) {
    if (port % 256 === 0 && port + 255 <= end) {
      out.push({ proto: key.protocol, level: PolicyLevel.block256, port });
      port += 256;
    } else if (port % 16 === 0 && port + 15 <= end) {
      out.push({ proto: key.protocol, level: PolicyLevel.block16, port });
      port += 16;
    } else {
      out.push({ proto: key.protocol, level: PolicyLevel.port, port });
      port += 1;
    }
  }
  return out;
}

/** Whether every packet that matches b also matches a (both of the same identity). */
function covers(a: L4, b: L4): boolean {
  if (a.level === PolicyLevel.any) return true;
  if (a.proto !== b.proto || b.level === PolicyLevel.any) return false;
  if (a.level === PolicyLevel.proto) return true;
  if (b.level === PolicyLevel.proto) return false;
  return a.port <= b.port && b.port + blockSize(b.level) <= a.port + blockSize(a.level);
}

function blockSize(level: PolicyLevelCode): number {
  return level === PolicyLevel.block256 ? 256 : level === PolicyLevel.block16 ? 16 : 1;
}

interface Atom extends L4 {
  direction: PolicyDirCode;
  identity: number;
  entry: PolicyMapEntry;
}

export interface FlattenOptions {
  /** the endpoint's policy slot, 1..4095 */
  policyId: number;
  /** the node-wide number of a rule (counted in cm_policy_drops); stable while the rule exists */
  ruleNumber: (rule: PolicyRuleRef) => number;
}

export function flattenEndpointPolicy(
  policy: Omit<EndpointPolicy, "endpoint">,
  options: FlattenOptions,
): FlattenedPolicy {
  const { policyId } = options;
  if (!Number.isInteger(policyId) || policyId < 1 || policyId > EndpointPolicyFlags.maxPolicyId)
    throw new RangeError(`policyId ${policyId} outside 1..${EndpointPolicyFlags.maxPolicyId}`);
  const rejected: FlattenedPolicy["rejected"] = [];
  const allows: Atom[] = [];
  const denies = new Map<string, Atom[]>(); // by direction/identity
  for (const [key, value] of policy.entries as ReadonlyArray<readonly [PolicyKey, PolicyValue]>) {
    // an unenforced direction allows everything but what a deny entry names (a policy without
    // default deny): its allow entries mean nothing there
    if (!policy.enforced[key.direction] && value.verdict === "allow") continue;
    const invalid = invalidField(key);
    if (invalid) {
      rejected.push({ key: policyKeyString(key), ...invalid });
      continue;
    }
    const direction = PolicyDir[key.direction];
    const entry: PolicyMapEntry = {
      verdict: PolicyVerdictCode[value.verdict],
      rule: options.ruleNumber(value.rule),
    };
    for (const l4 of expandPorts(key)) {
      const atom: Atom = { ...l4, direction, identity: key.identity, entry };
      if (value.verdict === "allow") allows.push(atom);
      else {
        const group = `${direction}/${key.identity}`;
        const list = denies.get(group);
        if (list) list.push(atom);
        else denies.set(group, [atom]);
      }
    }
  }

  const entries: PolicyMapEntries = new Map();
  const put = (atom: Atom, l4: L4, identity: number, entry: PolicyMapEntry) => {
    const key: PolicyMapKey = {
      policyId,
      direction: atom.direction,
      identity,
      proto: l4.proto,
      level: l4.level,
      port: l4.port,
    };
    entries.set(policyMapKeyString(key), [key, entry]);
  };
  for (const atom of allows) put(atom, atom, atom.identity, atom.entry);
  for (const list of denies.values()) for (const atom of list) put(atom, atom, atom.identity, atom.entry);
  // an allow probed before a deny that also matches some of its packets: the overlap is denied
  for (const allow of allows) {
    const sameIdentity = denies.get(`${allow.direction}/${allow.identity}`) ?? [];
    const anyIdentity = allow.identity === 0 ? [] : (denies.get(`${allow.direction}/0`) ?? []);
    for (const deny of sameIdentity) {
      if (covers(deny, allow)) put(allow, allow, allow.identity, deny.entry);
    }
    for (const deny of anyIdentity) {
      if (covers(deny, allow)) put(allow, allow, allow.identity, deny.entry);
      else if (covers(allow, deny)) put(allow, deny, allow.identity, deny.entry);
    }
  }

  let ingressLevels = 0;
  let egressLevels = 0;
  for (const [key] of entries.values()) {
    const bit = 1 << (key.level + (key.identity === 0 ? POLICY_LEVELS : 0));
    if (key.direction === PolicyDir.ingress) ingressLevels |= bit;
    else egressLevels |= bit;
  }
  const F = EndpointPolicyFlags;
  const flags =
    ((policy.enforced.ingress ? F.ingressEnforced : 0) |
      (policy.enforced.egress ? F.egressEnforced : 0) |
      (ingressLevels << F.ingressLevelsShift) |
      (egressLevels << F.egressLevelsShift) |
      (policyId << F.policyIdShift)) >>>
    0;
  return { flags, entries, rejected };
}

/** The cm_policy writes that turn previous into next (deletes of keys next no longer has). */
export function diffPolicyEntries(
  previous: ReadonlyMap<string, readonly [PolicyMapKey, PolicyMapEntry]>,
  next: ReadonlyMap<string, readonly [PolicyMapKey, PolicyMapEntry]>,
): { upserts: Array<readonly [PolicyMapKey, PolicyMapEntry]>; deletes: PolicyMapKey[] } {
  const upserts: Array<readonly [PolicyMapKey, PolicyMapEntry]> = [];
  const deletes: PolicyMapKey[] = [];
  for (const [id, pair] of next) {
    const old = previous.get(id);
    if (!old || old[1].verdict !== pair[1].verdict || old[1].rule !== pair[1].rule) upserts.push(pair);
  }
  for (const [id, [key]] of previous) if (!next.has(id)) deletes.push(key);
  return { upserts, deletes };
}
