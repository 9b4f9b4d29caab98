import { mkdirSync } from "node:fs";
import type { Codec } from "./codec.js";
import { BpfError } from "./errors.js";
import { withLibbpfLog } from "./log-capture.js";
import { BpfMap } from "./map.js";
import { addressOf, lastErrno, native } from "./native.js";
import { BpfProgram } from "./program.js";

export interface OpenOptions {
  /**
   * Directory on a bpffs where maps declared with LIBBPF_PIN_BY_NAME are pinned (and, if already
   * pinned there, reused: this is how several objects share one set of maps). Created if missing.
   */
  pinRoot?: string;
}

const OPEN_OPTS_SIZE = 80;

/** An ELF BPF object: open (maps and programs described), load (verified, maps created), close. */
export class BpfObject {
  private loaded = false;
  private closed = false;
  private readonly programsByName = new Map<string, BpfProgram>();

  private constructor(
    private readonly handle: unknown,
    readonly path: string,
  ) {}

  static open(path: string, options: OpenOptions = {}): BpfObject {
    // struct bpf_object_open_opts (libbpf 1.1.2): sz@0 ... pin_root_path@24
    const opts = Buffer.alloc(OPEN_OPTS_SIZE);
    opts.writeBigUInt64LE(BigInt(OPEN_OPTS_SIZE), 0);
    const pinRoot = options.pinRoot ? Buffer.from(`${options.pinRoot}\0`) : undefined;
    if (pinRoot && options.pinRoot) {
      mkdirSync(options.pinRoot, { recursive: true });
      opts.writeBigUInt64LE(addressOf(pinRoot), 24);
    }
    return withLibbpfLog((log) => {
      const handle = native.bpf_object__open_file(path, opts);
      if (!handle) throw new BpfError(`open ${path}`, lastErrno(), log());
      if (pinRoot) pinRoot.length; // libbpf copied the string; keep it alive until here
      return new BpfObject(handle, path);
    });
  }

  /** Creates (or reuses pinned) maps and loads every program; the error carries the verifier log. */
  load(): this {
    if (this.loaded) return this;
    withLibbpfLog((log) => {
      const result = native.bpf_object__load(this.handle);
      if (result < 0) throw new BpfError(`load ${this.path}`, -result, log());
    });
    this.loaded = true;
    for (let prog = native.bpf_object__next_program(this.handle, null); prog; ) {
      const program = new BpfProgram(
        native.bpf_program__fd(prog),
        native.bpf_program__name(prog),
        native.bpf_program__section_name(prog),
        native.bpf_program__type(prog),
        false,
      );
      this.programsByName.set(program.name, program);
      prog = native.bpf_object__next_program(this.handle, prog);
    }
    return this;
  }

  programs(): BpfProgram[] {
    this.assertLoaded();
    return [...this.programsByName.values()];
  }

  program(name: string): BpfProgram {
    this.assertLoaded();
    const program = this.programsByName.get(name);
    if (!program) throw new BpfError(`${this.path}: no program named ${name}`, 2);
    return program;
  }

  mapNames(): string[] {
    const names: string[] = [];
    for (let map = native.bpf_object__next_map(this.handle, null); map; ) {
      names.push(native.bpf_map__name(map));
      map = native.bpf_object__next_map(this.handle, map);
    }
    return names;
  }

  /** A typed view of one of the object's maps; its fd is closed with the object. */
  map<K, V>(name: string, keyCodec: Codec<K>, valueCodec: Codec<V>): BpfMap<K, V> {
    this.assertLoaded();
    for (let map = native.bpf_object__next_map(this.handle, null); map; ) {
      if (native.bpf_map__name(map) === name) {
        return new BpfMap(native.bpf_map__fd(map), keyCodec, valueCodec, false);
      }
      map = native.bpf_object__next_map(this.handle, map);
    }
    throw new BpfError(`${this.path}: no map named ${name}`, 2);
  }

  /** Where libbpf pinned (or found) a map, for maps with a pinning attribute. */
  mapPinPath(name: string): string | undefined {
    for (let map = native.bpf_object__next_map(this.handle, null); map; ) {
      if (native.bpf_map__name(map) === name) return native.bpf_map__pin_path(map) ?? undefined;
      map = native.bpf_object__next_map(this.handle, map);
    }
    return undefined;
  }

  /** Frees the object; attached links and pinned maps/programs stay in the kernel. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    native.bpf_object__close(this.handle);
  }

  private assertLoaded(): void {
    if (!this.loaded) throw new BpfError(`${this.path}: not loaded`, 22);
  }
}
