/**
 * The maps kmesh-ts programs share, as data: ELF name (= pin name), type, record codecs and default capacity.
 * Names and defaults follow upstream Kmesh (docs/reference/kmesh-dataplane.md §2.1); capacity is set by userspace
 * at load time, never fixed in C.
 */
import { backendKey, backendValue, endpointKey, endpointValue, frontendKey, frontendValue, managerKey, serviceKey, serviceValue, u32Value } from './records.js'
import type { Codec } from './codec.js'

/** BPF_MAP_TYPE_* numbers (linux/bpf.h). */
export const MapType = { Hash: 1, Array: 2, ProgArray: 3, LpmTrie: 11, SkStorage: 24, RingBuf: 27 } as const
export const BPF_F_NO_PREALLOC = 1

export interface RecordMapSpec<K, V> {
  name: string
  type: number
  key: Codec<K>
  value: Codec<V>
  defaultMaxEntries: number
  flags: number
}

function hashSpec<K, V>(name: string, key: Codec<K>, value: Codec<V>, defaultMaxEntries: number): RecordMapSpec<K, V> {
  return { name, type: MapType.Hash, key, value, defaultMaxEntries, flags: BPF_F_NO_PREALLOC }
}

export const mapSpecs = {
  frontend: hashSpec('km_frontend', frontendKey, frontendValue, 105000),
  service: hashSpec('km_service', serviceKey, serviceValue, 5000),
  endpoint: hashSpec('km_endpoint', endpointKey, endpointValue, 105000),
  backend: hashSpec('km_backend', backendKey, backendValue, 100000),
  manage: hashSpec('km_manage', managerKey, u32Value, 8192),
} as const

export type CoreMapName = keyof typeof mapSpecs
