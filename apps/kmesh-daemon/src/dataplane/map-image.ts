/**
 * A byte-exact image of the four load-balancing maps: what the kernel holds (the mirror, updated only after the
 * kernel accepted a write) or what it should hold. Records are compared as bytes, so a plan writes exactly the
 * entries that differ.
 *
 * Each map's records live in one RecordTable: fixed-size key and value bytes side by side in one growing buffer,
 * found by their key bytes. A full sync holds 320k records at 100k workloads, several images at once; as a Map of
 * `{key, value}` Buffers keyed by hex text each record was five objects (~200 B of heap and all of it for the
 * garbage collector to copy), here it is its bytes and one index entry.
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
 * The records of one map. A record is found by its key's bytes read as latin1 text (its `id`: one character per
 * byte, the shortest string that is exactly the bytes) and stored in a slot of one buffer; a removed record's slot
 * is reused. Views returned by keyAt/valueAt/valueOf are into that buffer: read them at once, never keep them
 * (a later put may move or reuse the bytes).
 */
export class RecordTable {
  readonly recordSize: number
  private readonly index = new Map<string, number>()
  private data: Buffer
  private free: number[] = []
  private highWater = 0

  constructor(
    readonly keySize: number,
    readonly valueSize: number,
  ) {
    this.recordSize = keySize + valueSize
    this.data = Buffer.alloc(0) // most images are a change's few records: grown on the first put
  }

  /** The id of the key at `bytes[offset..offset+keySize)`. */
  idOf(bytes: Uint8Array, offset = 0): string {
    return latin1(bytes, offset, this.keySize)
  }

  get size(): number {
    return this.index.size
  }

  slotOf(id: string): number | undefined {
    return this.index.get(id)
  }

  hasKey(key: Buffer): boolean {
    return this.index.has(this.idOf(key))
  }

  /** A view of the value held for `key`, or undefined. */
  valueOf(key: Buffer): Buffer | undefined {
    const slot = this.index.get(this.idOf(key))
    return slot === undefined ? undefined : this.valueAt(slot)
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
    const a = slot * this.recordSize + this.keySize
    const b = otherSlot * other.recordSize + other.keySize
    return (
      this.valueSize === other.valueSize &&
      this.data.compare(other.data, b, b + other.valueSize, a, a + this.valueSize) === 0
    )
  }

  /** Holds `value` for `key` (both copied). */
  put(key: Buffer, value: Buffer): void {
    if (key.length !== this.keySize || value.length !== this.valueSize)
      throw new Error(
        `a record of ${key.length}+${value.length} bytes does not fit a table of ${this.keySize}+${this.valueSize}-byte records`,
      )
    const at = this.slotFor(this.idOf(key)) * this.recordSize
    copyBytes(key, 0, this.data, at, this.keySize)
    copyBytes(value, 0, this.data, at + this.keySize, this.valueSize)
  }

  /** Encodes a record straight into the table (no Buffer per record). */
  putEncoded<K, V>(keyCodec: Codec<K>, key: K, valueCodec: Codec<V>, value: V): void {
    const scratch = this.scratch()
    keyCodec.encode(key, scratch, 0)
    const at = this.slotFor(this.idOf(scratch)) * this.recordSize
    const data = this.data
    copyBytes(scratch, 0, data, at, this.keySize)
    for (let i = at + this.keySize; i < at + this.recordSize; i++) data[i] = 0
    valueCodec.encode(value, data, at + this.keySize)
  }

  /** Holds what `source` holds in `slot` (a record of another table with the same sizes). */
  putFrom(source: RecordTable, slot: number): void {
    const from = slot * source.recordSize
    const to = this.slotFor(source.idOf(source.data, from)) * this.recordSize
    copyBytes(source.data, from, this.data, to, this.recordSize)
  }

  remove(key: Buffer): void {
    this.removeId(this.idOf(key))
  }

  removeId(id: string): void {
    const slot = this.index.get(id)
    if (slot === undefined) return
    this.index.delete(id)
    this.free.push(slot)
  }

  /** Every record's id and slot. */
  slots(): IterableIterator<[string, number]> {
    return this.index.entries()
  }

  // --- by hex text (tests, dumps and other cold paths) ---------------------------------------------------

  /** The keys as hex, in insertion order. */
  *keys(): IterableIterator<string> {
    for (const id of this.index.keys()) yield Buffer.from(id, 'latin1').toString('hex')
  }

  /** Every record as copies, by its key as hex. */
  *entries(): IterableIterator<[string, MapRecord]> {
    for (const slot of this.index.values()) {
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

  private slotFor(id: string): number {
    const held = this.index.get(id)
    if (held !== undefined) return held
    let slot = this.free.pop()
    if (slot === undefined) {
      slot = this.highWater++
      if ((slot + 1) * this.recordSize > this.data.length) {
        const grown = Buffer.alloc(Math.max(16 * this.recordSize, this.data.length * 2))
        this.data.copy(grown)
        this.data = grown
      }
    }
    this.index.set(id, slot)
    return slot
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

/** Node's latin1 decoder without Buffer#toString's argument checks (any Uint8Array): a key's id in ~50 ns. */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, s: number, e: number): string })
  .latin1Slice

/** `length` bytes as latin1 text: one character per byte, the shortest string that is exactly the bytes. */
function latin1(b: Uint8Array, o: number, length: number): string {
  return latin1Slice.call(b, o, o + length)
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
