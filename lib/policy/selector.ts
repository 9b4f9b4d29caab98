/**
 * Label selectors over security labels (Kubernetes' LabelSelector: matchLabels + matchExpressions,
 * https://github.com/kubernetes/apimachinery/blob/master/pkg/apis/meta/v1/types.go), compiled to a list
 * of requirements that must all hold. Keys carry their source as Cilium's do (`k8s:app`,
 * `reserved:host`); a key without a source, or with Cilium's `any:`, means the `k8s:` label, the only
 * source our identities' non-reserved labels have.
 */
import { LABEL_SOURCE, type SecurityLabels } from "../identity/labels.js";
import type { FieldErrors } from "./errors.js";

export type SelectorOperator = "In" | "NotIn" | "Exists" | "DoesNotExist";
const OPERATORS: readonly SelectorOperator[] = ["In", "NotIn", "Exists", "DoesNotExist"];

export interface Requirement {
  /** label key with its source, e.g. `k8s:app` */
  key: string;
  operator: SelectorOperator;
  /** sorted; empty for Exists / DoesNotExist */
  values: string[];
}

/** All requirements must hold; no requirement selects every identity. */
export interface LabelSelector {
  requirements: Requirement[];
}

export function sourcedKey(key: string): string {
  const colon = key.indexOf(":");
  if (colon < 0) return `${LABEL_SOURCE}:${key}`;
  if (key.slice(0, colon) === "any") return `${LABEL_SOURCE}:${key.slice(colon + 1)}`;
  return key;
}

function requirementMatches(requirement: Requirement, labels: SecurityLabels): boolean {
  const value = labels.get(requirement.key);
  switch (requirement.operator) {
    case "In":
      return value !== undefined && requirement.values.includes(value);
    case "NotIn":
      return value === undefined || !requirement.values.includes(value);
    case "Exists":
      return value !== undefined;
    case "DoesNotExist":
      return value === undefined;
  }
}

export function selectorMatches(selector: LabelSelector, labels: SecurityLabels): boolean {
  for (const requirement of selector.requirements) if (!requirementMatches(requirement, labels)) return false;
  return true;
}

/** Canonical text of a selector: equal selectors share one cache entry. */
export function selectorKey(selector: LabelSelector): string {
  return selector.requirements
    .map((r) => `${r.key} ${r.operator} ${r.values.join(",")}`)
    .sort()
    .join(" & ");
}

export function hasRequirementOn(selector: LabelSelector, key: string): boolean {
  return selector.requirements.some((r) => r.key === key);
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Parses a Kubernetes LabelSelector object at `path`. `mapKey` turns a written key into the label key
 * matched (NetworkPolicy's namespaceSelector prefixes the namespace-labels key, for instance).
 * Returns undefined after recording errors.
 */
export function parseLabelSelector(
  value: unknown,
  path: string,
  errors: FieldErrors,
  mapKey: (key: string) => string = sourcedKey,
): LabelSelector | undefined {
  if (!isRecord(value)) {
    errors.add(path, "must be a label selector object (matchLabels, matchExpressions)");
    return undefined;
  }
  const before = errors.list.length;
  const requirements: Requirement[] = [];
  const { matchLabels, matchExpressions } = value;
  if (matchLabels !== undefined && matchLabels !== null) {
    if (!isRecord(matchLabels)) errors.add(`${path}.matchLabels`, "must be a map of label key to value");
    else
      for (const [key, v] of Object.entries(matchLabels)) {
        if (typeof v !== "string") errors.add(`${path}.matchLabels.${key}`, "must be a string");
        else if (key === "") errors.add(`${path}.matchLabels`, "has an empty key");
        else requirements.push({ key: mapKey(key), operator: "In", values: [v] });
      }
  }
  if (matchExpressions !== undefined && matchExpressions !== null) {
    if (!Array.isArray(matchExpressions)) errors.add(`${path}.matchExpressions`, "must be a list");
    else
      matchExpressions.forEach((expression, i) => {
        const at = `${path}.matchExpressions[${i}]`;
        if (!isRecord(expression)) {
          errors.add(at, "must be an object (key, operator, values)");
          return;
        }
        const { key, operator, values } = expression;
        if (typeof key !== "string" || key === "") errors.add(`${at}.key`, "must be a non-empty string");
        if (!OPERATORS.includes(operator as SelectorOperator))
          errors.add(
            `${at}.operator`,
            `must be one of ${OPERATORS.join(", ")} (got ${JSON.stringify(operator)})`,
          );
        const list = values ?? [];
        if (!Array.isArray(list) || list.some((v) => typeof v !== "string")) {
          errors.add(`${at}.values`, "must be a list of strings");
          return;
        }
        const op = operator as SelectorOperator;
        if ((op === "In" || op === "NotIn") && list.length === 0)
          errors.add(`${at}.values`, `must not be empty for operator ${op}`);
        if ((op === "Exists" || op === "DoesNotExist") && list.length > 0)
          errors.add(`${at}.values`, `must be empty for operator ${op}`);
        if (typeof key === "string" && key !== "")
          requirements.push({
            key: mapKey(key),
            operator: op,
            values: [...new Set(list as string[])].sort(),
          });
      });
  }
  for (const key of Object.keys(value))
    if (key !== "matchLabels" && key !== "matchExpressions") errors.add(`${path}.${key}`, "unknown field");
  return errors.list.length > before ? undefined : { requirements };
}
