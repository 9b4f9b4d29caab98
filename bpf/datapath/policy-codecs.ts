/** Codecs for the network policy maps (C in bpf/include/dp_types.h, layouts in layout.ts). */
import type { Codec } from "../libbpf-ts/index.js";
import { STRUCT_LAYOUTS as L } from "./layout.js";

export const PolicyDir = { ingress: 0, egress: 1 } as const;
export type PolicyDirCode = (typeof PolicyDir)[keyof typeof PolicyDir];

/** POLICY_LEVEL_*: which part of the port a cm_policy key matches on. */
export const PolicyLevel = { port: 0, block16: 1, block256: 2, proto: 3, any: 4 } as const;
export type PolicyLevelCode = (typeof PolicyLevel)[keyof typeof PolicyLevel];
export const POLICY_LEVELS = 5;

export const PolicyVerdictCode = { allow: 1, deny: 2 } as const;

/** endpoint_info.flags (EP_F_*). */
export const EndpointPolicyFlags = {
  ingressEnforced: 1 << 0,
  egressEnforced: 1 << 1,
  ingressLevelsShift: 2,
  egressLevelsShift: 12,
  policyIdShift: 22,
  maxPolicyId: 0x3ff,
} as const;

export interface PolicyMapKey {
  policyId: number;
  direction: PolicyDirCode;
  /** peer identity; 0 = any */
  identity: number;
  /** IANA protocol; 0 with level "any" */
  proto: number;
  /** host order: the port (level port), the first port of a 16- or 256-port block, else 0 */
  port: number;
  level: PolicyLevelCode;
}

export interface PolicyMapEntry {
  verdict: (typeof PolicyVerdictCode)[keyof typeof PolicyVerdictCode];
  /** the agent's rule number (cm_policy_drops key) */
  rule: number;
}

export const policyKeyCodec: Codec<PolicyMapKey> = {
  size: L.policy_key.size,
  encode(key, target, offset) {
    const m = L.policy_key.members;
    target.fill(0, offset, offset + this.size);
    target.writeUInt32LE(key.identity, offset + m.identity);
    target.writeUInt16LE(key.policyId, offset + m.policy_id);
    target.writeUInt16LE(key.port, offset + m.port);
    target[offset + m.proto] = key.proto;
    target[offset + m.direction] = key.direction;
    target[offset + m.level] = key.level;
  },
  decode(source, offset) {
    const m = L.policy_key.members;
    return {
      identity: source.readUInt32LE(offset + m.identity),
      policyId: source.readUInt16LE(offset + m.policy_id),
      port: source.readUInt16LE(offset + m.port),
      proto: source[offset + m.proto],
      direction: source[offset + m.direction] as PolicyDirCode,
      level: source[offset + m.level] as PolicyLevelCode,
    };
  },
};

export const policyEntryCodec: Codec<PolicyMapEntry> = {
  size: L.policy_entry.size,
  encode(value, target, offset) {
    const m = L.policy_entry.members;
    target.fill(0, offset, offset + this.size);
    target[offset + m.verdict] = value.verdict;
    target.writeUInt32LE(value.rule, offset + m.rule);
  },
  decode(source, offset) {
    const m = L.policy_entry.members;
    return {
      verdict: source[offset + m.verdict] as PolicyMapEntry["verdict"],
      rule: source.readUInt32LE(offset + m.rule),
    };
  },
};

export interface PolicyDropKey {
  policyId: number;
  direction: PolicyDirCode;
  /** 0: the default deny of an enforced direction (no entry matched) */
  rule: number;
}

export const policyDropKeyCodec: Codec<PolicyDropKey> = {
  size: L.policy_drop_key.size,
  encode(key, target, offset) {
    const m = L.policy_drop_key.members;
    target.fill(0, offset, offset + this.size);
    target.writeUInt16LE(key.policyId, offset + m.policy_id);
    target[offset + m.direction] = key.direction;
    target.writeUInt32LE(key.rule, offset + m.rule);
  },
  decode(source, offset) {
    const m = L.policy_drop_key.members;
    return {
      policyId: source.readUInt16LE(offset + m.policy_id),
      direction: source[offset + m.direction] as PolicyDirCode,
      rule: source.readUInt32LE(offset + m.rule),
    };
  },
};

/** A cm_policy_ct entry (dp_types.h struct policy_ct_entry). */
export interface PolicyCtEntry {
  /** bpf_ktime_get_coarse_ns() >> 30 when a packet last used it */
  lastSeen: number;
  /** the endpoint slot's policy revision when the connection was last judged (31 bits) */
  revision: number;
  /** the endpoint opened the connection (an egress request) */
  egress: boolean;
}

const POLICY_CT_F_EGRESS = 0x8000_0000;
/** Revisions are 31 bits (the top bit of the entry's word is POLICY_CT_F_EGRESS); they wrap. */
export const POLICY_REVISION_MASK = 0x7fff_ffff;

export const policyCtEntryCodec: Codec<PolicyCtEntry> = {
  size: L.policy_ct_entry.size,
  encode(value, target, offset) {
    const m = L.policy_ct_entry.members;
    target.writeUInt32LE(value.lastSeen >>> 0, offset + m.last_seen);
    const flags = value.egress ? POLICY_CT_F_EGRESS : 0;
    target.writeUInt32LE(((value.revision & POLICY_REVISION_MASK) | flags) >>> 0, offset + m.revision);
  },
  decode(source, offset) {
    const m = L.policy_ct_entry.members;
    const word = source.readUInt32LE(offset + m.revision);
    return {
      lastSeen: source.readUInt32LE(offset + m.last_seen),
      revision: word & POLICY_REVISION_MASK,
      egress: (word & POLICY_CT_F_EGRESS) !== 0,
    };
  },
};
