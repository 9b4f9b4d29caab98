/**
 * Struct layouts from an object's BTF (parsed with libbpf's btf__* functions), so tests can
 * check that TypeScript codecs and C structs agree byte for byte.
 */
import { BpfError } from "./errors.js";
import { lastErrno, native, viewNative } from "./native.js";

const BTF_KIND_STRUCT = 4;
const BTF_KIND_UNION = 5;
const BTF_TYPE_HEADER = 12; // struct btf_type { __u32 name_off; __u32 info; __u32 size; }
const BTF_MEMBER_SIZE = 12; // struct btf_member { __u32 name_off; __u32 type; __u32 offset; }

export interface StructLayout {
  name: string;
  size: number;
  /** member name -> byte offset */
  members: Map<string, number>;
}

export class Btf {
  private constructor(private readonly handle: unknown) {}

  /** Parses the .BTF section of an ELF object (or a raw BTF file such as /sys/kernel/btf/vmlinux). */
  static parse(path: string): Btf {
    const handle = native.btf__parse(path, null);
    if (!handle) throw new BpfError(`btf__parse(${path})`, lastErrno());
    return new Btf(handle);
  }

  structLayout(name: string): StructLayout {
    let id = native.btf__find_by_name_kind(this.handle, name, BTF_KIND_STRUCT);
    if (id < 0) id = native.btf__find_by_name_kind(this.handle, name, BTF_KIND_UNION);
    if (id < 0) throw new BpfError(`BTF: no struct or union ${name}`, -id);
    const typePointer = native.btf__type_by_id(this.handle, id);
    const header = viewNative(typePointer, BTF_TYPE_HEADER);
    const info = header.readUInt32LE(4);
    const memberCount = info & 0xffff;
    const bitfieldOffsets = info >>> 31 === 1;
    const all = viewNative(typePointer, BTF_TYPE_HEADER + memberCount * BTF_MEMBER_SIZE);
    const members = new Map<string, number>();
    for (let index = 0; index < memberCount; index++) {
      const at = BTF_TYPE_HEADER + index * BTF_MEMBER_SIZE;
      const memberName = native.btf__name_by_offset(this.handle, all.readUInt32LE(at));
      const rawOffset = all.readUInt32LE(at + 8);
      const bitOffset = bitfieldOffsets ? rawOffset & 0xffffff : rawOffset;
      members.set(memberName, bitOffset / 8);
    }
    return { name, size: header.readUInt32LE(8), members };
  }

  close(): void {
    native.btf__free(this.handle);
  }
}
