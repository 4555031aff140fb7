/**
 * The maps kmesh-ts programs share, as data: ELF name (= pin name), type, record codecs and default capacity.
 * Names and default capacities are the C declarations' (include/maps.h, through @kmesh-ts/kernel-abi's BPF_MAPS),
 * which follow upstream Kmesh (docs/reference/kmesh-dataplane.md §2.1); userspace sets the capacity at load time.
 */
import {
  backendKey,
  backendValue,
  endpointKey,
  endpointValue,
  frontendKey,
  frontendValue,
  managerKey,
  serviceKey,
  serviceValue,
  u32Value,
} from './records.js'
import type { Codec } from './codec.js'
import { BPF_MAPS, mapNames, type MapName } from '@kmesh-ts/kernel-abi'

/** BPF_MAP_TYPE_* numbers (linux/bpf.h). */
export const MapType = {
  Hash: 1,
  Array: 2,
  ProgArray: 3,
  PercpuArray: 6,
  LpmTrie: 11,
  SkStorage: 24,
  RingBuf: 27,
} as const
export const BPF_F_NO_PREALLOC = 1

export interface RecordMapSpec<K, V> {
  name: string
  type: number
  key: Codec<K>
  value: Codec<V>
  defaultMaxEntries: number
  flags: number
}

/** A NO_PREALLOC hash map; its default capacity is the max_entries its C declaration writes. */
function hashSpec<K, V>(name: MapName, key: Codec<K>, value: Codec<V>): RecordMapSpec<K, V> {
  return {
    name,
    type: MapType.Hash,
    key,
    value,
    defaultMaxEntries: BPF_MAPS[name].maxEntries,
    flags: BPF_F_NO_PREALLOC,
  }
}

export const mapSpecs = {
  frontend: hashSpec(mapNames.frontend, frontendKey, frontendValue),
  service: hashSpec(mapNames.service, serviceKey, serviceValue),
  endpoint: hashSpec(mapNames.endpoint, endpointKey, endpointValue),
  backend: hashSpec(mapNames.backend, backendKey, backendValue),
  manage: hashSpec(mapNames.manage, managerKey, u32Value),
} as const

export type CoreMapName = keyof typeof mapSpecs
