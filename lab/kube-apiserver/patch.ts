/**
 * The patch formats the API server accepts: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and
 * strategic merge patch (lists of known kinds merged by key, the `$patch`, `$setElementOrder`,
 * `$retainKeys` and `$deleteFromPrimitiveList` directives kubectl sends). Pure functions on JSON values.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export class PatchError extends Error {}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function clone<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

export function jsonMergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const result: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = jsonMergePatch(result[key] ?? null, value);
  }
  return result;
}

interface JsonPatchOperation {
  op: string;
  path: string;
  from?: string;
  value?: Json;
}

function parsePointer(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw new PatchError(`invalid JSON pointer "${pointer}"`);
  return pointer
    .slice(1)
    .split("/")
    .map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function resolveParent(root: Json, tokens: string[], pointer: string): { parent: Json; last: string } {
  let current = root;
  for (const token of tokens.slice(0, -1)) {
    if (Array.isArray(current)) current = current[Number(token)];
    else if (isObject(current)) current = current[token];
    else current = undefined as unknown as Json;
    if (current === undefined || current === null)
      throw new PatchError(`path "${pointer}" does not exist in the object`);
  }
  return { parent: current, last: tokens[tokens.length - 1] };
}

function arrayIndex(array: Json[], token: string, pointer: string, forInsert: boolean): number {
  if (forInsert && token === "-") return array.length;
  if (!/^(0|[1-9]\d*)$/.test(token)) throw new PatchError(`invalid array index "${token}" in "${pointer}"`);
  const index = Number(token);
  if (index > array.length || (!forInsert && index === array.length))
    throw new PatchError(`array index ${index} out of range in "${pointer}"`);
  return index;
}

function getAt(root: Json, pointer: string): Json {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) return root;
  const { parent, last } = resolveParent(root, tokens, pointer);
  const value = Array.isArray(parent)
    ? parent[arrayIndex(parent, last, pointer, false)]
    : isObject(parent)
      ? parent[last]
      : undefined;
  if (value === undefined) throw new PatchError(`path "${pointer}" does not exist in the object`);
  return value;
}

function removeAt(root: Json, pointer: string): Json {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) throw new PatchError("cannot remove the whole document");
  const { parent, last } = resolveParent(root, tokens, pointer);
  if (Array.isArray(parent)) return parent.splice(arrayIndex(parent, last, pointer, false), 1)[0];
  if (isObject(parent) && Object.hasOwn(parent, last)) {
    const value = parent[last];
    delete parent[last];
    return value;
  }
  throw new PatchError(`path "${pointer}" does not exist in the object`);
}

function addAt(root: Json, pointer: string, value: Json): Json {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) return value;
  const { parent, last } = resolveParent(root, tokens, pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, pointer, true), 0, value);
  else if (isObject(parent)) parent[last] = value;
  else throw new PatchError(`path "${pointer}" has no parent object`);
  return root;
}

export function jsonPatch(target: Json, operations: unknown): Json {
  if (!Array.isArray(operations)) throw new PatchError("a JSON patch must be an array of operations");
  let doc = clone(target);
  for (const raw of operations as JsonPatchOperation[]) {
    if (!isObject(raw as unknown) || typeof raw.path !== "string")
      throw new PatchError("every JSON patch operation needs an op and a path");
    switch (raw.op) {
      case "add":
        if (raw.value === undefined) throw new PatchError(`"add" at "${raw.path}" has no value`);
        doc = addAt(doc, raw.path, clone(raw.value));
        break;
      case "remove":
        removeAt(doc, raw.path);
        break;
      case "replace":
        if (raw.value === undefined) throw new PatchError(`"replace" at "${raw.path}" has no value`);
        if (raw.path === "") doc = clone(raw.value);
        else {
          removeAt(doc, raw.path);
          doc = addAt(doc, raw.path, clone(raw.value));
        }
        break;
      case "move": {
        const value = removeAt(doc, raw.from ?? "");
        doc = addAt(doc, raw.path, value);
        break;
      }
      case "copy":
        doc = addAt(doc, raw.path, clone(getAt(doc, raw.from ?? "")));
        break;
      case "test":
        if (JSON.stringify(getAt(doc, raw.path)) !== JSON.stringify(raw.value))
          throw new PatchError(`test operation at "${raw.path}" failed`);
        break;
      default:
        throw new PatchError(`unknown JSON patch operation "${raw.op}"`);
    }
  }
  return doc;
}

/**
 * The patchMergeKey of a list field, from the Kubernetes API types' struct tags. `path` is the field
 * names leading to the list (list indexes left out), e.g. ["spec","template","spec","containers","ports"].
 */
export function mergeKeyFor(path: string[]): string | undefined {
  const field = path[path.length - 1];
  const parent = path[path.length - 2];
  switch (field) {
    case "containers":
    case "initContainers":
    case "ephemeralContainers":
    case "env":
    case "volumes":
    case "imagePullSecrets":
      return "name";
    case "volumeMounts":
      return "mountPath";
    case "volumeDevices":
      return "devicePath";
    case "hostAliases":
      return "ip";
    case "conditions":
    case "addresses":
      return parent === "status" ? "type" : undefined;
    case "ownerReferences":
      return "uid";
    case "ports":
      if (["containers", "initContainers", "ephemeralContainers"].includes(parent)) return "containerPort";
      return parent === "spec" ? "port" : undefined;
    default:
      return undefined;
  }
}

/** Primitive lists whose patchStrategy is merge (a set union): metadata.finalizers. */
function isMergedPrimitiveList(path: string[]): boolean {
  return path.length === 2 && path[0] === "metadata" && path[1] === "finalizers";
}

const SET_ORDER = "$setElementOrder/";
const DELETE_FROM = "$deleteFromPrimitiveList/";

export function strategicMergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) throw new PatchError("a strategic merge patch must be a JSON object");
  return mergeObject(isObject(target) ? target : {}, patch, []) ?? {};
}

function mergeObject(original: JsonObject, patch: JsonObject, path: string[]): JsonObject | undefined {
  const directive = patch.$patch;
  if (directive === "delete") return undefined;
  if (directive === "replace") {
    const { $patch: _ignored, ...rest } = patch;
    return clone(rest);
  }
  if (directive !== undefined) throw new PatchError(`unknown $patch directive "${String(directive)}"`);
  let result: JsonObject = { ...original };
  const retainKeys = patch.$retainKeys;
  if (Array.isArray(retainKeys)) {
    result = Object.fromEntries(Object.entries(result).filter(([k]) => retainKeys.includes(k)));
  }
  const orders: Record<string, Json[]> = {};
  for (const [key, value] of Object.entries(patch)) {
    if (key === "$retainKeys") continue;
    if (key.startsWith(SET_ORDER)) {
      if (Array.isArray(value)) orders[key.slice(SET_ORDER.length)] = value;
      continue;
    }
    if (key.startsWith(DELETE_FROM)) {
      const field = key.slice(DELETE_FROM.length);
      const current = result[field];
      if (Array.isArray(current) && Array.isArray(value)) {
        result[field] = current.filter(
          (item) => !value.some((v) => JSON.stringify(v) === JSON.stringify(item)),
        );
      }
      continue;
    }
    if (key.startsWith("$")) throw new PatchError(`unknown strategic merge patch directive "${key}"`);
    const fieldPath = [...path, key];
    if (value === null) {
      delete result[key];
    } else if (isObject(value)) {
      const merged = mergeObject(isObject(result[key]) ? (result[key] as JsonObject) : {}, value, fieldPath);
      if (merged === undefined) delete result[key];
      else result[key] = merged;
    } else if (Array.isArray(value)) {
      result[key] = mergeList(Array.isArray(result[key]) ? (result[key] as Json[]) : [], value, fieldPath);
    } else {
      result[key] = value;
    }
  }
  for (const [field, order] of Object.entries(orders)) {
    const list = result[field];
    if (Array.isArray(list)) result[field] = applyOrder(list, order, mergeKeyFor([...path, field]));
  }
  return result;
}

function mergeList(original: Json[], patch: Json[], path: string[]): Json[] {
  const mergeKey = mergeKeyFor(path);
  if (isMergedPrimitiveList(path)) {
    const union = [...original];
    for (const item of patch)
      if (!union.some((u) => JSON.stringify(u) === JSON.stringify(item))) union.push(item);
    return union;
  }
  if (!mergeKey) {
    // A `$patch: replace` marker element may appear in replace lists; drop it.
    return clone(patch.filter((item) => !(isObject(item) && item.$patch === "replace")));
  }
  if (patch.some((item) => isObject(item) && item.$patch === "replace")) {
    return clone(patch.filter((item) => !(isObject(item) && item.$patch === "replace")));
  }
  const result = [...original];
  for (const item of patch) {
    if (!isObject(item))
      throw new PatchError(`list ${path.join(".")} must hold objects keyed by ${mergeKey}`);
    const key = item[mergeKey];
    const index = result.findIndex((o) => isObject(o) && JSON.stringify(o[mergeKey]) === JSON.stringify(key));
    if (item.$patch === "delete") {
      if (index >= 0) result.splice(index, 1);
      continue;
    }
    if (index >= 0) {
      const merged = mergeObject(result[index] as JsonObject, item, path);
      if (merged === undefined) result.splice(index, 1);
      else result[index] = merged;
    } else {
      result.push(mergeObject({}, item, path) ?? {});
    }
  }
  return result;
}

function applyOrder(list: Json[], order: Json[], mergeKey: string | undefined): Json[] {
  const keyOf = (item: Json) => JSON.stringify(mergeKey && isObject(item) ? item[mergeKey] : item);
  const rank = new Map(order.map((o, i) => [keyOf(o), i]));
  const ranked = list.map((item, i) => ({ item, r: rank.get(keyOf(item)) ?? order.length + i }));
  return ranked.sort((a, b) => a.r - b.r).map((x) => x.item);
}
