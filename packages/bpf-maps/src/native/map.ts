/**
 * A loaded BPF map: a handle that owns one fd (conventions.md §8). Keys and values cross as Buffers of exactly
 * key_size / value_size bytes; batch calls take packed records (count × size) so a writer encodes many records
 * into one buffer and makes one syscall.
 */
import { readFileSync, readlinkSync } from 'node:fs'
import type { Codec } from '../codecs/codec.js'
import { BpfError, Errno, errnoName, KeyNotFoundError, MapFullError, SpecMismatchError } from './errors.js'
import { batchOpts, closeFd, mapCreateOpts, native, sizes } from './libbpf.js'
import { TypedMap } from './typed-map.js'

/** What a map is, as data: can be read and changed before the map exists. */
export interface MapSpec {
  name: string
  /** BPF_MAP_TYPE_* (MapType in the codecs entry point). */
  type: number
  keySize: number
  valueSize: number
  maxEntries: number
  /** BPF_F_* map flags, e.g. BPF_F_NO_PREALLOC. */
  flags: number
}

/** What the kernel reports about a live map (bpf_obj_get_info_by_fd). */
export interface MapInfo extends MapSpec {
  id: number
  /** The kernel's copy of the name: at most 15 characters. */
  kernelName: string
}

export type PutMode = 'any' | 'noexist' | 'exist'
const putFlags: Record<PutMode, number> = { any: 0, noexist: 1, exist: 2 }

/** Map types whose keys are indexes: E2BIG there means "index out of range", never "full". */
const indexedTypes = new Set([
  2 /* array */, 3 /* prog_array */, 4 /* perf_event_array */, 6 /* percpu_array */, 8 /* cgroup_array */,
  12 /* array_of_maps */,
])

/** Per-CPU map types: a lookup returns one value per possible CPU, each padded to 8 bytes. */
const perCpuTypes = new Set([
  5 /* percpu_hash */, 6 /* percpu_array */, 10 /* lru_percpu_hash */, 21 /* percpu_cgroup_storage */,
])

let possibleCpuCount: number | undefined
/** The kernel's possible CPUs (/sys/devices/system/cpu/possible, e.g. "0-3"): how many values a per-CPU lookup returns. */
export function possibleCpus(): number {
  if (possibleCpuCount === undefined) {
    const text = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim()
    let n = 0
    for (const part of text.split(',')) {
      const [a, b] = part.split('-').map(Number)
      n += b === undefined ? 1 : (b as number) - (a as number) + 1
    }
    possibleCpuCount = n
  }
  return possibleCpuCount
}

function checkSpec(spec: MapSpec): void {
  for (const field of ['type', 'keySize', 'valueSize', 'maxEntries', 'flags'] as const) {
    const v = spec[field]
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff)
      throw new RangeError(`MapSpec ${spec.name}: ${field} must be a u32, got ${v}`)
  }
}

/** Reads map info from an fd; refuses an fd that is not a map. */
export function mapInfoOf(fd: number, what: string): MapInfo {
  let kind = ''
  try {
    kind = readlinkSync(`/proc/self/fd/${fd}`)
  } catch {
    /* no procfs: trust the kernel's answer below */
  }
  if (kind && kind !== 'anon_inode:bpf-map') {
    throw new SpecMismatchError('bpf_obj_get_info_by_fd', `${what} is not a BPF map (${kind})`)
  }
  const info = Buffer.alloc(sizes.mapInfo)
  const len = [info.length]
  const rc = native.bpf_obj_get_info_by_fd(fd, info, len) as number
  if (rc < 0)
    throw new BpfError({
      op: 'bpf_obj_get_info_by_fd',
      errno: rc,
      message: `bpf_obj_get_info_by_fd(${what}) failed: ${errnoName(rc)}`,
    })
  const nameBytes = info.subarray(24, 40)
  const nul = nameBytes.indexOf(0)
  const kernelName = nameBytes.subarray(0, nul < 0 ? 16 : nul).toString('latin1')
  return {
    type: info.readUInt32LE(0),
    id: info.readUInt32LE(4),
    keySize: info.readUInt32LE(8),
    valueSize: info.readUInt32LE(12),
    maxEntries: info.readUInt32LE(16),
    flags: info.readUInt32LE(20),
    name: kernelName,
    kernelName,
  }
}

export class BpfMap implements Disposable {
  readonly spec: MapSpec
  #fd: number
  #batchUnsupported = false

  /** Wraps an fd this handle now owns (closed by close()). */
  constructor(fd: number, spec: MapSpec) {
    this.#fd = fd
    this.spec = Object.freeze({ ...spec })
  }

  /** Creates an unpinned map (bpf_map_create). */
  static create(spec: MapSpec): BpfMap {
    checkSpec(spec)
    const fd = native.bpf_map_create(
      spec.type,
      spec.name,
      spec.keySize,
      spec.valueSize,
      spec.maxEntries,
      mapCreateOpts(spec.flags),
    ) as number
    if (fd < 0) {
      throw new BpfError({
        op: 'bpf_map_create',
        errno: fd,
        mapName: spec.name,
        message: `bpf_map_create ${spec.name} (type ${spec.type}, key ${spec.keySize} B, value ${spec.valueSize} B, max_entries ${spec.maxEntries}, flags 0x${spec.flags.toString(16)}) failed: ${errnoText(fd)}`,
      })
    }
    return new BpfMap(fd, spec)
  }

  /**
   * Opens a map pinned in bpffs. Every field of `expect` that is given must equal the live map's (name excepted:
   * it only names the map in errors), so a stale pin with another layout is refused here, not at the first write.
   */
  static openPinned(path: string, expect: Partial<MapSpec> = {}): BpfMap {
    const fd = native.bpf_obj_get(path) as number
    if (fd < 0)
      throw new BpfError({
        op: 'bpf_obj_get',
        errno: fd,
        mapName: expect.name,
        message: `bpf_obj_get ${path} failed: ${errnoText(fd)}`,
      })
    try {
      const info = mapInfoOf(fd, path)
      const mismatch = specMismatch(expect, info)
      if (mismatch) {
        throw new SpecMismatchError(
          'openPinned',
          `pinned map ${path} does not match the expected spec: ${mismatch}`,
          expect.name ?? info.name,
        )
      }
      return new BpfMap(fd, {
        name: expect.name ?? info.name,
        type: info.type,
        keySize: info.keySize,
        valueSize: info.valueSize,
        maxEntries: info.maxEntries,
        flags: info.flags,
      })
    } catch (err) {
      closeFd(fd)
      throw err
    }
  }

  get fd(): number {
    if (this.#fd < 0) throw new Error(`map ${this.spec.name} is closed`)
    return this.#fd
  }

  get closed(): boolean {
    return this.#fd < 0
  }

  /** What the kernel says about this map now (id, sizes, max entries). */
  info(): MapInfo {
    return mapInfoOf(this.fd, `map ${this.spec.name}`)
  }

  get(key: Buffer): Buffer | undefined {
    this.#checkKey(key, 'get')
    if (perCpuTypes.has(this.spec.type))
      throw new TypeError(`get on per-CPU map ${this.spec.name}: use getPerCpu (one value per CPU)`)
    const value = Buffer.alloc(this.spec.valueSize)
    const rc = native.bpf_map_lookup_elem(this.fd, key, value) as number
    if (rc === -Errno.ENOENT) return undefined
    if (rc < 0) throw this.#error('bpf_map_lookup_elem', rc, key)
    return value
  }

  /** A per-CPU map's values for one key: one Buffer of value_size bytes per possible CPU. */
  getPerCpu(key: Buffer): Buffer[] | undefined {
    this.#checkKey(key, 'getPerCpu')
    if (!perCpuTypes.has(this.spec.type)) throw new TypeError(`getPerCpu on map ${this.spec.name}: not a per-CPU map`)
    const stride = Math.ceil(this.spec.valueSize / 8) * 8
    const all = Buffer.alloc(stride * possibleCpus())
    const rc = native.bpf_map_lookup_elem(this.fd, key, all) as number
    if (rc === -Errno.ENOENT) return undefined
    if (rc < 0) throw this.#error('bpf_map_lookup_elem', rc, key)
    return Array.from({ length: possibleCpus() }, (_, cpu) =>
      all.subarray(cpu * stride, cpu * stride + this.spec.valueSize),
    )
  }

  /** Sets a per-CPU map's value for one key on every possible CPU (`value` is value_size bytes, the same on each). */
  putPerCpu(key: Buffer, value: Buffer): void {
    this.#checkKey(key, 'putPerCpu')
    this.#checkValue(value, 1, 'putPerCpu')
    if (!perCpuTypes.has(this.spec.type)) throw new TypeError(`putPerCpu on map ${this.spec.name}: not a per-CPU map`)
    const stride = Math.ceil(this.spec.valueSize / 8) * 8
    const all = Buffer.alloc(stride * possibleCpus())
    for (let cpu = 0; cpu < possibleCpus(); cpu++) value.copy(all, cpu * stride)
    const rc = native.bpf_map_update_elem(this.fd, key, all, putFlags.any) as number
    if (rc < 0) throw this.#error('bpf_map_update_elem', rc, key, 'any')
  }

  put(key: Buffer, value: Buffer, mode: PutMode = 'any'): void {
    this.#checkKey(key, 'put')
    this.#checkValue(value, 1, 'put')
    const rc = native.bpf_map_update_elem(this.fd, key, value, putFlags[mode]) as number
    if (rc < 0) throw this.#error('bpf_map_update_elem', rc, key, mode)
  }

  /** Deletes one key; false when it was not there. */
  delete(key: Buffer): boolean {
    this.#checkKey(key, 'delete')
    const rc = native.bpf_map_delete_elem(this.fd, key) as number
    if (rc === -Errno.ENOENT) return false
    if (rc < 0) throw this.#error('bpf_map_delete_elem', rc, key)
    return true
  }

  /** Every key, through bpf_map_get_next_key; each yielded Buffer is the caller's to keep. */
  *keys(): IterableIterator<Buffer> {
    let prev: Buffer | null = null
    for (;;) {
      const next = Buffer.alloc(this.spec.keySize)
      const rc = native.bpf_map_get_next_key(this.fd, prev, next) as number
      if (rc === -Errno.ENOENT) return
      if (rc < 0) throw this.#error('bpf_map_get_next_key', rc, prev ?? undefined)
      yield next
      prev = next
    }
  }

  /** Every entry; a key deleted between the key walk and its lookup is skipped. */
  *entries(): IterableIterator<[Buffer, Buffer]> {
    for (const key of this.keys()) {
      const value = this.get(key)
      if (value) yield [key, value]
    }
  }

  /** Number of entries now (one get_next_key walk, no allocation per key). */
  count(): number {
    const a = Buffer.alloc(this.spec.keySize)
    const b = Buffer.alloc(this.spec.keySize)
    let prev: Buffer | null = null
    let next = a
    let n = 0
    for (;;) {
      const rc = native.bpf_map_get_next_key(this.fd, prev, next) as number
      if (rc === -Errno.ENOENT) return n
      if (rc < 0) throw this.#error('bpf_map_get_next_key', rc)
      n++
      prev = next
      next = next === a ? b : a
    }
  }

  /**
   * Writes `count` packed records (keys: count × keySize bytes, values: count × valueSize) with
   * bpf_map_update_batch, resuming after an interrupted call; one element at a time where the kernel has no
   * batch for this map type. A full map raises MapFullError naming the first record that did not fit
   * (records before it are written).
   */
  putBatch(keys: Buffer, values: Buffer, count: number, mode: PutMode = 'any'): void {
    this.#checkBatch(keys, count, this.spec.keySize, 'keys', 'putBatch')
    this.#checkBatch(values, count, this.spec.valueSize, 'values', 'putBatch')
    const ks = this.spec.keySize
    const vs = this.spec.valueSize
    const flags = putFlags[mode]
    let done = 0
    while (done < count && !this.#batchUnsupported) {
      const n = [count - done]
      const rc = native.bpf_map_update_batch(
        this.fd,
        keys.subarray(done * ks),
        values.subarray(done * vs),
        n,
        batchOpts(flags),
      ) as number
      if (rc >= 0) return
      if (isBatchUnsupported(rc)) {
        this.#batchUnsupported = true
        break
      }
      done += n[0] ?? 0
      if (rc === -Errno.EINTR || rc === -Errno.EAGAIN) continue
      throw this.#error('bpf_map_update_batch', rc, keys.subarray(done * ks, (done + 1) * ks), mode, done)
    }
    for (; done < count; done++) {
      const key = keys.subarray(done * ks, (done + 1) * ks)
      const rc = native.bpf_map_update_elem(this.fd, key, values.subarray(done * vs, (done + 1) * vs), flags) as number
      if (rc < 0) throw this.#error('bpf_map_update_elem', rc, key, mode, done)
    }
  }

  /**
   * Deletes `count` packed keys with bpf_map_delete_batch. Every key must exist: the first missing one raises
   * KeyNotFoundError naming it (keys before it are deleted, the rest are not).
   */
  deleteBatch(keys: Buffer, count: number): void {
    this.#checkBatch(keys, count, this.spec.keySize, 'keys', 'deleteBatch')
    const ks = this.spec.keySize
    let done = 0
    while (done < count && !this.#batchUnsupported) {
      const n = [count - done]
      const rc = native.bpf_map_delete_batch(this.fd, keys.subarray(done * ks), n, batchOpts(0)) as number
      if (rc >= 0) return
      if (isBatchUnsupported(rc)) {
        this.#batchUnsupported = true
        break
      }
      done += n[0] ?? 0
      if (rc === -Errno.EINTR || rc === -Errno.EAGAIN) continue
      throw this.#error('bpf_map_delete_batch', rc, keys.subarray(done * ks, (done + 1) * ks), undefined, done)
    }
    for (; done < count; done++) {
      const key = keys.subarray(done * ks, (done + 1) * ks)
      const rc = native.bpf_map_delete_elem(this.fd, key) as number
      if (rc < 0) throw this.#error('bpf_map_delete_elem', rc, key, undefined, done)
    }
  }

  /**
   * Reads the whole map as packed records with bpf_map_lookup_batch (chunks of `chunk` records), or by walking
   * the keys where the kernel has no batch lookup for this type.
   */
  lookupBatch(chunk = 4096): { keys: Buffer; values: Buffer; count: number } {
    const keyParts: Buffer[] = []
    const valueParts: Buffer[] = []
    let total = 0
    // Each chunk in buffers of its own, kept as they are and joined once.
    this.#scan(
      (keys, values, count) => {
        keyParts.push(keys)
        valueParts.push(values)
        total += count
      },
      chunk,
      false,
    )
    return {
      keys: Buffer.concat(keyParts, total * this.spec.keySize),
      values: Buffer.concat(valueParts, total * this.spec.valueSize),
      count: total,
    }
  }

  /**
   * Reads the whole map a chunk at a time and hands each chunk's packed records to `visit`: the buffers are reused
   * for the next chunk (copy what must outlive the call). A reader that keeps a few records of a large map pays
   * for neither one buffer of the whole map nor the copy into it (explain's read of km_backend at 100k backends:
   * ~130 ms as one buffer).
   */
  scanBatches(visit: (keys: Buffer, values: Buffer, count: number) => void, chunk = 4096): void {
    this.#scan(visit, chunk, true)
  }

  /** The batch walk of lookupBatch and scanBatches: `reuse` hands every chunk the same buffers. */
  #scan(visit: (keys: Buffer, values: Buffer, count: number) => void, chunk: number, reuse: boolean): void {
    const ks = this.spec.keySize
    const vs = this.spec.valueSize
    const token = [Buffer.alloc(Math.max(ks, 8)), Buffer.alloc(Math.max(ks, 8))] as const
    let first = true
    let size = chunk
    let keys = Buffer.allocUnsafe(size * ks)
    let values = Buffer.allocUnsafe(size * vs)
    const n = [0]
    for (;;) {
      n[0] = size
      const rc = native.bpf_map_lookup_batch(
        this.fd,
        first ? null : token[0],
        token[1],
        keys,
        values,
        n,
        batchOpts(0),
      ) as number
      if (rc < 0 && isBatchUnsupported(rc)) {
        const all = this.#lookupByWalk()
        if (all.count > 0) visit(all.keys, all.values, all.count)
        return
      }
      // A hash bucket larger than the chunk: retry the same position with room for it.
      if (rc === -Errno.ENOSPC) {
        size *= 2
        keys = Buffer.allocUnsafe(size * ks)
        values = Buffer.allocUnsafe(size * vs)
        continue
      }
      if (rc < 0 && rc !== -Errno.ENOENT) throw this.#error('bpf_map_lookup_batch', rc)
      const got = n[0] ?? 0
      if (got > 0) visit(keys.subarray(0, got * ks), values.subarray(0, got * vs), got)
      if (rc === -Errno.ENOENT) break
      if (got > 0 && !reuse) {
        keys = Buffer.allocUnsafe(size * ks)
        values = Buffer.allocUnsafe(size * vs)
      }
      token[1].copy(token[0])
      first = false
    }
  }

  /** Pins this map at a bpffs path (bpf_obj_pin); the map then outlives this process. */
  pin(path: string): void {
    const rc = native.bpf_obj_pin(this.fd, path) as number
    if (rc < 0)
      throw new BpfError({
        op: 'bpf_obj_pin',
        errno: rc,
        mapName: this.spec.name,
        message: `bpf_obj_pin map ${this.spec.name} at ${path} failed: ${errnoText(rc)}`,
      })
  }

  /** A handle that encodes and decodes through codecs whose sizes must equal this map's key and value sizes. */
  typed<K, V>(key: Codec<K>, value: Codec<V>): TypedMap<K, V> {
    const problems: string[] = []
    if (key.size !== this.spec.keySize)
      problems.push(`key codec ${key.cStruct} is ${key.size} bytes, the map's key is ${this.spec.keySize}`)
    if (value.size !== this.spec.valueSize)
      problems.push(`value codec ${value.cStruct} is ${value.size} bytes, the map's value is ${this.spec.valueSize}`)
    if (problems.length)
      throw new SpecMismatchError('typed', `map ${this.spec.name}: ${problems.join('; ')}`, this.spec.name)
    return new TypedMap(this, key, value)
  }

  close(): void {
    if (this.#fd >= 0) closeFd(this.#fd)
    this.#fd = -1
  }

  [Symbol.dispose](): void {
    this.close()
  }

  #lookupByWalk(): { keys: Buffer; values: Buffer; count: number } {
    const keys: Buffer[] = []
    const values: Buffer[] = []
    for (const [k, v] of this.entries()) {
      keys.push(k)
      values.push(v)
    }
    return { keys: Buffer.concat(keys), values: Buffer.concat(values), count: keys.length }
  }

  #checkKey(key: Buffer, op: string): void {
    if (key.length !== this.spec.keySize)
      throw new RangeError(
        `${op} on map ${this.spec.name}: key is ${key.length} bytes, the map's key is ${this.spec.keySize}`,
      )
  }

  #checkValue(value: Buffer, count: number, op: string): void {
    if (value.length !== this.spec.valueSize * count)
      throw new RangeError(
        `${op} on map ${this.spec.name}: value is ${value.length} bytes, the map's value is ${this.spec.valueSize}`,
      )
  }

  #checkBatch(buf: Buffer, count: number, size: number, what: string, op: string): void {
    if (!Number.isInteger(count) || count < 0)
      throw new RangeError(`${op} on map ${this.spec.name}: count must be a non-negative integer, got ${count}`)
    if (buf.length < count * size)
      throw new RangeError(
        `${op} on map ${this.spec.name}: ${what} holds ${buf.length} bytes, ${count} records need ${count * size}`,
      )
  }

  #error(op: string, rc: number, key?: Buffer, mode?: PutMode, index?: number): BpfError {
    const errno = -rc
    const at = index === undefined ? undefined : `record ${index}`
    const d = { op, errno, mapName: this.spec.name, key }
    const isInsert = op.includes('update') && mode !== 'exist'
    if (isInsert && (errno === Errno.E2BIG || errno === Errno.ENOSPC) && !indexedTypes.has(this.spec.type)) {
      return new MapFullError({
        ...d,
        maxEntries: this.spec.maxEntries,
        hint: at ? `${at} was the first not written.` : undefined,
      })
    }
    if (errno === Errno.ENOENT && (mode === 'exist' || op.includes('delete'))) {
      return new KeyNotFoundError({
        ...d,
        message: `${op}: key ${key?.toString('hex') ?? '?'} not found in map ${this.spec.name}${at ? ` (${at}; earlier records were applied)` : ''}`,
      })
    }
    return new BpfError({ ...d, hint: at ? `${at} failed; earlier records were applied.` : undefined })
  }
}

function isBatchUnsupported(rc: number): boolean {
  return rc === -Errno.ENOTSUPP || rc === -Errno.EOPNOTSUPP
}

function errnoText(rc: number): string {
  return errnoName(rc)
}

function specMismatch(expect: Partial<MapSpec>, info: MapInfo): string | undefined {
  const diffs: string[] = []
  for (const field of ['type', 'keySize', 'valueSize', 'maxEntries', 'flags'] as const) {
    const want = expect[field]
    if (want !== undefined && want !== info[field])
      diffs.push(`${field} ${info[field]} in the kernel, ${want} expected`)
  }
  return diffs.length ? diffs.join(', ') : undefined
}

export { specMismatch, errnoText }
