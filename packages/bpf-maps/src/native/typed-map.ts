/**
 * A map seen through record codecs: plain objects in, plain objects out. Sizes were checked once, when the
 * handle was made (BpfMap.typed, conventions.md §9); batch helpers pack every record into one buffer and make
 * one syscall.
 */
import type { Codec } from '../codecs/codec.js'
import type { BpfMap, PutMode } from './map.js'

export class TypedMap<K, V> {
  readonly map: BpfMap
  readonly key: Codec<K>
  readonly value: Codec<V>

  constructor(map: BpfMap, key: Codec<K>, value: Codec<V>) {
    this.map = map
    this.key = key
    this.value = value
  }

  /** Encodes into a fresh zeroed buffer, so padding bytes of hash keys are always zero. */
  encodeKey(k: K): Buffer {
    const buf = Buffer.alloc(this.key.size)
    this.key.encode(k, buf, 0)
    return buf
  }

  encodeValue(v: V): Buffer {
    const buf = Buffer.alloc(this.value.size)
    this.value.encode(v, buf, 0)
    return buf
  }

  get(k: K): V | undefined {
    const raw = this.map.get(this.encodeKey(k))
    return raw ? this.value.decode(raw, 0) : undefined
  }

  put(k: K, v: V, mode: PutMode = 'any'): void {
    this.map.put(this.encodeKey(k), this.encodeValue(v), mode)
  }

  delete(k: K): boolean {
    return this.map.delete(this.encodeKey(k))
  }

  *keys(): IterableIterator<K> {
    for (const raw of this.map.keys()) yield this.key.decode(raw, 0)
  }

  *entries(): IterableIterator<[K, V]> {
    for (const [k, v] of this.map.entries()) yield [this.key.decode(k, 0), this.value.decode(v, 0)]
  }

  count(): number {
    return this.map.count()
  }

  /** Writes every entry with one bpf_map_update_batch call (see BpfMap.putBatch for partial failure). */
  putMany(entries: Iterable<readonly [K, V]>, mode: PutMode = 'any'): void {
    const list = Array.isArray(entries) ? (entries as readonly (readonly [K, V])[]) : [...entries]
    const keys = Buffer.alloc(list.length * this.key.size)
    const values = Buffer.alloc(list.length * this.value.size)
    list.forEach(([k, v], i) => {
      this.key.encode(k, keys, i * this.key.size)
      this.value.encode(v, values, i * this.value.size)
    })
    this.map.putBatch(keys, values, list.length, mode)
  }

  /** Deletes every key with one bpf_map_delete_batch call; each key must exist. */
  deleteMany(keys: Iterable<K>): void {
    const list = Array.isArray(keys) ? (keys as readonly K[]) : [...keys]
    const buf = Buffer.alloc(list.length * this.key.size)
    list.forEach((k, i) => this.key.encode(k, buf, i * this.key.size))
    this.map.deleteBatch(buf, list.length)
  }
}
