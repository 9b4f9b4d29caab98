/**
 * libbpf-ts: typed bindings to the system libbpf.so.1 (through koffi), shaped like cilium/ebpf:
 * BpfObject (open/load), BpfProgram (pin, test-run), BpfMap<K, V> (codecs, batch ops, pins),
 * BpfLink (tcx, cgroup, XDP; pin, detach) and tc clsact as a fallback.
 */
export { Btf, type StructLayout } from "./btf.js";
export { bytesCodec, type Codec, encodeToBuffer, u16Codec, u32Codec, u64Codec } from "./codec.js";
export { BpfError, errnoName, isErrno } from "./errors.js";
export {
  AttachType,
  attachCgroup,
  attachTcClassic,
  attachTcx,
  attachTcxAsync,
  attachXdp,
  BpfLink,
  detachTcClassic,
  interfaceIndex,
  LinkType,
  type TcClassicAttachment,
  type TcDirection,
} from "./link.js";
export { BpfMap, type MapInfo, MapType, mapInfoFromFd, UpdateFlags } from "./map.js";
export { inNetworkNamespace } from "./netns.js";
export { BpfObject, type OpenOptions } from "./object.js";
export { BpfProgram, ProgramType, type TestRunOptions, type TestRunResult } from "./program.js";
export { RingBufferReader, type RingRecordHandler } from "./ringbuf.js";
