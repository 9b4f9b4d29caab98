/**
 * The identity allocator's part of the identity space (Cilium:
 * https://github.com/cilium/cilium/blob/main/pkg/identity/numericidentity.go): per-cluster ranges,
 * the identity key's length limit and the deterministic candidate ids. The labels themselves are
 * shared with the policy resolver and live in lib/identity/labels.ts (re-exported here).
 */
import { CLUSTER_ID_SHIFT } from "../../lib/identity/labels.js";

export * from "../../lib/identity/labels.js";

/** Longest identity key accepted; longer label sets are refused (the pod's ADD fails, see identity errors). */
export const MAX_IDENTITY_KEY_LENGTH = 2048;

export const IDENTITIES_PER_CLUSTER = (1 << CLUSTER_ID_SHIFT) - 1;

export class IdentityKeyTooLongError extends Error {}

/** Throws when the label set's key is too long to be an identity (logged with the pod by the caller). */
export function checkIdentityKey(key: string): void {
  if (key.length > MAX_IDENTITY_KEY_LENGTH) {
    throw new IdentityKeyTooLongError(
      `security labels make an identity key of ${key.length} characters (limit ${MAX_IDENTITY_KEY_LENGTH})`,
    );
  }
}

export function clusterIdentityRange(clusterId: number): { first: number; last: number } {
  if (!Number.isInteger(clusterId) || clusterId < 1 || clusterId > 255)
    throw new RangeError(`cluster id ${clusterId}`);
  const first = clusterId << CLUSTER_ID_SHIFT;
  return { first, last: first + IDENTITIES_PER_CLUSTER };
}

/** FNV-1a 32-bit: stable across processes and versions, so every agent probes the same ids. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, "utf8")) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/**
 * The attempt-th candidate id for a key: deterministic, so concurrent agents try the same ids in the
 * same order and converge on one (create-if-absent decides). Never the range's first id (C << 16).
 */
export function candidateIdentity(key: string, clusterId: number, attempt: number): number {
  const { first } = clusterIdentityRange(clusterId);
  return first + 1 + ((fnv1a(key) + attempt) % IDENTITIES_PER_CLUSTER);
}
