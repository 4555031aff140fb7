/**
 * A byte-exact image of the four load-balancing maps: what the kernel holds (the mirror, updated only after the
 * kernel accepted a write) or what it should hold. Records are compared as bytes, so a plan writes exactly the
 * entries that differ.
 *
 * Each map's records live in one RecordTable: fixed-size key and value bytes side by side in one growing buffer,
 * found through an index over the key bytes. A full sync holds 320k records at 100k workloads, several images at
 * once; as a Map of `{key, value}` Buffers keyed by hex text each record was five objects (~200 B of heap and all
 * of it for the garbage collector to copy), here it is its bytes and four bytes of index.
 */
import { PRIO_COUNT } from '@kmesh-ts/kernel-abi'
import { endpointKey, endpointValue, mapSpecs, serviceKey, serviceValue, type Codec } from '@kmesh-ts/bpf-maps/codecs'

/** The maps in the order a put must go (leaf to root): a record is written before anything refers to it. */
export const LB_MAPS = ['backend', 'endpoint', 'service', 'frontend'] as const
export type LbMapName = (typeof LB_MAPS)[number]

/** One record as separate bytes (copies: changing them changes no table). */
export interface MapRecord {
  key: Buffer
  value: Buffer
}

/** Per map, its records. */
export type MapImage = Record<LbMapName, RecordTable>

/** Record-level changes: the records to put and the records to delete, per map. */
export interface RecordChanges {
  put: MapImage
  delete: MapImage
  /**
   * `put` is the whole image the maps hold once the change is written (a full recompute: every key not in it is
   * deleted), so the writer takes it as its mirror instead of copying each record into the old one.
   */
  complete?: boolean
}

/**
 * The records of one map: key and value bytes side by side in slots of one buffer, found through an open-addressing
 * index over the key bytes (FNV-1a, linear probing), so a record costs its bytes and four bytes of index: no string,
 * no object, no Map entry per record. A removed record's slot is reused. Views returned by keyAt/valueAt/valueOf are
 * into that buffer: read them at once, never keep them (a later put may move or reuse the bytes).
 */
export class RecordTable {
  readonly recordSize: number
  private data = Buffer.alloc(0) // most images are a change's few records: grown on the first put
  /** per slot: 1 while it holds a record */
  private live = new Uint8Array(0)
  /** the index: slot + 1, 0 for never used, -1 for a removed entry */
  private buckets = new Int32Array(0)
  /** buckets not 0 (records and removed entries): the index grows before this passes half */
  private usedBuckets = 0
  private count = 0
  private free: number[] = []
  private highWater = 0

  constructor(
    readonly keySize: number,
    readonly valueSize: number,
  ) {
    this.recordSize = keySize + valueSize
  }

  get size(): number {
    return this.count
  }

  /** The slot holding the key at `bytes[offset..offset+keySize)`, or -1. */
  find(bytes: Uint8Array, offset = 0): number {
    const b = this.bucketOf(bytes, offset)
    return b < 0 ? -1 : this.buckets[b]! - 1
  }

  /** The slot holding the key `source` holds in `slot` (a table of the same key size), or -1. */
  findKeyOf(source: RecordTable, slot: number): number {
    return this.find(source.data, slot * source.recordSize)
  }

  hasKey(key: Uint8Array): boolean {
    return this.find(key) >= 0
  }

  /** A view of the value held for `key`, or undefined. */
  valueOf(key: Uint8Array): Buffer | undefined {
    const slot = this.find(key)
    return slot < 0 ? undefined : this.valueAt(slot)
  }

  keyAt(slot: number): Buffer {
    const at = slot * this.recordSize
    return this.data.subarray(at, at + this.keySize)
  }

  valueAt(slot: number): Buffer {
    const at = slot * this.recordSize + this.keySize
    return this.data.subarray(at, at + this.valueSize)
  }

  /** Copies the key of `slot` to `target` at `offset`. */
  copyKey(slot: number, target: Uint8Array, offset: number): void {
    copyBytes(this.data, slot * this.recordSize, target, offset, this.keySize)
  }

  copyValue(slot: number, target: Uint8Array, offset: number): void {
    copyBytes(this.data, slot * this.recordSize + this.keySize, target, offset, this.valueSize)
  }

  /** Whether the value in `slot` equals `other`'s value in `otherSlot`, byte for byte. */
  valueEquals(slot: number, other: RecordTable, otherSlot: number): boolean {
    if (this.valueSize !== other.valueSize) return false
    const a = slot * this.recordSize + this.keySize
    const b = otherSlot * other.recordSize + other.keySize
    const x = this.data
    const y = other.data
    for (let i = 0; i < this.valueSize; i++) if (x[a + i] !== y[b + i]) return false
    return true
  }

  /** Holds `value` for `key` (both copied). */
  put(key: Uint8Array, value: Uint8Array): void {
    if (key.length !== this.keySize || value.length !== this.valueSize)
      throw new Error(
        `a record of ${key.length}+${value.length} bytes does not fit a table of ${this.keySize}+${this.valueSize}-byte records`,
      )
    const at = this.slotFor(key, 0) * this.recordSize
    copyBytes(value, 0, this.data, at + this.keySize, this.valueSize)
  }

  /** Encodes a record straight into the table (no Buffer per record). */
  putEncoded<K, V>(keyCodec: Codec<K>, key: K, valueCodec: Codec<V>, value: V): void {
    const scratch = this.scratch()
    keyCodec.encode(key, scratch, 0)
    const at = this.slotFor(scratch, 0) * this.recordSize
    const data = this.data
    for (let i = at + this.keySize; i < at + this.recordSize; i++) data[i] = 0
    valueCodec.encode(value, data, at + this.keySize)
  }

  /** Holds what `source` holds in `slot` (a record of another table with the same sizes). */
  putFrom(source: RecordTable, slot: number): void {
    const from = slot * source.recordSize
    const at = this.slotFor(source.data, from) * this.recordSize
    copyBytes(source.data, from + this.keySize, this.data, at + this.keySize, this.valueSize)
  }

  remove(key: Uint8Array): void {
    const b = this.bucketOf(key, 0)
    if (b >= 0) this.drop(b)
  }

  /** Removes the record in `slot` (which must hold one). */
  removeSlot(slot: number): void {
    const b = this.bucketOf(this.data, slot * this.recordSize)
    if (b >= 0) this.drop(b)
  }

  /** The slots that hold a record. */
  *slots(): IterableIterator<number> {
    const live = this.live
    for (let slot = 0; slot < this.highWater; slot++) if (live[slot]) yield slot
  }

  // --- by hex text (tests, dumps and other cold paths) ---------------------------------------------------

  /** The keys as hex. */
  *keys(): IterableIterator<string> {
    for (const slot of this.slots()) yield this.keyAt(slot).toString('hex')
  }

  /** Every record as copies, by its key as hex. */
  *entries(): IterableIterator<[string, MapRecord]> {
    for (const slot of this.slots()) {
      const key = Buffer.from(this.keyAt(slot))
      yield [key.toString('hex'), { key, value: Buffer.from(this.valueAt(slot)) }]
    }
  }

  [Symbol.iterator](): IterableIterator<[string, MapRecord]> {
    return this.entries()
  }

  has(hex: string): boolean {
    return this.hasKey(Buffer.from(hex, 'hex'))
  }

  get(hex: string): MapRecord | undefined {
    const value = this.valueOf(Buffer.from(hex, 'hex'))
    return value && { key: Buffer.from(hex, 'hex'), value: Buffer.from(value) }
  }

  // --- the index -----------------------------------------------------------------------------------------

  private hash(bytes: Uint8Array, offset: number): number {
    let h = 0x811c9dc5
    for (let i = 0; i < this.keySize; i++) h = Math.imul(h ^ bytes[offset + i]!, 0x01000193)
    return h >>> 0
  }

  private keyEquals(slot: number, bytes: Uint8Array, offset: number): boolean {
    const data = this.data
    const at = slot * this.recordSize
    for (let i = 0; i < this.keySize; i++) if (data[at + i] !== bytes[offset + i]) return false
    return true
  }

  /** The bucket of the key at bytes[offset..], or -1. */
  private bucketOf(bytes: Uint8Array, offset: number): number {
    const buckets = this.buckets
    if (buckets.length === 0) return -1
    const mask = buckets.length - 1
    for (let b = this.hash(bytes, offset) & mask; ; b = (b + 1) & mask) {
      const v = buckets[b]!
      if (v === 0) return -1
      if (v > 0 && this.keyEquals(v - 1, bytes, offset)) return b
    }
  }

  /** The slot of the key at bytes[offset..], taking a new one (key copied, value left as it is) if it has none. */
  private slotFor(bytes: Uint8Array, offset: number): number {
    const held = this.find(bytes, offset)
    if (held >= 0) return held
    if ((this.usedBuckets + 1) * 2 > this.buckets.length) this.reindex(Math.max(16, (this.count + 1) * 4))
    let slot = this.free.pop()
    if (slot === undefined) {
      slot = this.highWater++
      if ((slot + 1) * this.recordSize > this.data.length) this.growData()
    }
    // `bytes` are never this table's own buffer (putFrom copies from another table), so growing it cannot move them.
    copyBytes(bytes, offset, this.data, slot * this.recordSize, this.keySize)
    this.live[slot] = 1
    this.count++
    this.insert(slot)
    return slot
  }

  private insert(slot: number): void {
    const buckets = this.buckets
    const mask = buckets.length - 1
    let b = this.hash(this.data, slot * this.recordSize) & mask
    while (buckets[b]! > 0) b = (b + 1) & mask
    if (buckets[b] === 0) this.usedBuckets++
    buckets[b] = slot + 1
  }

  private drop(bucket: number): void {
    const slot = this.buckets[bucket]! - 1
    this.buckets[bucket] = -1
    this.live[slot] = 0
    this.count--
    this.free.push(slot)
  }

  /** A fresh index of `size` buckets (rounded up to a power of two) holding every live slot. */
  private reindex(size: number): void {
    let n = 16
    while (n < size) n *= 2
    this.buckets = new Int32Array(n)
    this.usedBuckets = 0
    for (let slot = 0; slot < this.highWater; slot++) if (this.live[slot]) this.insert(slot)
  }

  private growData(): void {
    // Not zeroed: bytes past the last slot are never read, and a slot's record is written whole when it is taken.
    const grown = Buffer.allocUnsafeSlow(Math.max(16 * this.recordSize, this.data.length * 2))
    this.data.copy(grown)
    this.data = grown
    const live = new Uint8Array(grown.length / this.recordSize)
    live.set(this.live)
    this.live = live
  }

  private scratchBytes: Buffer | undefined
  private scratch(): Buffer {
    const s = (this.scratchBytes ??= Buffer.alloc(this.keySize))
    for (let i = 0; i < s.length; i++) s[i] = 0
    return s
  }
}

/**
 * Records are a few dozen bytes: a plain loop copies them faster than Buffer#copy, whose per-call checks cost more
 * than the copy (a full sync makes ~1M such copies).
 */
function copyBytes(from: Uint8Array, fromAt: number, to: Uint8Array, toAt: number, length: number): void {
  for (let i = 0; i < length; i++) to[toAt + i] = from[fromAt + i]!
}

/**
 * One record encoded into a zeroed buffer. Records are a few bytes each: slices of Node's shared buffer pool
 * (Buffer.allocUnsafe below 4 KiB) instead of one ArrayBuffer per record (Buffer.alloc).
 */
export function encodeRecord<T>(codec: Codec<T>, value: T): Buffer {
  const buf = Buffer.allocUnsafe(codec.size).fill(0)
  codec.encode(value, buf, 0)
  return buf
}

export function emptyImage(): MapImage {
  // Key and value sizes are the maps' codecs' (checked against the programs' BTF).
  const table = (map: LbMapName): RecordTable => new RecordTable(mapSpecs[map].key.size, mapSpecs[map].value.size)
  return {
    backend: table('backend'),
    endpoint: table('endpoint'),
    service: table('service'),
    frontend: table('frontend'),
  }
}

export function putRecord(image: MapImage, map: LbMapName, key: Buffer, value: Buffer): void {
  image[map].put(key, value)
}

/** The endpoint buckets of a service as the image holds them: buckets[prio][index-1] = backend uid. */
export function bucketsOf(image: MapImage, serviceId: number): number[][] {
  const value = image.service.valueOf(encodeRecord(serviceKey, { serviceId }))
  const counts = value ? serviceValue.decode(value).prioEndpointCount : []
  return Array.from({ length: PRIO_COUNT }, (_, prio) => {
    const out: number[] = []
    for (let index = 1; index <= (counts[prio] ?? 0); index++) {
      const ep = image.endpoint.valueOf(encodeRecord(endpointKey, { serviceId, prio, backendIndex: index }))
      if (!ep) break // a hole can only come from a foreign writer; stop so indexes stay dense
      out.push(endpointValue.decode(ep).backendUid)
    }
    return out
  })
}
