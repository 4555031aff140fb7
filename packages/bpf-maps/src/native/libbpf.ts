/**
 * The one place that loads native code: libbpf.so.1 (Debian libbpf1 1.1.x) and libc through koffi.
 * Everything else in src/native calls these typed wrappers. libbpf 1.x returns -errno from int-returning
 * calls and NULL + errno from pointer-returning calls (toolchain.md).
 */
import koffi, { type TypeObject } from 'koffi'

/** An opaque libbpf pointer (struct bpf_object *, struct bpf_map *, struct bpf_program *). */
export type Ptr = bigint

const lib = koffi.load('libbpf.so.1')
const libc = koffi.load('libc.so.6')

koffi.opaque('bpf_object')
koffi.opaque('bpf_map')
koffi.opaque('bpf_program')
koffi.opaque('ring_buffer')

/** libbpf's ring_buffer_sample_fn: called once per record during ring_buffer__consume; < 0 stops the consume. */
export const RingBufferSampleFn = koffi.proto('int kmesh_ring_buffer_sample_fn(void *ctx, void *data, size_t size)')

/** struct bpf_map_create_opts (bpf.h, libbpf 1.1): 48 bytes, `sz` must be set. */
const MapCreateOpts = koffi.struct('bpf_map_create_opts', {
  sz: 'size_t',
  btf_fd: 'uint32_t',
  btf_key_type_id: 'uint32_t',
  btf_value_type_id: 'uint32_t',
  btf_vmlinux_value_type_id: 'uint32_t',
  inner_map_fd: 'uint32_t',
  map_flags: 'uint32_t',
  map_extra: 'uint64_t',
  numa_node: 'uint32_t',
  map_ifindex: 'uint32_t',
})

/** struct bpf_map_batch_opts: 24 bytes. */
const MapBatchOpts = koffi.struct('bpf_map_batch_opts', { sz: 'size_t', elem_flags: 'uint64_t', flags: 'uint64_t' })

export const sizes = {
  mapCreateOpts: koffi.sizeof(MapCreateOpts),
  mapBatchOpts: koffi.sizeof(MapBatchOpts),
  /** struct bpf_test_run_opts (bpf.h, libbpf 1.1). Built by hand in a Buffer: the kernel writes back into ctx_in. */
  testRunOpts: 80,
  /** struct bpf_map_info / bpf_prog_info (linux/bpf.h of the 6.1 uapi headers). */
  mapInfo: 88,
  progInfo: 232,
  /** struct bpf_link_info: type, id, prog_id, then a union whose cgroup arm is { u64 cgroup_id; u32 attach_type }. */
  linkInfo: 64,
}

export const native = {
  // maps
  bpf_map_create: lib.func(
    'int bpf_map_create(int type, const char *name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, const bpf_map_create_opts *opts)',
  ),
  bpf_map_update_elem: lib.func('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
  bpf_map_lookup_elem: lib.func('int bpf_map_lookup_elem(int fd, const void *key, _Out_ void *value)'),
  bpf_map_delete_elem: lib.func('int bpf_map_delete_elem(int fd, const void *key)'),
  bpf_map_get_next_key: lib.func('int bpf_map_get_next_key(int fd, const void *key, _Out_ void *next_key)'),
  bpf_map_update_batch: lib.func(
    'int bpf_map_update_batch(int fd, const void *keys, const void *values, _Inout_ uint32_t *count, const bpf_map_batch_opts *opts)',
  ),
  bpf_map_delete_batch: lib.func(
    'int bpf_map_delete_batch(int fd, const void *keys, _Inout_ uint32_t *count, const bpf_map_batch_opts *opts)',
  ),
  bpf_map_lookup_batch: lib.func(
    'int bpf_map_lookup_batch(int fd, void *in_batch, _Out_ void *out_batch, _Out_ void *keys, _Out_ void *values, _Inout_ uint32_t *count, const bpf_map_batch_opts *opts)',
  ),
  // objects in bpffs and info
  bpf_obj_pin: lib.func('int bpf_obj_pin(int fd, const char *path)'),
  bpf_obj_get: lib.func('int bpf_obj_get(const char *path)'),
  bpf_obj_get_info_by_fd: lib.func(
    'int bpf_obj_get_info_by_fd(int fd, _Inout_ void *info, _Inout_ uint32_t *info_len)',
  ),
  // programs and links
  bpf_prog_test_run_opts: lib.func('int bpf_prog_test_run_opts(int fd, void *opts)'),
  bpf_link_create: lib.func('int bpf_link_create(int prog_fd, int target_fd, int attach_type, void *opts)'),
  bpf_link_detach: lib.func('int bpf_link_detach(int link_fd)'),
  bpf_link_update: lib.func('int bpf_link_update(int link_fd, int new_prog_fd, void *opts)'),
  bpf_enable_stats: lib.func('int bpf_enable_stats(int type)'),
  bpf_prog_query: lib.func(
    'int bpf_prog_query(int target_fd, int type, uint32_t query_flags, _Out_ uint32_t *attach_flags, _Out_ uint32_t *prog_ids, _Inout_ uint32_t *prog_cnt)',
  ),
  bpf_prog_get_fd_by_id: lib.func('int bpf_prog_get_fd_by_id(uint32_t id)'),
  // ring buffers (BPF_MAP_TYPE_RINGBUF): the consumer side, see ring-buffer.ts
  ring_buffer__new: lib.func(
    'ring_buffer *ring_buffer__new(int map_fd, kmesh_ring_buffer_sample_fn *sample_cb, void *ctx, void *opts)',
  ),
  ring_buffer__consume: lib.func('int ring_buffer__consume(ring_buffer *rb)'),
  ring_buffer__epoll_fd: lib.func('int ring_buffer__epoll_fd(ring_buffer *rb)'),
  ring_buffer__free: lib.func('void ring_buffer__free(ring_buffer *rb)'),
  // feature probes (libbpf >= 1.0): 1 supported, 0 not, < 0 the probe itself failed
  libbpf_probe_bpf_prog_type: lib.func('int libbpf_probe_bpf_prog_type(int prog_type, const void *opts)'),
  libbpf_probe_bpf_map_type: lib.func('int libbpf_probe_bpf_map_type(int map_type, const void *opts)'),
  libbpf_probe_bpf_helper: lib.func('int libbpf_probe_bpf_helper(int prog_type, int helper_id, const void *opts)'),
  // bpf_object
  bpf_object__open_file: lib.func('bpf_object *bpf_object__open_file(const char *path, void *opts)'),
  bpf_object__load: lib.func('int bpf_object__load(bpf_object *obj)'),
  bpf_object__close: lib.func('void bpf_object__close(bpf_object *obj)'),
  bpf_object__next_map: lib.func('bpf_map *bpf_object__next_map(bpf_object *obj, bpf_map *prev)'),
  bpf_object__next_program: lib.func('bpf_program *bpf_object__next_program(bpf_object *obj, bpf_program *prev)'),
  bpf_map__name: lib.func('const char *bpf_map__name(bpf_map *map)'),
  bpf_map__type: lib.func('int bpf_map__type(bpf_map *map)'),
  bpf_map__key_size: lib.func('uint32_t bpf_map__key_size(bpf_map *map)'),
  bpf_map__value_size: lib.func('uint32_t bpf_map__value_size(bpf_map *map)'),
  bpf_map__max_entries: lib.func('uint32_t bpf_map__max_entries(bpf_map *map)'),
  bpf_map__map_flags: lib.func('uint32_t bpf_map__map_flags(bpf_map *map)'),
  bpf_map__set_max_entries: lib.func('int bpf_map__set_max_entries(bpf_map *map, uint32_t max_entries)'),
  bpf_map__is_internal: lib.func('bool bpf_map__is_internal(bpf_map *map)'),
  bpf_map__set_pin_path: lib.func('int bpf_map__set_pin_path(bpf_map *map, const char *path)'),
  bpf_map__reuse_fd: lib.func('int bpf_map__reuse_fd(bpf_map *map, int fd)'),
  bpf_map__fd: lib.func('int bpf_map__fd(bpf_map *map)'),
  bpf_program__name: lib.func('const char *bpf_program__name(bpf_program *prog)'),
  bpf_program__section_name: lib.func('const char *bpf_program__section_name(bpf_program *prog)'),
  bpf_program__fd: lib.func('int bpf_program__fd(bpf_program *prog)'),
  bpf_program__type: lib.func('int bpf_program__type(bpf_program *prog)'),
  bpf_program__expected_attach_type: lib.func('int bpf_program__expected_attach_type(bpf_program *prog)'),
  // libc
  fcntl_dupfd: libc.func('int fcntl(int fd, int cmd, int arg)'),
  close: libc.func('int close(int fd)'),
  flock: libc.func('int flock(int fd, int operation)'),
  mount: libc.func(
    'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)',
  ),
} as const

/** The errno of the last native call (for libc calls and NULL-returning libbpf calls). */
export function lastErrno(): number {
  return koffi.errno()
}

/** A callback pointer native code can call (koffi.register): keep it registered while native code holds it. */
export function registerCallback(fn: (...args: never[]) => unknown, proto: TypeObject): unknown {
  return koffi.register(fn as (...args: unknown[]) => unknown, koffi.pointer(proto))
}

export function unregisterCallback(cb: unknown): void {
  koffi.unregister(cb as bigint)
}

/** The bytes at a native pointer, without a copy: valid only while native code keeps them (e.g. during a callback). */
export function viewOf(ptr: unknown, length: number): Uint8Array {
  return new Uint8Array(koffi.view(ptr, length))
}

/** Watches a file descriptor with the event loop (libuv poll), calling back when it is readable. */
export function pollReadable(fd: number, onReadable: () => void): { close(): void; unref(): void } {
  // Watched for readability only, so every call means readable (koffi 3.3 calls back with (status, events), not
  // the (events) its typings say; neither is needed).
  const handle = koffi.node.poll(fd, { readable: true }, () => onReadable())
  return { close: () => handle.close(), unref: () => handle.unref() }
}

export function addressOf(buf: Buffer): bigint {
  return koffi.address(buf)
}

export function mapCreateOpts(mapFlags: number): Record<string, number | bigint> {
  return {
    sz: sizes.mapCreateOpts,
    btf_fd: 0,
    btf_key_type_id: 0,
    btf_value_type_id: 0,
    btf_vmlinux_value_type_id: 0,
    inner_map_fd: 0,
    map_flags: mapFlags >>> 0,
    map_extra: 0n,
    numa_node: 0,
    map_ifindex: 0,
  }
}

export function batchOpts(elemFlags: number): Record<string, number | bigint> {
  return { sz: sizes.mapBatchOpts, elem_flags: BigInt(elemFlags), flags: 0n }
}

const F_DUPFD_CLOEXEC = 1030

/** A close-on-exec duplicate, so a handle can outlive the bpf_object that created the fd. */
export function dupFd(fd: number): number {
  const dup = native.fcntl_dupfd(fd, F_DUPFD_CLOEXEC, 0) as number
  if (dup < 0) throw new Error(`fcntl(F_DUPFD_CLOEXEC, ${fd}) failed: errno ${lastErrno()}`)
  return dup
}

export function closeFd(fd: number): void {
  native.close(fd)
}

// --- libbpf's log: captured instead of printed, so it can travel inside errors ---------------------------------

const LIBBPF_WARN = 0
const LIBBPF_INFO = 1
const vsnprintf = libc.func('int vsnprintf(_Out_ uint8_t *buf, size_t size, const char *fmt, void *ap)')
const PrintFn = koffi.proto('int kmesh_libbpf_print_fn(int level, const char *fmt, void *ap)')
const libbpf_set_print = lib.func('void *libbpf_set_print(kmesh_libbpf_print_fn *fn)')

const formatBuf = Buffer.alloc(64 * 1024)
let capture: string[] | undefined
const recent: string[] = []

function onLibbpfLog(level: number, fmt: string, ap: bigint): number {
  if (level > LIBBPF_INFO && !capture) return 0
  // va_list on x86-64 is an array type, passed as a pointer: vsnprintf consumes it exactly like libbpf's default printer.
  const n = vsnprintf(formatBuf, formatBuf.length, fmt, ap) as number
  const line = formatBuf.subarray(0, Math.max(0, Math.min(n, formatBuf.length - 1))).toString('utf8')
  if (capture && level <= LIBBPF_INFO) capture.push(line)
  if (level === LIBBPF_WARN) {
    recent.push(line)
    if (recent.length > 50) recent.shift()
  }
  return 0
}

// Registered once for the life of the process: libbpf keeps the pointer in a global.
libbpf_set_print(koffi.register(onLibbpfLog, koffi.pointer(PrintFn)))

/**
 * Runs fn while collecting libbpf's warnings and info lines (the verifier log arrives as warnings when a program
 * fails to load); fn reads what was collected so far through `log()` to put it into its errors.
 */
export function withLibbpfLog<T>(fn: (log: () => string) => T): T {
  const outer = capture
  const lines: string[] = []
  capture = lines
  try {
    return fn(() => lines.join(''))
  } finally {
    capture = outer
    outer?.push(...lines)
  }
}

/** Recent libbpf warnings (for an error raised outside withLibbpfLog). */
export function recentLibbpfWarnings(): string {
  return recent.join('')
}
