/**
 * `cilium/state/identities/v1/id/<N>` — the identity's sorted label list in Cilium's kvstore
 * format: `source:key=value;` per label, sorted by key (without source), trailing ";" required
 * (https://github.com/cilium/cilium/blob/main/pkg/labels/labels.go SortedList, written by https://github.com/cilium/cilium/blob/main/pkg/kvstore/allocator/allocator.go).
 */
import { InvalidEntryError } from "../errors.js";
import { MAX_VALUE_BYTES } from "../go-json.js";

export interface Label {
  source: string;
  key: string;
  value: string;
}

export const CLUSTER_LABEL_KEY = "io.cilium.k8s.policy.cluster";
export const K8S_SOURCE = "k8s";

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function formatLabels(labels: readonly Label[]): string {
  return [...labels]
    .sort((a, b) => byteOrder(a.key, b.key))
    .map((l) => `${l.source}:${l.key}=${l.value};`)
    .join("");
}

/** From the CRD's `security-labels` map ({"k8s:app": "x"}) — Cilium's Map2Labels + SortedList. */
export function labelsFromMap(securityLabels: Record<string, string>): Label[] {
  return Object.entries(securityLabels).map(([sourceAndKey, value]) => {
    const colon = sourceAndKey.indexOf(":");
    // Cilium's ParseSource: no source prefix means "unspec".
    return colon < 0
      ? { source: "unspec", key: sourceAndKey, value }
      : { source: sourceAndKey.slice(0, colon), key: sourceAndKey.slice(colon + 1), value };
  });
}

/** Parses a label list; rejects anything that is not `source:key=value;`… */
export function parseLabels(key: string, raw: string | Buffer): Label[] {
  if (raw.length > MAX_VALUE_BYTES)
    throw new InvalidEntryError(key, "too-large", `value has ${raw.length} bytes`);
  const text = typeof raw === "string" ? raw : raw.toString("utf8");
  if (text.length === 0) throw new InvalidEntryError(key, "bad-labels", "label list is empty");
  if (!text.endsWith(";")) throw new InvalidEntryError(key, "bad-labels", 'label list does not end with ";"');
  const labels: Label[] = [];
  for (const item of text.slice(0, -1).split(";")) {
    const colon = item.indexOf(":");
    const equals = item.indexOf("=", colon + 1);
    if (colon <= 0 || equals < 0 || equals === colon + 1) {
      throw new InvalidEntryError(key, "bad-labels", `"${item}" is not source:key=value`);
    }
    labels.push({
      source: item.slice(0, colon),
      key: item.slice(colon + 1, equals),
      value: item.slice(equals + 1),
    });
  }
  return labels;
}

/** Parses an identity key suffix: a canonical decimal (no sign, no leading zeros). */
export function parseIdentityId(key: string, suffix: string): number {
  if (!/^(0|[1-9]\d{0,9})$/.test(suffix) || Number(suffix) >= 2 ** 32) {
    throw new InvalidEntryError(key, "bad-key", `"${suffix}" is not a numeric identity`);
  }
  return Number(suffix);
}
