/**
 * The raw FFI surface: libbpf.so.1 and the few libc calls libbpf-ts needs, loaded once through
 * koffi. Everything else in libbpf-ts wraps these in typed, error-checked calls; nothing outside
 * this folder should import this module.
 *
 * libbpf's *_opts structs are passed as plain Buffers laid out by hand (offsets checked against
 * libbpf 1.1.2's headers), with pointer fields holding koffi.address() of other Buffers, which
 * must stay referenced until the call returns.
 */
import koffi from "koffi";

const libbpf = koffi.load("libbpf.so.1");
const libc = koffi.load("libc.so.6");

type Ptr = unknown;
type Addr = Buffer | null;

const linkCreate = libbpf.func(
  "int bpf_link_create(int prog_fd, int target_fd, int attach_type, const void *opts)",
);
const linkDetach = libbpf.func("int bpf_link_detach(int link_fd)");

/** Runs an int-returning call on one of koffi's worker threads. */
function onWorker(fn: { async: (...args: unknown[]) => void }, ...args: unknown[]): Promise<number> {
  return new Promise((resolve, reject) => {
    fn.async(...args, (error: unknown, result: number) => (error ? reject(error) : resolve(result)));
  });
}

/**
 * Calls that wait in the kernel, off the event loop: attaching or detaching a tcx link waits for
 * an RCU grace period (~12 ms here), during which the agent would otherwise serve nothing.
 * A worker thread shares the process's network namespace, not a setns() of the calling thread:
 * only for interfaces in the process's own namespace.
 */
export const nativeAsync = {
  bpf_link_create: (progFd: number, targetFd: number, attachType: number, opts: Addr) =>
    onWorker(linkCreate, progFd, targetFd, attachType, opts),
  bpf_link_detach: (linkFd: number) => onWorker(linkDetach, linkFd),
};

export const native = {
  // objects
  bpf_object__open_file: libbpf.func("void *bpf_object__open_file(const char *path, void *opts)") as (
    path: string,
    opts: Buffer,
  ) => Ptr,
  bpf_object__load: libbpf.func("int bpf_object__load(void *obj)") as (obj: Ptr) => number,
  bpf_object__close: libbpf.func("void bpf_object__close(void *obj)") as (obj: Ptr) => void,
  bpf_object__next_map: libbpf.func("void *bpf_object__next_map(void *obj, void *prev)") as (
    obj: Ptr,
    prev: Ptr,
  ) => Ptr,
  bpf_object__next_program: libbpf.func("void *bpf_object__next_program(void *obj, void *prev)") as (
    obj: Ptr,
    prev: Ptr,
  ) => Ptr,
  bpf_map__name: libbpf.func("const char *bpf_map__name(void *map)") as (map: Ptr) => string,
  bpf_map__fd: libbpf.func("int bpf_map__fd(void *map)") as (map: Ptr) => number,
  bpf_map__pin_path: libbpf.func("const char *bpf_map__pin_path(void *map)") as (map: Ptr) => string | null,
  bpf_program__name: libbpf.func("const char *bpf_program__name(void *prog)") as (prog: Ptr) => string,
  bpf_program__section_name: libbpf.func("const char *bpf_program__section_name(void *prog)") as (
    prog: Ptr,
  ) => string,
  bpf_program__fd: libbpf.func("int bpf_program__fd(void *prog)") as (prog: Ptr) => number,
  bpf_program__type: libbpf.func("int bpf_program__type(void *prog)") as (prog: Ptr) => number,

  // fds, pins, info
  bpf_obj_get: libbpf.func("int bpf_obj_get(const char *path)") as (path: string) => number,
  bpf_obj_pin: libbpf.func("int bpf_obj_pin(int fd, const char *path)") as (
    fd: number,
    path: string,
  ) => number,
  bpf_obj_get_info_by_fd: libbpf.func(
    "int bpf_obj_get_info_by_fd(int fd, void *info, _Inout_ uint32_t *len)",
  ) as (fd: number, info: Buffer, len: number[]) => number,

  // maps
  bpf_map_update_elem: libbpf.func(
    "int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)",
  ) as (fd: number, key: Buffer, value: Buffer, flags: number) => number,
  bpf_map_lookup_elem: libbpf.func("int bpf_map_lookup_elem(int fd, const void *key, void *value)") as (
    fd: number,
    key: Buffer,
    value: Buffer,
  ) => number,
  bpf_map_delete_elem: libbpf.func("int bpf_map_delete_elem(int fd, const void *key)") as (
    fd: number,
    key: Buffer,
  ) => number,
  bpf_map_get_next_key: libbpf.func("int bpf_map_get_next_key(int fd, const void *key, void *next)") as (
    fd: number,
    key: Addr,
    next: Buffer,
  ) => number,
  bpf_map_update_batch: libbpf.func(
    "int bpf_map_update_batch(int fd, const void *keys, const void *values, _Inout_ uint32_t *count, const void *opts)",
  ) as (fd: number, keys: Buffer, values: Buffer, count: number[], opts: Buffer) => number,
  bpf_map_delete_batch: libbpf.func(
    "int bpf_map_delete_batch(int fd, const void *keys, _Inout_ uint32_t *count, const void *opts)",
  ) as (fd: number, keys: Buffer, count: number[], opts: Buffer) => number,
  libbpf_num_possible_cpus: libbpf.func("int libbpf_num_possible_cpus(void)") as () => number,

  // programs
  bpf_prog_test_run_opts: libbpf.func("int bpf_prog_test_run_opts(int fd, void *opts)") as (
    fd: number,
    opts: Buffer,
  ) => number,

  // links and attach
  bpf_link_create: linkCreate as unknown as (
    progFd: number,
    targetFd: number,
    attachType: number,
    opts: Addr,
  ) => number,
  bpf_link_detach: linkDetach as unknown as (linkFd: number) => number,
  bpf_link_update: libbpf.func("int bpf_link_update(int link_fd, int new_prog_fd, const void *opts)") as (
    linkFd: number,
    newProgFd: number,
    opts: null,
  ) => number,
  bpf_tc_hook_create: libbpf.func("int bpf_tc_hook_create(void *hook)") as (hook: Buffer) => number,
  bpf_tc_attach: libbpf.func("int bpf_tc_attach(const void *hook, void *opts)") as (
    hook: Buffer,
    opts: Buffer,
  ) => number,
  bpf_tc_detach: libbpf.func("int bpf_tc_detach(const void *hook, const void *opts)") as (
    hook: Buffer,
    opts: Buffer,
  ) => number,

  // ring buffers (BPF_MAP_TYPE_RINGBUF)
  ring_buffer__new: libbpf.func(
    "void *ring_buffer__new(int map_fd, void *sample_cb, void *ctx, const void *opts)",
  ) as (mapFd: number, sampleCb: unknown, ctx: null, opts: null) => Ptr,
  ring_buffer__consume: libbpf.func("int ring_buffer__consume(void *rb)") as (rb: Ptr) => number,
  ring_buffer__free: libbpf.func("void ring_buffer__free(void *rb)") as (rb: Ptr) => void,

  // BTF
  btf__parse: libbpf.func("void *btf__parse(const char *path, void *ext)") as (
    path: string,
    ext: null,
  ) => Ptr,
  btf__free: libbpf.func("void btf__free(void *btf)") as (btf: Ptr) => void,
  btf__find_by_name_kind: libbpf.func(
    "int btf__find_by_name_kind(void *btf, const char *name, uint32_t kind)",
  ) as (btf: Ptr, name: string, kind: number) => number,
  btf__type_by_id: libbpf.func("void *btf__type_by_id(void *btf, uint32_t id)") as (
    btf: Ptr,
    id: number,
  ) => Ptr,
  btf__name_by_offset: libbpf.func("const char *btf__name_by_offset(void *btf, uint32_t offset)") as (
    btf: Ptr,
    offset: number,
  ) => string,

  // diagnostics
  libbpf_set_print: libbpf.func("void *libbpf_set_print(void *fn)") as (fn: unknown) => Ptr,
  vsnprintf: libc.func("int vsnprintf(void *buf, size_t size, void *fmt, void *ap)") as (
    buf: Buffer,
    size: number,
    fmt: Ptr,
    ap: Buffer,
  ) => number,

  // libc
  if_nametoindex: libc.func("unsigned int if_nametoindex(const char *name)") as (name: string) => number,
  setns: libc.func("int setns(int fd, int nstype)") as (fd: number, nstype: number) => number,
};

export const ringSampleCallbackType = koffi.proto(
  "int ring_buffer_sample_fn(void *ctx, void *data, size_t size)",
);

export const printCallbackType = koffi.proto("int libbpf_print_fn(int level, void *fmt, void *ap)");

/** Reads the C string or struct memory at a native pointer. */
export function viewNative(pointer: unknown, length: number): Buffer {
  return Buffer.from(koffi.view(pointer, length));
}

export function addressOf(buffer: Buffer): bigint {
  return koffi.address(buffer);
}

export function lastErrno(): number {
  return koffi.errno();
}

export { koffi };
