/**
 * JSON the way Go's encoding/json writes it, so our values are byte-identical to Cilium's (which
 * matters for "skip unchanged writes" and for golden tests):
 *   - plain objects are structs: fields in insertion (= struct declaration) order;
 *   - `Map`s are Go maps: keys sorted byte-wise (JS objects would hoist integer-like keys);
 *   - `<`, `>`, `&`, U+2028 and U+2029 are escaped as \u00XX, like Go's default HTML-safe encoder.
 * And the reading side: typed field accessors that turn a wrong shape into an InvalidEntryError.
 */
import { InvalidEntryError } from "./errors.js";

export type GoValue = string | number | boolean | null | GoValue[] | Map<string, GoValue> | GoStruct;
export interface GoStruct {
  [field: string]: GoValue | undefined;
}

const HTML_UNSAFE = /[<>&\u2028\u2029]/g;

function goString(text: string): string {
  return JSON.stringify(text).replace(
    HTML_UNSAFE,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Serialises like Go's json.Marshal. Struct fields set to `undefined` are omitted (omitempty). */
export function goMarshal(value: GoValue): string {
  if (value === null) return "null";
  if (typeof value === "string") return goString(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`cannot marshal ${value}`);
    return String(value);
  }
  if (typeof value === "boolean") return value ? "true" : "false";
  if (Array.isArray(value)) return `[${value.map(goMarshal).join(",")}]`;
  if (value instanceof Map) {
    const entries = [...value.entries()].sort(([a], [b]) => byteOrder(a, b));
    return `{${entries.map(([k, v]) => `${goString(k)}:${goMarshal(v)}`).join(",")}}`;
  }
  const fields = Object.entries(value).filter(([, v]) => v !== undefined) as [string, GoValue][];
  return `{${fields.map(([k, v]) => `${goString(k)}:${goMarshal(v)}`).join(",")}}`;
}

export function goMap<T>(record: Record<string, T> | ReadonlyMap<string, T>, convert: (v: T) => GoValue) {
  const entries = record instanceof Map ? [...record.entries()] : Object.entries(record);
  return new Map<string, GoValue>(entries.map(([k, v]) => [k, convert(v)]));
}

export const MAX_VALUE_BYTES = 1024 * 1024;

/** Parses untrusted bytes as a JSON object. */
export function parseJsonObject(key: string, raw: string | Buffer): Record<string, unknown> {
  if (raw.length > MAX_VALUE_BYTES) {
    throw new InvalidEntryError(key, "too-large", `value has ${raw.length} bytes (limit ${MAX_VALUE_BYTES})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof raw === "string" ? raw : raw.toString("utf8"));
  } catch (error) {
    throw new InvalidEntryError(key, "not-json", (error as Error).message, { cause: error });
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new InvalidEntryError(key, "wrong-type", `value is ${describe(parsed)}, expected a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`;
}

/**
 * Reads fields of one JSON object with Go's decoding rules: a missing field or `null` leaves the
 * zero value; any other type mismatch is an error. `path` names the object in error messages.
 */
export class FieldReader {
  constructor(
    readonly key: string,
    readonly object: Record<string, unknown>,
    readonly path = "",
  ) {}

  private where(field: string): string {
    return this.path ? `${this.path}.${field}` : field;
  }

  wrongType(field: string, expected: string): InvalidEntryError {
    return new InvalidEntryError(
      this.key,
      "wrong-type",
      `${this.where(field)} is ${describe(this.object[field])}, expected ${expected}`,
    );
  }

  has(field: string): boolean {
    return this.object[field] !== undefined && this.object[field] !== null;
  }

  string(field: string): string {
    const value = this.object[field];
    if (value === undefined || value === null) return "";
    if (typeof value !== "string") throw this.wrongType(field, "a string");
    return value;
  }

  bool(field: string): boolean {
    const value = this.object[field];
    if (value === undefined || value === null) return false;
    if (typeof value !== "boolean") throw this.wrongType(field, "a boolean");
    return value;
  }

  /** An unsigned integer of `bits` bits (Go uint8/16/32). */
  uint(field: string, bits: 8 | 16 | 32): number {
    const value = this.object[field];
    if (value === undefined || value === null) return 0;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value >= 2 ** bits) {
      throw this.wrongType(field, `an unsigned ${bits}-bit integer`);
    }
    return value;
  }

  /** A nested object, or undefined when absent/null. */
  object_(field: string): FieldReader | undefined {
    const value = this.object[field];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "object" || Array.isArray(value)) throw this.wrongType(field, "an object");
    return new FieldReader(this.key, value as Record<string, unknown>, this.where(field));
  }

  /** An array, or null when absent/null (Go nil slice). */
  array(field: string): unknown[] | null {
    const value = this.object[field];
    if (value === undefined || value === null) return null;
    if (!Array.isArray(value)) throw this.wrongType(field, "an array");
    return value;
  }

  /** Array element `index` of `field` as an object reader. */
  element(field: string, item: unknown, index: number): FieldReader {
    if (item === null || typeof item !== "object" || Array.isArray(item)) {
      throw new InvalidEntryError(
        this.key,
        "wrong-type",
        `${this.where(field)}[${index}] is ${describe(item)}, expected an object`,
      );
    }
    return new FieldReader(this.key, item as Record<string, unknown>, `${this.where(field)}[${index}]`);
  }

  /** A map[string]string, or null when absent/null (Go nil map). */
  stringMap(field: string): Record<string, string> | null {
    const value = this.object_(field);
    if (!value) return null;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(value.object)) {
      if (typeof v !== "string") throw value.wrongType(k, "a string");
      out[k] = v;
    }
    return out;
  }
}
