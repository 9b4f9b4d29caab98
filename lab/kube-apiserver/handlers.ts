/**
 * The REST verbs on resources: get, list, watch, create, update, patch, delete, deletecollection, and
 * the status, scale and binding subresources. Object lifecycle rules (uid, generation, finalizers,
 * graceful pod deletion, namespace and CRD cascades, owner-reference garbage collection) live here;
 * storage, validation, patching and selectors are delegated to their modules.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { parse as parseYaml } from "yaml";
import type { Logger } from "../../lib/log.js";
import {
  ApiError,
  badRequest,
  conflict,
  forbidden,
  invalid,
  methodNotAllowed,
  notFound,
  pathNotFound,
  unsupportedMediaType,
} from "./errors.js";
import { deepClone, deepEqual, type KubeObject, nowTimestamp, specPart } from "./objects.js";
import { type Json, jsonMergePatch, jsonPatch, PatchError, strategicMergePatch } from "./patch.js";
import type { ResourcePath } from "./paths.js";
import { apiVersionOf, type CrdObject, type ResourceRegistry, type ResourceType } from "./registry.js";
import {
  matchesFilter,
  type ObjectFilter,
  parseFieldSelector,
  parseLabelSelector,
  SelectorSyntaxError,
} from "./selectors.js";
import type { ServiceAllocator } from "./services.js";
import type { ObjectStore } from "./storage.js";
import { toTable, wantsTable } from "./table.js";
import { applyDefaults, initialStatus, validateCreate, validateUpdate } from "./validation.js";
import { serveWatch } from "./watch.js";

export interface ApiContext {
  registry: ResourceRegistry;
  store: ObjectStore;
  services: ServiceAllocator;
  log: Logger;
  bookmarkIntervalMs: number;
  minRequestTimeoutSeconds: number;
  /** Called when a pod gets a deletionTimestamp, so it is removed once its grace period ends. */
  schedulePodRemoval(pod: KubeObject): void;
}

const PROTECTED_NAMESPACES = new Set(["default", "kube-system", "kube-public"]);
const MAX_BODY_BYTES = 3 * 1024 * 1024;

export function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: ServerResponse, error: ApiError): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  sendJson(res, error.code, error.toStatus());
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, "RequestEntityTooLarge", "request body too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function mediaType(req: IncomingMessage): string {
  return (req.headers["content-type"] ?? "application/json").split(";")[0].trim().toLowerCase();
}

function decodeBody(body: Buffer, contentType: string): unknown {
  const text = body.toString("utf8");
  try {
    if (contentType.includes("yaml")) return parseYaml(text);
    if (contentType.includes("json") || contentType === "") return JSON.parse(text);
  } catch (error) {
    throw badRequest(`the body of the request could not be decoded: ${(error as Error).message}`, {
      cause: error,
    });
  }
  throw unsupportedMediaType(contentType);
}

function decodeObject(body: Buffer, contentType: string): KubeObject {
  const value = decodeBody(body, contentType);
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw badRequest("the request body must be an object");
  const object = value as KubeObject;
  if (typeof object.metadata !== "object" || object.metadata === null) object.metadata = {};
  return object;
}

function filterFrom(query: URLSearchParams): ObjectFilter {
  try {
    return {
      labels: parseLabelSelector(query.get("labelSelector") ?? undefined),
      fields: parseFieldSelector(query.get("fieldSelector") ?? undefined),
    };
  } catch (error) {
    if (error instanceof SelectorSyntaxError)
      throw badRequest(`unable to parse selector: ${error.message}`, { cause: error });
    throw error;
  }
}

/** What clients see: the apiVersion and kind of the version they asked for. */
export function present(rt: ResourceType, object: KubeObject): KubeObject {
  return { apiVersion: apiVersionOf(rt), kind: rt.kind, ...withoutTypeMeta(object) };
}

function withoutTypeMeta(object: KubeObject): KubeObject {
  const { apiVersion: _a, kind: _k, ...rest } = object;
  return rest as KubeObject;
}

function isDryRun(query: URLSearchParams): boolean {
  return query.getAll("dryRun").includes("All");
}

const GENERATE_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";

function generatedName(prefix: string): string {
  let suffix = "";
  for (let i = 0; i < 5; i++)
    suffix += GENERATE_NAME_ALPHABET[Math.floor(Math.random() * GENERATE_NAME_ALPHABET.length)];
  return `${prefix}${suffix}`;
}

export async function handleResource(
  ctx: ApiContext,
  req: IncomingMessage,
  res: ServerResponse,
  path: ResourcePath,
  query: URLSearchParams,
): Promise<void> {
  const rt = ctx.registry.lookup(path.group, path.version, path.resource);
  if (!rt) throw pathNotFound();
  if (!rt.namespaced && path.namespace) throw pathNotFound();
  const namespace = rt.namespaced ? path.namespace : undefined;
  const method = req.method ?? "GET";
  const sub = path.subresource;
  if (
    sub !== undefined &&
    !(sub === "status" && rt.status) &&
    !(sub === "scale" && rt.scale) &&
    !(sub === "binding" && rt.binding)
  )
    throw pathNotFound();
  if (sub !== undefined && !path.name) throw pathNotFound();

  // kubectl get asks for a Table (server-side printing) and falls back to plain JSON otherwise.
  const table = method === "GET" && sub === undefined && wantsTable(req.headers.accept);
  if (!path.name) {
    if (method === "GET") {
      const filter = filterFrom(query);
      if (query.get("watch") === "1" || query.get("watch") === "true") {
        await serveWatch(res, {
          store: ctx.store,
          rt,
          namespace,
          filter,
          resourceVersion: query.get("resourceVersion") ?? undefined,
          allowBookmarks: query.get("allowWatchBookmarks") === "true",
          timeoutSeconds: watchTimeoutSeconds(query, ctx.minRequestTimeoutSeconds),
          bookmarkIntervalMs: ctx.bookmarkIntervalMs,
          present: table ? (o) => toTable(rt, [o]) as KubeObject : (o) => present(rt, o),
          log: ctx.log,
        });
        return;
      }
      const list = await listObjects(ctx, rt, namespace, filter);
      if (table) return sendJson(res, 200, toTable(rt, list.items, list.metadata.resourceVersion));
      return sendJson(res, 200, list);
    }
    if (method === "POST") {
      const object = decodeObject(await readBody(req), mediaType(req));
      const created = await createObject(ctx, rt, namespace, object, isDryRun(query));
      return sendJson(res, 201, present(rt, created));
    }
    if (method === "DELETE") {
      const filter = filterFrom(query);
      const { items } = await listObjects(ctx, rt, namespace, filter);
      const options = await deleteOptions(req, query);
      const deleted: KubeObject[] = [];
      for (const item of items) {
        try {
          deleted.push(
            await deleteObject(ctx, rt, item.metadata.namespace, item.metadata.name ?? "", options),
          );
        } catch (error) {
          if (!(error instanceof ApiError && error.code === 404)) throw error;
        }
      }
      return sendJson(res, 200, {
        kind: rt.listKind,
        apiVersion: apiVersionOf(rt),
        metadata: {},
        items: deleted.map((o) => present(rt, o)),
      });
    }
    throw methodNotAllowed();
  }

  const name = path.name;
  if (sub === "binding") {
    if (method !== "POST") throw methodNotAllowed();
    const binding = decodeObject(await readBody(req), mediaType(req));
    await bindPod(ctx, rt, namespace, name, binding);
    return sendJson(res, 201, {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Success",
      code: 201,
    });
  }
  if (sub === "scale") return handleScale(ctx, rt, namespace, name, req, res, query);
  switch (method) {
    case "GET": {
      const object = await ctx.store.mustGet(rt, namespace, name);
      if (table) return sendJson(res, 200, toTable(rt, [object]));
      return sendJson(res, 200, present(rt, object));
    }
    case "PUT": {
      const object = decodeObject(await readBody(req), mediaType(req));
      if (object.metadata.name && object.metadata.name !== name)
        throw badRequest(
          `the name of the object (${object.metadata.name}) does not match the name on the URL (${name})`,
        );
      const updated = await updateObject(ctx, rt, namespace, name, () => object, {
        subresource: sub,
        dryRun: isDryRun(query),
        explicitVersion: object.metadata.resourceVersion,
      });
      return sendJson(res, 200, present(rt, updated));
    }
    case "PATCH": {
      const contentType = mediaType(req);
      const patch = decodeBody(await readBody(req), contentType) as Json;
      const patched = await patchObject(ctx, rt, namespace, name, contentType, patch, sub, isDryRun(query));
      return sendJson(res, patched.created ? 201 : 200, present(rt, patched.object));
    }
    case "DELETE": {
      if (sub) throw methodNotAllowed();
      const options = await deleteOptions(req, query);
      return sendJson(res, 200, present(rt, await deleteObject(ctx, rt, namespace, name, options)));
    }
    default:
      throw methodNotAllowed();
  }
}

function watchTimeoutSeconds(query: URLSearchParams, minimum: number): number {
  const requested = Number(query.get("timeoutSeconds"));
  if (query.has("timeoutSeconds") && Number.isFinite(requested) && requested > 0) return requested;
  return minimum * (1 + Math.random());
}

export async function listObjects(
  ctx: ApiContext,
  rt: ResourceType,
  namespace: string | undefined,
  filter: ObjectFilter,
) {
  const { items, revision } = await ctx.store.list(rt, namespace);
  return {
    kind: rt.listKind,
    apiVersion: apiVersionOf(rt),
    metadata: { resourceVersion: String(revision) },
    items: items.filter((o) => matchesFilter(filter, o)).map((o) => present(rt, o)),
  };
}

async function requireNamespace(ctx: ApiContext, namespace: string): Promise<void> {
  const namespaces = ctx.registry.lookup("", "v1", "namespaces") as ResourceType;
  const ns = await ctx.store.get(namespaces, undefined, namespace);
  if (!ns) throw notFound(namespaces, namespace);
  if (ns.metadata.deletionTimestamp) throw forbidden(namespaces, namespace, "namespace is being terminated");
}

export async function createObject(
  ctx: ApiContext,
  rt: ResourceType,
  namespace: string | undefined,
  input: KubeObject,
  dryRun = false,
): Promise<KubeObject> {
  const object = deepClone(input);
  const expectedApiVersion = apiVersionOf(rt);
  if (object.kind !== undefined && object.kind !== rt.kind)
    throw badRequest(
      `the kind "${object.kind}" does not match the resource ${rt.resource} (kind "${rt.kind}")`,
    );
  if (object.apiVersion !== undefined && object.apiVersion !== expectedApiVersion)
    throw badRequest(
      `the API version "${object.apiVersion}" does not match the expected API version "${expectedApiVersion}"`,
    );
  const meta = object.metadata;
  if (rt.namespaced) {
    if (meta.namespace && namespace && meta.namespace !== namespace)
      throw badRequest(
        "the namespace of the provided object does not match the namespace sent on the request",
      );
    meta.namespace = namespace ?? meta.namespace;
    if (!meta.namespace) throw badRequest("a namespace is required to create a namespaced object");
    await requireNamespace(ctx, meta.namespace);
  } else {
    delete meta.namespace;
  }
  if (!meta.name && meta.generateName) meta.name = generatedName(meta.generateName);
  meta.uid = randomUUID();
  meta.creationTimestamp = nowTimestamp();
  meta.generation = 1;
  delete meta.resourceVersion;
  delete meta.deletionTimestamp;
  delete meta.deletionGracePeriodSeconds;
  delete meta.selfLink;
  object.apiVersion = expectedApiVersion;
  object.kind = rt.kind;
  if (rt.status) {
    const status = initialStatus(rt, object);
    if (status === undefined) delete object.status;
    else object.status = status;
  }
  if (rt.group === "apiextensions.k8s.io") prepareCrd(ctx, object);
  applyDefaults(rt, object);
  const errors = validateCreate(rt, object);
  if (errors.length > 0) throw invalid(rt.kind, rt.group, meta.name ?? "", errors);
  const write = async () => {
    if (rt.group === "" && rt.resource === "services") await ctx.services.assign(object);
    if (dryRun) return { ...object, metadata: { ...object.metadata } };
    return ctx.store.create(rt, object);
  };
  const created =
    rt.group === "" && rt.resource === "services" ? await ctx.services.exclusive(write) : await write();
  if (rt.group === "apiextensions.k8s.io" && !dryRun) ctx.registry.setCrd(created as unknown as CrdObject);
  return created;
}

/** A CRD is accepted and established at once (there is no separate controller to do it). */
function prepareCrd(ctx: ApiContext, crd: KubeObject): void {
  const spec = crd.spec ?? {};
  const clash =
    spec.names && spec.group ? ctx.registry.conflictingNames(crd as unknown as CrdObject) : undefined;
  if (clash)
    throw invalid("CustomResourceDefinition", "apiextensions.k8s.io", crd.metadata.name ?? "", [
      { type: "FieldValueInvalid", field: "spec.names", message: clash },
    ]);
  const now = nowTimestamp();
  crd.status = {
    acceptedNames: spec.names ?? {},
    storedVersions: (spec.versions ?? [])
      .filter((v: { storage?: boolean }) => v.storage)
      .map((v: { name: string }) => v.name),
    conditions: [
      {
        type: "NamesAccepted",
        status: "True",
        lastTransitionTime: now,
        reason: "NoConflicts",
        message: "no conflicts found",
      },
      {
        type: "Established",
        status: "True",
        lastTransitionTime: now,
        reason: "InitialNamesAccepted",
        message: "the initial names have been accepted",
      },
    ],
  };
}

interface UpdateOptions {
  subresource?: string;
  dryRun?: boolean;
  /** A resourceVersion the client insists on (from the body): mismatch → 409 without retry. */
  explicitVersion?: string;
  /** Retry on conflicts (patches without a resourceVersion do, as kube-apiserver's do). */
  retry?: boolean;
}

/**
 * Read-modify-write of one object: `mutate` gets the current object and returns the desired one; the
 * server keeps system metadata, splits status from the rest by subresource, bumps generation on spec
 * changes, validates, and writes only if something changed.
 */
export async function updateObject(
  ctx: ApiContext,
  rt: ResourceType,
  namespace: string | undefined,
  name: string,
  mutate: (current: KubeObject) => KubeObject,
  options: UpdateOptions = {},
): Promise<KubeObject> {
  for (let attempt = 0; ; attempt++) {
    const current = await ctx.store.mustGet(rt, namespace, name);
    if (options.explicitVersion && options.explicitVersion !== current.metadata.resourceVersion)
      throw conflict(rt, name);
    try {
      return await commitUpdate(ctx, rt, current, mutate(deepClone(current)), options);
    } catch (error) {
      const retriable =
        options.retry &&
        !options.explicitVersion &&
        error instanceof ApiError &&
        error.reason === "Conflict" &&
        attempt < 10;
      if (!retriable) throw error;
    }
  }
}

async function commitUpdate(
  ctx: ApiContext,
  rt: ResourceType,
  current: KubeObject,
  incoming: KubeObject,
  options: UpdateOptions,
): Promise<KubeObject> {
  const expectedApiVersion = apiVersionOf(rt);
  if (incoming.kind !== undefined && incoming.kind !== rt.kind)
    throw badRequest(`the kind "${incoming.kind}" does not match "${rt.kind}"`);
  if (
    incoming.apiVersion !== undefined &&
    incoming.apiVersion !== expectedApiVersion &&
    incoming.apiVersion !== current.apiVersion
  )
    throw badRequest(
      `the API version "${incoming.apiVersion}" does not match the expected API version "${expectedApiVersion}"`,
    );
  incoming.metadata ??= {};
  if (
    incoming.metadata.namespace &&
    rt.namespaced &&
    incoming.metadata.namespace !== current.metadata.namespace
  )
    throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
  let next: KubeObject;
  if (options.subresource === "status") {
    next = { ...deepClone(current), status: incoming.status };
  } else {
    next = { ...incoming, metadata: { ...incoming.metadata } };
    if (rt.status) {
      if (current.status === undefined) delete next.status;
      else next.status = deepClone(current.status);
    }
  }
  const meta = next.metadata;
  const keep = current.metadata;
  meta.name = keep.name;
  meta.namespace = keep.namespace;
  meta.uid = keep.uid;
  meta.creationTimestamp = keep.creationTimestamp;
  meta.deletionTimestamp = keep.deletionTimestamp;
  meta.deletionGracePeriodSeconds = keep.deletionGracePeriodSeconds;
  meta.generation = keep.generation ?? 1;
  for (const key of ["deletionTimestamp", "deletionGracePeriodSeconds", "namespace"] as const)
    if (meta[key] === undefined) delete meta[key];
  meta.resourceVersion = keep.resourceVersion;
  next.apiVersion = current.apiVersion ?? expectedApiVersion;
  next.kind = rt.kind;
  if (meta.deletionTimestamp && (meta.finalizers ?? []).some((f) => !(keep.finalizers ?? []).includes(f)))
    throw invalid(rt.kind, rt.group, meta.name ?? "", [
      {
        type: "FieldValueForbidden",
        field: "metadata.finalizers",
        message: "no new finalizers can be added if the object is being deleted",
      },
    ]);
  applyDefaults(rt, next);
  if (!deepEqual(specPart(next), specPart(current))) meta.generation = (keep.generation ?? 1) + 1;
  // Binding is the one way to set a pod's spec.nodeName: it bypasses the pod-spec immutability check.
  const errors = options.subresource === "binding" ? [] : validateUpdate(rt, next, current);
  if (errors.length > 0) throw invalid(rt.kind, rt.group, meta.name ?? "", errors);
  if (rt.group === "apiextensions.k8s.io") {
    const clash = ctx.registry.conflictingNames(next as unknown as CrdObject);
    if (clash)
      throw invalid(rt.kind, rt.group, meta.name ?? "", [
        { type: "FieldValueInvalid", field: "spec.names", message: clash },
      ]);
    if (options.subresource !== "status") prepareCrd(ctx, next);
  }
  const isService = rt.group === "" && rt.resource === "services";
  const write = async (): Promise<KubeObject> => {
    if (isService && options.subresource !== "status") await ctx.services.assign(next, current);
    if (deepEqual(next, current)) return current;
    if (options.dryRun) return next;
    const revision = Number(current.metadata.resourceVersion);
    if (meta.deletionTimestamp && (meta.finalizers ?? []).length === 0) {
      const deleted = await ctx.store.delete(rt, next, revision);
      await afterDelete(ctx, rt, deleted, "Background");
      return deleted;
    }
    return ctx.store.update(rt, next, revision);
  };
  const written = isService ? await ctx.services.exclusive(write) : await write();
  if (rt.group === "apiextensions.k8s.io" && !options.dryRun && written !== current)
    ctx.registry.setCrd(written as unknown as CrdObject);
  return written;
}

async function patchObject(
  ctx: ApiContext,
  rt: ResourceType,
  namespace: string | undefined,
  name: string,
  contentType: string,
  patch: Json,
  subresource: string | undefined,
  dryRun: boolean,
): Promise<{ object: KubeObject; created: boolean }> {
  if (contentType === "application/apply-patch+yaml") {
    const existing = await ctx.store.get(rt, namespace, name);
    if (!existing) {
      if (subresource) throw notFound(rt, name);
      const object = patch as unknown as KubeObject;
      if (typeof object !== "object" || object === null) throw badRequest("an apply patch must be an object");
      object.metadata ??= {};
      if (object.metadata.name && object.metadata.name !== name)
        throw badRequest("the name of the object does not match the name on the URL");
      object.metadata.name = name;
      return { object: await createObject(ctx, rt, namespace, object, dryRun), created: true };
    }
  }
  const apply = (current: KubeObject): KubeObject => {
    const base = current as unknown as Json;
    try {
      switch (contentType) {
        case "application/merge-patch+json":
          return jsonMergePatch(base, patch) as unknown as KubeObject;
        case "application/json-patch+json":
          return jsonPatch(base, patch) as unknown as KubeObject;
        case "application/strategic-merge-patch+json":
          if (rt.crdName)
            throw new ApiError(
              415,
              "UnsupportedMediaType",
              "strategic merge patch is not supported for custom resources; use a merge patch",
            );
          return strategicMergePatch(base, patch) as unknown as KubeObject;
        case "application/apply-patch+yaml":
          // Server-side apply, simplified: the applied configuration is merged into the live object.
          return strategicMergePatch(base, patch) as unknown as KubeObject;
        default:
          throw unsupportedMediaType(contentType);
      }
    } catch (error) {
      if (error instanceof PatchError)
        throw badRequest(`the patch could not be applied: ${error.message}`, { cause: error });
      throw error;
    }
  };
  let explicitVersion: string | undefined;
  const object = await updateObject(
    ctx,
    rt,
    namespace,
    name,
    (current) => {
      const patched = apply(current);
      if (typeof patched !== "object" || patched === null || Array.isArray(patched))
        throw badRequest("the patched object is not an object");
      patched.metadata ??= {};
      if (patched.metadata.resourceVersion !== current.metadata.resourceVersion) {
        explicitVersion = patched.metadata.resourceVersion;
        throw conflict(rt, name);
      }
      return patched;
    },
    { subresource, dryRun, retry: true },
  ).catch((error) => {
    // A patch that itself names a resourceVersion is a precondition: its conflict is final.
    if (explicitVersion !== undefined && error instanceof ApiError && error.reason === "Conflict")
      throw error;
    throw error;
  });
  return { object, created: false };
}

interface DeleteOptions {
  gracePeriodSeconds?: number;
  propagationPolicy?: string;
  preconditions?: { uid?: string; resourceVersion?: string };
}

async function deleteOptions(req: IncomingMessage, query: URLSearchParams): Promise<DeleteOptions> {
  const body = await readBody(req);
  const options: DeleteOptions =
    body.length > 0 ? ((decodeBody(body, mediaType(req)) as DeleteOptions) ?? {}) : {};
  if (query.has("gracePeriodSeconds")) options.gracePeriodSeconds = Number(query.get("gracePeriodSeconds"));
  if (query.has("propagationPolicy")) options.propagationPolicy = query.get("propagationPolicy") ?? undefined;
  if (options.gracePeriodSeconds !== undefined && !Number.isInteger(options.gracePeriodSeconds))
    throw badRequest("gracePeriodSeconds must be an integer");
  return options;
}

function isTerminalPod(pod: KubeObject): boolean {
  return pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
}

export async function deleteObject(
  ctx: ApiContext,
  rt: ResourceType,
  namespace: string | undefined,
  name: string,
  options: DeleteOptions = {},
): Promise<KubeObject> {
  if (rt.group === "" && rt.resource === "namespaces" && PROTECTED_NAMESPACES.has(name))
    throw forbidden(rt, name, "this namespace may not be deleted");
  for (let attempt = 0; ; attempt++) {
    const current = await ctx.store.mustGet(rt, namespace, name);
    const pre = options.preconditions;
    if (pre?.uid && pre.uid !== current.metadata.uid)
      throw conflict(
        rt,
        name,
        `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid}`,
      );
    if (pre?.resourceVersion && pre.resourceVersion !== current.metadata.resourceVersion)
      throw conflict(
        rt,
        name,
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`,
      );
    try {
      return await deleteCurrent(ctx, rt, current, options);
    } catch (error) {
      if (!(error instanceof ApiError && error.reason === "Conflict" && attempt < 10 && !pre)) throw error;
    }
  }
}

async function deleteCurrent(
  ctx: ApiContext,
  rt: ResourceType,
  current: KubeObject,
  options: DeleteOptions,
): Promise<KubeObject> {
  const revision = Number(current.metadata.resourceVersion);
  const meta = current.metadata;
  const isPod = rt.group === "" && rt.resource === "pods";
  const finalizers = meta.finalizers ?? [];
  // A scheduled, running pod is deleted gracefully: it gets a deletionTimestamp and its kubelet
  // removes it (gracePeriodSeconds=0) after stopping it; the pod reaper removes it if nobody does.
  const grace =
    isPod && current.spec?.nodeName && !isTerminalPod(current)
      ? (options.gracePeriodSeconds ?? current.spec?.terminationGracePeriodSeconds ?? 30)
      : 0;
  const mark = async (seconds: number) => {
    const next = deepClone(current);
    next.metadata.deletionTimestamp = nowTimestamp(new Date(Date.now() + seconds * 1000));
    next.metadata.deletionGracePeriodSeconds = seconds;
    const updated = await ctx.store.update(rt, next, revision);
    if (isPod && seconds > 0 && finalizers.length === 0) ctx.schedulePodRemoval(updated);
    return updated;
  };
  if (meta.deletionTimestamp) {
    const currentGrace = meta.deletionGracePeriodSeconds ?? 0;
    if (finalizers.length > 0) return grace < currentGrace ? mark(grace) : current;
    if (grace > 0) return grace < currentGrace ? mark(grace) : current;
  } else if (grace > 0 || finalizers.length > 0) {
    return mark(grace);
  }
  const deleted = await ctx.store.delete(rt, current, revision);
  await afterDelete(ctx, rt, deleted, options.propagationPolicy);
  return deleted;
}

/** Cascades of a removal: a namespace's contents, a CRD's custom resources, owned dependents. */
async function afterDelete(
  ctx: ApiContext,
  rt: ResourceType,
  deleted: KubeObject,
  propagationPolicy?: string,
): Promise<void> {
  if (rt.group === "" && rt.resource === "namespaces") {
    for (const type of ctx.registry.storedResources().filter((t) => t.namespaced)) {
      const { items } = await ctx.store.list(type, deleted.metadata.name);
      for (const item of items) await removeIgnoringMissing(ctx, type, item);
    }
  }
  if (rt.group === "apiextensions.k8s.io" && rt.resource === "customresourcedefinitions") {
    const crd = deleted as unknown as CrdObject;
    const types = ctx.registry.storedResources().filter((t) => t.crdName === crd.metadata.name);
    ctx.registry.removeCrd(crd.metadata.name);
    for (const type of types) {
      const { items } = await ctx.store.list(type);
      for (const item of items) await removeIgnoringMissing(ctx, type, item);
    }
  }
  if (propagationPolicy !== "Orphan" && deleted.metadata.uid) collectDependents(ctx, deleted);
}

async function removeIgnoringMissing(ctx: ApiContext, rt: ResourceType, object: KubeObject): Promise<void> {
  try {
    await ctx.store.delete(rt, object, Number(object.metadata.resourceVersion));
  } catch (error) {
    if (!(error instanceof ApiError && (error.code === 404 || error.code === 409))) throw error;
  }
}

/** Background garbage collection: deletes objects in the owner's namespace that it owned. */
function collectDependents(ctx: ApiContext, owner: KubeObject): void {
  const uid = owner.metadata.uid;
  const namespace = owner.metadata.namespace;
  const work = async () => {
    for (const type of ctx.registry.storedResources().filter((t) => t.namespaced)) {
      const { items } = await ctx.store.list(type, namespace);
      for (const item of items) {
        if (!(item.metadata.ownerReferences ?? []).some((ref) => ref.uid === uid)) continue;
        try {
          await deleteObject(ctx, type, item.metadata.namespace, item.metadata.name ?? "", {
            propagationPolicy: "Background",
          });
        } catch (error) {
          if (!(error instanceof ApiError && error.code === 404)) throw error;
        }
      }
    }
  };
  work().catch((error) =>
    ctx.log.warn({ err: error, owner: owner.metadata.name }, "garbage collection of dependents failed"),
  );
}

async function bindPod(
  ctx: ApiContext,
  rt: ResourceType,
  namespace: string | undefined,
  name: string,
  binding: KubeObject,
): Promise<void> {
  const target = binding.target as { kind?: string; name?: string } | undefined;
  if (!target?.name)
    throw invalid("Binding", "", name, [{ type: "FieldValueRequired", field: "target.name", message: "" }]);
  if (target.kind && target.kind !== "Node")
    throw invalid("Binding", "", name, [
      {
        type: "FieldValueNotSupported",
        field: "target.kind",
        message: `"${target.kind}": supported values: "Node"`,
      },
    ]);
  await updateObject(
    ctx,
    rt,
    namespace,
    name,
    (pod) => {
      if (pod.spec?.nodeName)
        throw conflict(rt, name, `pod ${name} is already assigned to node "${pod.spec.nodeName}"`);
      if (pod.metadata.deletionTimestamp)
        throw conflict(rt, name, `pod ${name} is being deleted, cannot be assigned to a host`);
      pod.spec.nodeName = target.name;
      return pod;
    },
    { subresource: "binding", retry: true },
  );
  // Binding also records the PodScheduled condition, as kube-apiserver's binding REST does.
  await updateObject(
    ctx,
    rt,
    namespace,
    name,
    (pod) => {
      const conditions = (pod.status?.conditions ?? []).filter(
        (c: { type: string }) => c.type !== "PodScheduled",
      );
      conditions.push({
        type: "PodScheduled",
        status: "True",
        lastProbeTime: null,
        lastTransitionTime: nowTimestamp(),
      });
      pod.status = { ...(pod.status ?? {}), conditions };
      return pod;
    },
    { subresource: "status", retry: true },
  );
}

function getPath(object: unknown, jsonPath: string): unknown {
  let current = object;
  for (const key of jsonPath.replace(/^\./, "").split(".")) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function setPath(object: Record<string, unknown>, jsonPath: string, value: unknown): void {
  const keys = jsonPath.replace(/^\./, "").split(".");
  let current = object;
  for (const key of keys.slice(0, -1)) {
    if (typeof current[key] !== "object" || current[key] === null) current[key] = {};
    current = current[key] as Record<string, unknown>;
  }
  current[keys[keys.length - 1]] = value;
}

function scaleOf(rt: ResourceType, object: KubeObject): KubeObject {
  const scale = rt.scale;
  if (!scale) throw pathNotFound();
  const selectorFromSpec = object.spec?.selector?.matchLabels
    ? Object.entries(object.spec.selector.matchLabels as Record<string, string>)
        .map(([k, v]) => `${k}=${v}`)
        .join(",")
    : undefined;
  const selector =
    (scale.labelSelectorPath ? getPath(object, scale.labelSelectorPath) : undefined) ?? selectorFromSpec;
  return {
    kind: "Scale",
    apiVersion: "autoscaling/v1",
    metadata: {
      name: object.metadata.name,
      namespace: object.metadata.namespace,
      uid: object.metadata.uid,
      resourceVersion: object.metadata.resourceVersion,
      creationTimestamp: object.metadata.creationTimestamp,
    },
    spec: { replicas: Number(getPath(object, scale.specReplicasPath) ?? 0) },
    status: {
      replicas: Number(getPath(object, scale.statusReplicasPath) ?? 0),
      ...(typeof selector === "string" ? { selector } : {}),
    },
  };
}

async function handleScale(
  ctx: ApiContext,
  rt: ResourceType,
  namespace: string | undefined,
  name: string,
  req: IncomingMessage,
  res: ServerResponse,
  query: URLSearchParams,
): Promise<void> {
  const scale = rt.scale;
  if (!scale) throw pathNotFound();
  const method = req.method ?? "GET";
  if (method === "GET") return sendJson(res, 200, scaleOf(rt, await ctx.store.mustGet(rt, namespace, name)));
  if (method !== "PUT" && method !== "PATCH") throw methodNotAllowed();
  const contentType = mediaType(req);
  const body = decodeBody(await readBody(req), contentType) as Json;
  let explicitVersion: string | undefined;
  if (method === "PUT") explicitVersion = (body as unknown as KubeObject)?.metadata?.resourceVersion;
  const updated = await updateObject(
    ctx,
    rt,
    namespace,
    name,
    (current) => {
      const currentScale = scaleOf(rt, current);
      let desired: KubeObject;
      try {
        if (method === "PUT") desired = body as unknown as KubeObject;
        else if (contentType === "application/json-patch+json")
          desired = jsonPatch(currentScale as unknown as Json, body) as unknown as KubeObject;
        else if (
          contentType === "application/merge-patch+json" ||
          contentType === "application/strategic-merge-patch+json"
        )
          desired = jsonMergePatch(currentScale as unknown as Json, body) as unknown as KubeObject;
        else throw unsupportedMediaType(contentType);
      } catch (error) {
        if (error instanceof PatchError)
          throw badRequest(`the patch could not be applied: ${error.message}`, { cause: error });
        throw error;
      }
      const replicas = desired?.spec?.replicas;
      if (!Number.isInteger(replicas) || replicas < 0)
        throw invalid("Scale", "autoscaling", name, [
          {
            type: "FieldValueInvalid",
            field: "spec.replicas",
            message: `${JSON.stringify(replicas)}: must be greater than or equal to 0`,
          },
        ]);
      setPath(current as unknown as Record<string, unknown>, scale.specReplicasPath, replicas);
      return current;
    },
    { explicitVersion, retry: method === "PATCH", dryRun: isDryRun(query) },
  );
  sendJson(res, 200, scaleOf(rt, updated));
}
