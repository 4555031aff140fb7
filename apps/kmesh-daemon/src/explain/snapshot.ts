/**
 * The live load-balancing state as an lb-model snapshot: the four maps read from their pins
 * (<pinRoot>/maps/<name>, as the dataplane pins them) and decoded with the codecs. Read-only.
 */
import { join } from 'node:path'
import { BpfMap } from '@kmesh-ts/bpf-maps'
import { mapSpecs, type Codec, type RecordMapSpec } from '@kmesh-ts/bpf-maps/codecs'
import type { MapSnapshot } from '@kmesh-ts/lb-model'

function readAll<K, V>(pinRoot: string, spec: RecordMapSpec<K, V>): [K, V][] {
  const map = BpfMap.openPinned(join(pinRoot, 'maps', spec.name), {
    name: spec.name,
    type: spec.type,
    keySize: spec.key.size,
    valueSize: spec.value.size,
  })
  try {
    const { keys, values, count } = map.lookupBatch()
    const k: Codec<K> = spec.key
    const v: Codec<V> = spec.value
    return Array.from({ length: count }, (_, i) => [k.decode(keys, i * k.size), v.decode(values, i * v.size)])
  } finally {
    map.close()
  }
}

export function readPinnedSnapshot(pinRoot: string): MapSnapshot {
  return {
    frontends: readAll(pinRoot, mapSpecs.frontend).map(([k, v]) => ({ ...k, ...v })),
    services: readAll(pinRoot, mapSpecs.service).map(([k, v]) => ({ ...k, ...v })),
    endpoints: readAll(pinRoot, mapSpecs.endpoint).map(([k, v]) => ({ ...k, ...v })),
    backends: readAll(pinRoot, mapSpecs.backend).map(([k, v]) => ({ ...k, ...v })),
  }
}
