/**
 * `/debug/bpf`: every map pinned under a pin root, decoded with the byte-exact codecs of @kmesh-ts/bpf-maps. The
 * daemon's own pin root by default (`<pinRoot>/maps/<name>`); given another (`?pinRoot=`), the maps there — a
 * directory of Kmesh's pinned maps included, since the load-balancing records are Kmesh's layout. A map whose name
 * has no codec, or whose key/value sizes are not the codec's, is listed with its kernel info and no entries.
 * Bounded: at most `limit` entries per map (default 1000); `total` says how many there are.
 */
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { BpfMap } from '@kmesh-ts/bpf-maps'
import {
  authzMapSpecs,
  mapSpecs,
  MapType,
  nodeInfoMapSpec,
  type Codec,
  type RecordMapSpec,
} from '@kmesh-ts/bpf-maps/codecs'

const TYPE_NAMES: Record<number, string> = {
  1: 'hash',
  2: 'array',
  3: 'prog_array',
  4: 'perf_event_array',
  5: 'percpu_hash',
  6: 'percpu_array',
  9: 'lru_hash',
  11: 'lpm_trie',
  12: 'array_of_maps',
  13: 'hash_of_maps',
  24: 'sk_storage',
  27: 'ringbuf',
}

/** Types whose entries cannot be read as records (programs, sockets, ring buffers, inner maps). */
const UNREADABLE = new Set([3, 4, 12, 13, 24, MapType.RingBuf])
const PER_CPU = new Set([5, 6, 10])

const KNOWN: Record<string, RecordMapSpec<unknown, unknown>> = Object.fromEntries(
  [...Object.values(mapSpecs), ...Object.values(authzMapSpecs), nodeInfoMapSpec].map((s) => [
    s.name,
    s as RecordMapSpec<unknown, unknown>,
  ]),
)

export interface MapDump {
  name: string
  path: string
  type: string
  keySize: number
  valueSize: number
  maxEntries: number
  /** Entries in the map (absent where it cannot be read as records). */
  total?: number
  entries?: Array<{ key: unknown; value: unknown }>
  truncated?: boolean
  note?: string
  error?: string
}

/**
 * Where the maps of a pin root are: `<root>/maps` (kmesh-ts), `<root>/map` (Kmesh: /sys/fs/bpf/bpf_kmesh_workload/map,
 * docs/reference/kmesh-dataplane.md §2.5), else the root itself (a directory of pins).
 */
export function mapDirOf(pinRoot: string): string {
  for (const sub of [join(pinRoot, 'maps'), join(pinRoot, 'map')])
    if (existsSync(sub) && statSync(sub).isDirectory()) return sub
  return pinRoot
}

export function dumpPinnedMaps(pinRoot: string, limit = 1000): { pinRoot: string; mapDir: string; maps: MapDump[] } {
  const mapDir = mapDirOf(pinRoot)
  const maps: MapDump[] = []
  for (const name of readdirSync(mapDir).sort()) {
    const path = join(mapDir, name)
    if (!statSync(path).isFile()) continue
    let map: BpfMap
    try {
      map = BpfMap.openPinned(path)
    } catch {
      continue // a pinned program or link, not a map
    }
    try {
      maps.push(dumpMap(map, name, path, limit))
    } catch (err) {
      maps.push({ name, path, type: '?', keySize: 0, valueSize: 0, maxEntries: 0, error: (err as Error).message })
    } finally {
      map.close()
    }
  }
  return { pinRoot, mapDir, maps }
}

function dumpMap(map: BpfMap, name: string, path: string, limit: number): MapDump {
  const info = map.info()
  const out: MapDump = {
    name,
    path,
    type: TYPE_NAMES[info.type] ?? String(info.type),
    keySize: info.keySize,
    valueSize: info.valueSize,
    maxEntries: info.maxEntries,
  }
  if (UNREADABLE.has(info.type)) return { ...out, note: 'not a record map (programs, sockets or a ring buffer)' }
  const spec = KNOWN[name]
  const raw = (b: Buffer): string => b.toString('hex')
  let key: (b: Buffer) => unknown = raw
  let value: (b: Buffer) => unknown = raw
  if (!spec) out.note = 'no codec for this map name: keys and values in hex'
  else if (spec.key.size !== info.keySize || spec.value.size !== info.valueSize)
    out.note = `sizes differ from the codec's (key ${spec.key.size} B, value ${spec.value.size} B): hex`
  else {
    key = decoder(spec.key)
    value = decoder(spec.value)
  }
  const entries: Array<{ key: unknown; value: unknown }> = []
  let total = 0
  for (const k of map.keys()) {
    total++
    if (entries.length >= limit) continue
    if (PER_CPU.has(info.type)) {
      const perCpu = map.getPerCpu(k)
      if (perCpu) entries.push({ key: key(k), value: sumPerCpu(perCpu.map(value)) })
    } else {
      const v = map.get(k)
      if (v) entries.push({ key: key(k), value: value(v) })
    }
  }
  out.total = total
  out.entries = entries
  if (total > entries.length) out.truncated = true
  return out
}

function decoder<T>(codec: Codec<T>): (b: Buffer) => T {
  return (b) => codec.decode(b, 0)
}

/** Per-CPU counters read as one value: numeric fields summed over the CPUs (the other fields of the first). */
function sumPerCpu(values: unknown[]): unknown {
  const [first] = values
  if (typeof first === 'number') return (values as number[]).reduce((a, b) => a + b, 0)
  if (!first || typeof first !== 'object') return first
  const out: Record<string, unknown> = { ...(first as Record<string, unknown>) }
  for (const [k, v] of Object.entries(out)) {
    if (typeof v === 'number') out[k] = values.reduce<number>((a, x) => a + ((x as Record<string, number>)[k] ?? 0), 0)
    else if (typeof v === 'bigint')
      out[k] = values.reduce<bigint>((a, x) => a + ((x as Record<string, bigint>)[k] ?? 0n), 0n)
  }
  return out
}
