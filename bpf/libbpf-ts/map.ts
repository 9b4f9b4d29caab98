import { closeSync } from "node:fs";
import type { Codec } from "./codec.js";
import { BpfError, check } from "./errors.js";
import { native } from "./native.js";

export const MapType = {
  Hash: 1,
  Array: 2,
  PerCpuHash: 5,
  PerCpuArray: 6,
  LruHash: 9,
  LruPerCpuHash: 10,
  LpmTrie: 11,
} as const;

export const UpdateFlags = { Any: 0, NoExist: 1, Exist: 2 } as const;

const ENOENT = 2;
const BPF_MAP_INFO_SIZE = 88;

export interface MapInfo {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
}

export function mapInfoFromFd(fd: number): MapInfo {
  const info = Buffer.alloc(BPF_MAP_INFO_SIZE);
  check(native.bpf_obj_get_info_by_fd(fd, info, [info.length]), "bpf_obj_get_info_by_fd(map)");
  const nameBytes = info.subarray(24, 40);
  const nul = nameBytes.indexOf(0);
  return {
    type: info.readUInt32LE(0),
    id: info.readUInt32LE(4),
    keySize: info.readUInt32LE(8),
    valueSize: info.readUInt32LE(12),
    maxEntries: info.readUInt32LE(16),
    flags: info.readUInt32LE(20),
    name: nameBytes.toString("utf8", 0, nul < 0 ? 16 : nul),
  };
}

function isPerCpuType(type: number): boolean {
  return type === MapType.PerCpuHash || type === MapType.PerCpuArray || type === MapType.LruPerCpuHash;
}

/**
 * A typed view of one BPF map. Keys and values go through codecs whose sizes are checked
 * against the kernel's map definition when the map is opened, so a layout drift fails early.
 * Per-CPU maps hold one value per possible CPU: use getPerCpu / setPerCpu.
 */
export class BpfMap<K, V> {
  readonly info: MapInfo;
  readonly perCpu: boolean;
  private readonly keyBuffer: Buffer;
  private readonly valueBuffer: Buffer;
  private readonly valueStride: number;
  private readonly cpuCount: number;
  private closed = false;

  constructor(
    readonly fd: number,
    readonly keyCodec: Codec<K>,
    readonly valueCodec: Codec<V>,
    /** false when the fd belongs to a BpfObject (closed with it). */
    private readonly ownsFd: boolean,
  ) {
    this.info = mapInfoFromFd(fd);
    if (this.info.keySize !== keyCodec.size || this.info.valueSize !== valueCodec.size) {
      if (ownsFd) closeSync(fd);
      throw new TypeError(
        `map ${this.info.name}: codec sizes key ${keyCodec.size}/value ${valueCodec.size} do not match ` +
          `the kernel's key ${this.info.keySize}/value ${this.info.valueSize}`,
      );
    }
    this.perCpu = isPerCpuType(this.info.type);
    this.cpuCount = this.perCpu ? check(native.libbpf_num_possible_cpus(), "libbpf_num_possible_cpus") : 1;
    this.valueStride = this.perCpu ? Math.ceil(valueCodec.size / 8) * 8 : valueCodec.size;
    this.keyBuffer = Buffer.alloc(keyCodec.size);
    this.valueBuffer = Buffer.alloc(this.valueStride * this.cpuCount);
  }

  /** Opens a map pinned on a bpffs; the returned map owns its fd. */
  static openPinned<K, V>(path: string, keyCodec: Codec<K>, valueCodec: Codec<V>): BpfMap<K, V> {
    const fd = check(native.bpf_obj_get(path), `bpf_obj_get(${path})`);
    return new BpfMap(fd, keyCodec, valueCodec, true);
  }

  get name(): string {
    return this.info.name;
  }

  get(key: K): V | undefined {
    this.assertNotPerCpu("get");
    return this.lookupRaw(key) ? this.valueCodec.decode(this.valueBuffer, 0) : undefined;
  }

  /** One value per possible CPU, or undefined when the key is absent. */
  getPerCpu(key: K): V[] | undefined {
    if (!this.lookupRaw(key)) return undefined;
    const values: V[] = [];
    for (let cpu = 0; cpu < this.cpuCount; cpu++) {
      values.push(this.valueCodec.decode(this.valueBuffer, cpu * this.valueStride));
    }
    return values;
  }

  set(key: K, value: V, flags: number = UpdateFlags.Any): void {
    this.assertNotPerCpu("set");
    this.keyCodec.encode(key, this.keyBuffer, 0);
    this.valueCodec.encode(value, this.valueBuffer, 0);
    check(native.bpf_map_update_elem(this.fd, this.keyBuffer, this.valueBuffer, flags), this.op("update"));
  }

  /** Writes the same value on every CPU (e.g. to reset counters). */
  setPerCpu(key: K, value: V): void {
    this.keyCodec.encode(key, this.keyBuffer, 0);
    this.valueBuffer.fill(0);
    for (let cpu = 0; cpu < this.cpuCount; cpu++)
      this.valueCodec.encode(value, this.valueBuffer, cpu * this.valueStride);
    check(
      native.bpf_map_update_elem(this.fd, this.keyBuffer, this.valueBuffer, UpdateFlags.Any),
      this.op("update"),
    );
  }

  /** Returns false when the key was absent. */
  delete(key: K): boolean {
    this.keyCodec.encode(key, this.keyBuffer, 0);
    const result = native.bpf_map_delete_elem(this.fd, this.keyBuffer);
    if (result === -ENOENT) return false;
    check(result, this.op("delete"));
    return true;
  }

  /** Iterates keys with BPF_MAP_GET_NEXT_KEY. Entries deleted meanwhile may restart the walk (kernel semantics). */
  *keys(): IterableIterator<K> {
    let previous: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.keyCodec.size);
      const result = native.bpf_map_get_next_key(this.fd, previous, next);
      if (result === -ENOENT) return;
      check(result, this.op("get_next_key"));
      yield this.keyCodec.decode(next, 0);
      previous = next;
    }
  }

  *entries(): IterableIterator<[K, V]> {
    for (const key of this.keys()) {
      const value = this.get(key);
      if (value !== undefined) yield [key, value];
    }
  }

  /**
   * Writes many entries with one BPF_MAP_UPDATE_BATCH syscall per call. Map types without batch
   * support (LPM trie, arrays of maps) fall back to one update per entry. Returns the count written.
   */
  updateBatch(entries: ReadonlyArray<readonly [K, V]>, flags: number = UpdateFlags.Any): number {
    this.assertNotPerCpu("updateBatch");
    if (entries.length === 0) return 0;
    if (this.info.type === MapType.LpmTrie) {
      for (const [key, value] of entries) this.set(key, value, flags);
      return entries.length;
    }
    const keys = Buffer.alloc(entries.length * this.keyCodec.size);
    const values = Buffer.alloc(entries.length * this.valueCodec.size);
    entries.forEach(([key, value], index) => {
      this.keyCodec.encode(key, keys, index * this.keyCodec.size);
      this.valueCodec.encode(value, values, index * this.valueCodec.size);
    });
    const count = [entries.length];
    check(
      native.bpf_map_update_batch(this.fd, keys, values, count, batchOptions(flags)),
      this.op("update_batch"),
    );
    return count[0];
  }

  /** Deletes many keys with BPF_MAP_DELETE_BATCH; absent keys are skipped. Returns the count deleted. */
  deleteBatch(keys: ReadonlyArray<K>): number {
    if (keys.length === 0) return 0;
    if (this.info.type === MapType.LpmTrie) return keys.filter((key) => this.delete(key)).length;
    const encoded = Buffer.alloc(keys.length * this.keyCodec.size);
    keys.forEach((key, index) => {
      this.keyCodec.encode(key, encoded, index * this.keyCodec.size);
    });
    const count = [keys.length];
    const result = native.bpf_map_delete_batch(this.fd, encoded, count, batchOptions(0));
    if (result === -ENOENT) {
      // the kernel stops at the first absent key: delete the rest one by one
      return count[0] + keys.slice(count[0] + 1).filter((key) => this.delete(key)).length;
    }
    check(result, this.op("delete_batch"));
    return count[0];
  }

  pin(path: string): void {
    check(native.bpf_obj_pin(this.fd, path), this.op(`pin(${path})`));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsFd) closeSync(this.fd);
  }

  private lookupRaw(key: K): boolean {
    this.keyCodec.encode(key, this.keyBuffer, 0);
    const result = native.bpf_map_lookup_elem(this.fd, this.keyBuffer, this.valueBuffer);
    if (result === -ENOENT) return false;
    check(result, this.op("lookup"));
    return true;
  }

  private assertNotPerCpu(operation: string): void {
    if (this.perCpu)
      throw new BpfError(`${this.op(operation)} on a per-CPU map (use the *PerCpu methods)`, 22);
  }

  private op(what: string): string {
    return `map ${this.info.name}: ${what}`;
  }
}

function batchOptions(elemFlags: number): Buffer {
  const options = Buffer.alloc(24); // struct bpf_map_batch_opts { size_t sz; __u64 elem_flags; __u64 flags; }
  options.writeBigUInt64LE(24n, 0);
  options.writeBigUInt64LE(BigInt(elemFlags), 8);
  return options;
}
