/** Label and field selectors, as list and watch take them in `?labelSelector=` and `?fieldSelector=`. */

export type LabelRequirement =
  | { key: string; op: "exists" | "notExists" }
  | { key: string; op: "in" | "notIn"; values: string[] }
  | { key: string; op: "gt" | "lt"; value: number };

export type Labels = Record<string, string> | undefined;

class SelectorSyntaxError extends Error {}

export { SelectorSyntaxError };

/** Splits on commas that are not inside parentheses: `a in (x,y),b` → [`a in (x,y)`, `b`]. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  for (const char of text) {
    if (char === "(") depth++;
    if (char === ")") depth--;
    if (char === "," && depth === 0) {
      parts.push(current);
      current = "";
    } else current += char;
  }
  if (depth !== 0) throw new SelectorSyntaxError(`unbalanced parentheses in "${text}"`);
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

function checkKey(key: string): string {
  if (!LABEL_KEY.test(key)) throw new SelectorSyntaxError(`invalid label key "${key}"`);
  return key;
}

function checkValue(value: string): string {
  if (!LABEL_VALUE.test(value) || value.length > 63)
    throw new SelectorSyntaxError(`invalid label value "${value}"`);
  return value;
}

export function parseLabelSelector(text: string | undefined): LabelRequirement[] {
  if (!text) return [];
  return splitTopLevel(text).map((part): LabelRequirement => {
    const setMatch = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(part);
    if (setMatch) {
      const values = setMatch[3]
        .split(",")
        .map((v) => v.trim())
        .filter((v) => v !== "")
        .map(checkValue);
      return { key: checkKey(setMatch[1]), op: setMatch[2] === "in" ? "in" : "notIn", values };
    }
    if (part.startsWith("!")) return { key: checkKey(part.slice(1).trim()), op: "notExists" };
    const opMatch = /^([^=!<>\s]+)\s*(==|!=|=|<|>)\s*(.*)$/.exec(part);
    if (opMatch) {
      const [, key, op, value] = opMatch;
      if (op === "<" || op === ">") {
        const n = Number(value);
        if (!/^-?\d+$/.test(value)) throw new SelectorSyntaxError(`"${value}" is not an integer`);
        return { key: checkKey(key), op: op === "<" ? "lt" : "gt", value: n };
      }
      return { key: checkKey(key), op: op === "!=" ? "notIn" : "in", values: [checkValue(value)] };
    }
    if (/\s/.test(part)) throw new SelectorSyntaxError(`unable to parse requirement "${part}"`);
    return { key: checkKey(part), op: "exists" };
  });
}

export function matchesLabels(requirements: LabelRequirement[], labels: Labels): boolean {
  const all = labels ?? {};
  return requirements.every((r) => {
    const has = Object.hasOwn(all, r.key);
    const value = all[r.key];
    switch (r.op) {
      case "exists":
        return has;
      case "notExists":
        return !has;
      case "in":
        return has && r.values.includes(value);
      case "notIn":
        return !has || !r.values.includes(value);
      case "gt":
        return has && /^-?\d+$/.test(value) && Number(value) > r.value;
      case "lt":
        return has && /^-?\d+$/.test(value) && Number(value) < r.value;
    }
    return false;
  });
}

/** A metav1.LabelSelector (matchLabels + matchExpressions), as Deployments and Services carry. */
export interface LabelSelectorObject {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

export function requirementsFromObject(selector: LabelSelectorObject): LabelRequirement[] {
  const requirements: LabelRequirement[] = Object.entries(selector.matchLabels ?? {}).map(([key, value]) => ({
    key,
    op: "in" as const,
    values: [value],
  }));
  for (const e of selector.matchExpressions ?? []) {
    const op = { In: "in", NotIn: "notIn", Exists: "exists", DoesNotExist: "notExists" }[e.operator];
    if (!op) throw new SelectorSyntaxError(`"${e.operator}" is not a valid label selector operator`);
    if (op === "in" || op === "notIn")
      requirements.push({ key: e.key, op: op as "in" | "notIn", values: e.values ?? [] });
    else requirements.push({ key: e.key, op: op as "exists" | "notExists" });
  }
  return requirements;
}

export interface FieldRequirement {
  path: string;
  equal: boolean;
  value: string;
}

/** Splits on an unescaped separator; field selector values may contain `\,` `\=` `\\`. */
function splitEscaped(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = "";
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "\\" && i + 1 < text.length) {
      current += text[i] + text[i + 1];
      i++;
    } else if (text[i] === separator) {
      parts.push(current);
      current = "";
    } else current += text[i];
  }
  parts.push(current);
  return parts;
}

function unescapeValue(text: string): string {
  return text.replace(/\\(.)/g, "$1");
}

export function parseFieldSelector(text: string | undefined): FieldRequirement[] {
  if (!text) return [];
  return splitEscaped(text, ",")
    .map((p) => p.trim())
    .filter((p) => p !== "")
    .map((part) => {
      const m = /^([A-Za-z0-9_.\-/]+)\s*(==|!=|=)(.*)$/.exec(part);
      if (!m) throw new SelectorSyntaxError(`invalid field selector requirement "${part}"`);
      return { path: m[1], equal: m[2] !== "!=", value: unescapeValue(m[3]) };
    });
}

/**
 * The value a field selector compares: the object's field at a dotted path as a string, "" when
 * absent. Any path works (metadata.name, spec.nodeName, status.phase, involvedObject.uid…), which
 * is more lenient than kube-apiserver's per-kind list but answers the same for the ones it knows.
 */
export function fieldValue(object: unknown, path: string): string {
  let current: unknown = object;
  for (const segment of path.split(".")) {
    if (current === null || typeof current !== "object") return "";
    current = (current as Record<string, unknown>)[segment];
  }
  if (current === undefined || current === null) return "";
  return typeof current === "object" ? JSON.stringify(current) : String(current);
}

export function matchesFields(requirements: FieldRequirement[], object: unknown): boolean {
  return requirements.every((r) => (fieldValue(object, r.path) === r.value) === r.equal);
}

/** A parsed label + field selector pair, applied to lists and watch events alike. */
export interface ObjectFilter {
  labels: LabelRequirement[];
  fields: FieldRequirement[];
}

export function matchesFilter(filter: ObjectFilter, object: { metadata?: { labels?: Labels } }): boolean {
  return matchesLabels(filter.labels, object.metadata?.labels) && matchesFields(filter.fields, object);
}
