/**
 * Objects in etcd, one key per object: `<prefix>/<group>/<resource>/<namespace>/<name>` (cluster-scoped
 * objects leave the namespace out; the core group is "core"). An object's resourceVersion is its key's
 * etcd mod revision and a list's is the store revision, so watch-from-version and compaction map onto
 * etcd's. Writes are transactions comparing the key's revision: that is the 409 of optimistic concurrency.
 */
import type { Etcd3, IKeyValue, Watcher } from "etcd3";
import { alreadyExists, conflict, notFound } from "./errors.js";
import type { KubeObject } from "./objects.js";
import { type ResourceType, storageGroup } from "./registry.js";

export interface ListResult {
  items: KubeObject[];
  revision: number;
}

export class ObjectStore {
  constructor(
    readonly etcd: Etcd3,
    private readonly prefix: string,
  ) {}

  /** The key prefix of a resource (all namespaces) or of one namespace; always ends with "/". */
  prefixOf(rt: ResourceType, namespace?: string): string {
    const base = `${this.prefix}/${storageGroup(rt.group)}/${rt.resource}/`;
    return rt.namespaced && namespace ? `${base}${namespace}/` : base;
  }

  keyOf(rt: ResourceType, namespace: string | undefined, name: string): string {
    return rt.namespaced ? `${this.prefixOf(rt, namespace)}${name}` : `${this.prefixOf(rt)}${name}`;
  }

  decode(kv: IKeyValue, revision = kv.mod_revision): KubeObject {
    const object = JSON.parse(kv.value.toString()) as KubeObject;
    object.metadata.resourceVersion = String(revision);
    return object;
  }

  private encode(object: KubeObject): string {
    const { resourceVersion: _ignored, ...metadata } = object.metadata;
    return JSON.stringify({ ...object, metadata });
  }

  async get(rt: ResourceType, namespace: string | undefined, name: string): Promise<KubeObject | undefined> {
    const response = await this.etcd.get(this.keyOf(rt, namespace, name)).exec();
    const kv = response.kvs[0];
    return kv ? this.decode(kv) : undefined;
  }

  async mustGet(rt: ResourceType, namespace: string | undefined, name: string): Promise<KubeObject> {
    const object = await this.get(rt, namespace, name);
    if (!object) throw notFound(rt, name);
    return object;
  }

  async list(rt: ResourceType, namespace?: string): Promise<ListResult> {
    const response = await this.etcd.getAll().prefix(this.prefixOf(rt, namespace)).exec();
    return { items: response.kvs.map((kv) => this.decode(kv)), revision: Number(response.header.revision) };
  }

  async currentRevision(): Promise<number> {
    const response = await this.etcd.get(`${this.prefix}/\u0000revision-probe`).exec();
    return Number(response.header.revision);
  }

  async create(rt: ResourceType, object: KubeObject): Promise<KubeObject> {
    const name = object.metadata.name ?? "";
    const key = this.keyOf(rt, object.metadata.namespace, name);
    const response = await this.etcd
      .if(key, "Create", "==", 0)
      .then(this.etcd.put(key).value(this.encode(object)))
      .commit();
    if (!response.succeeded) throw alreadyExists(rt, name);
    return withRevision(object, response.header.revision);
  }

  /** Replaces an object whose current revision is `expectedRevision`; 409 Conflict otherwise. */
  async update(rt: ResourceType, object: KubeObject, expectedRevision: number): Promise<KubeObject> {
    const name = object.metadata.name ?? "";
    const key = this.keyOf(rt, object.metadata.namespace, name);
    const response = await this.etcd
      .if(key, "Mod", "==", expectedRevision)
      .then(this.etcd.put(key).value(this.encode(object)))
      .else(this.etcd.get(key))
      .commit();
    if (!response.succeeded) {
      const exists = (response.responses[0]?.response_range?.kvs?.length ?? 0) > 0;
      throw exists ? conflict(rt, name) : notFound(rt, name);
    }
    return withRevision(object, response.header.revision);
  }

  /** Deletes an object at `expectedRevision`; returns it with the deletion's revision. */
  async delete(rt: ResourceType, object: KubeObject, expectedRevision: number): Promise<KubeObject> {
    const name = object.metadata.name ?? "";
    const key = this.keyOf(rt, object.metadata.namespace, name);
    const response = await this.etcd
      .if(key, "Mod", "==", expectedRevision)
      .then(this.etcd.delete().key(key))
      .else(this.etcd.get(key))
      .commit();
    if (!response.succeeded) {
      const exists = (response.responses[0]?.response_range?.kvs?.length ?? 0) > 0;
      throw exists ? conflict(rt, name) : notFound(rt, name);
    }
    return withRevision(object, response.header.revision);
  }

  /**
   * Whether etcd has compacted away `revision` (a read at it fails). etcd 3.4 cancels a watch from a
   * compacted revision without saying why, so a cancelled watch is checked with this.
   */
  async isCompacted(revision: number): Promise<boolean> {
    try {
      await this.etcd.get(`${this.prefix}/\u0000revision-probe`).revision(revision).exec();
      return false;
    } catch (error) {
      return /compacted/.test((error as Error).message);
    }
  }

  /** Starts an etcd watch of a resource (optionally one namespace) from `startRevision` inclusive. */
  watch(rt: ResourceType, namespace: string | undefined, startRevision: number): Promise<Watcher> {
    return this.etcd
      .watch()
      .prefix(this.prefixOf(rt, namespace))
      .startRevision(String(startRevision))
      .withPreviousKV()
      .create();
  }
}

function withRevision(object: KubeObject, revision: string): KubeObject {
  return { ...object, metadata: { ...object.metadata, resourceVersion: String(revision) } };
}
