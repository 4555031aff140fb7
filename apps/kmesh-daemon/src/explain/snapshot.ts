/**
 * The live load-balancing state as an lb-model snapshot: the four maps read from their pins
 * (<pinRoot>/maps/<name>, as the dataplane pins them) and decoded with the codecs. Read-only.
 */
import { join } from 'node:path'
import { BpfMap } from '@kmesh-ts/bpf-maps'
import {
  MAX_SERVICE_COUNT,
  mapSpecs,
  readU32,
  recordLayouts,
  type Codec,
  type RecordMapSpec,
} from '@kmesh-ts/bpf-maps/codecs'
import { isV4Mapped, parseIp, formatIp, unmapV4 } from '@kmesh-ts/ip'
import { PRIO_COUNT } from '@kmesh-ts/kernel-abi'
import type { MapSnapshot } from '@kmesh-ts/lb-model'

function openPinned<K, V>(pinRoot: string, spec: RecordMapSpec<K, V>): BpfMap {
  return BpfMap.openPinned(join(pinRoot, 'maps', spec.name), {
    name: spec.name,
    type: spec.type,
    keySize: spec.key.size,
    valueSize: spec.value.size,
  })
}

function readAll<K, V>(pinRoot: string, spec: RecordMapSpec<K, V>): [K, V][] {
  const map = openPinned(pinRoot, spec)
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

/**
 * Only what a connect to `host` can reach, by key lookups: its frontend, the service or backend it names, that
 * service's endpoints by priority and their backends, and the same again for every waypoint address met on the
 * way, plus one read of km_backend for the service's members without endpoints. No other map is decoded:
 * `explain` stays fast at 100k workloads, and gives what the whole snapshot gives
 * (test/explain-reachable.kernel.test.ts compares them).
 */
export function readReachableSnapshot(pinRoot: string, host: string): MapSnapshot {
  const opened = {
    frontend: openPinned(pinRoot, mapSpecs.frontend),
    service: openPinned(pinRoot, mapSpecs.service),
    endpoint: openPinned(pinRoot, mapSpecs.endpoint),
    backend: openPinned(pinRoot, mapSpecs.backend),
  }
  try {
    const frontend = opened.frontend.typed(mapSpecs.frontend.key, mapSpecs.frontend.value)
    const service = opened.service.typed(mapSpecs.service.key, mapSpecs.service.value)
    const endpoint = opened.endpoint.typed(mapSpecs.endpoint.key, mapSpecs.endpoint.value)
    const backend = opened.backend.typed(mapSpecs.backend.key, mapSpecs.backend.value)
    const out = {
      frontends: [] as MapSnapshot['frontends'][number][],
      services: new Map<number, MapSnapshot['services'][number]>(),
      endpoints: [] as MapSnapshot['endpoints'][number][],
      backends: new Map<number, MapSnapshot['backends'][number]>(),
    }
    const queue = [host]
    const seen = new Set<string>()
    const loadBackend = (uid: number): void => {
      if (out.backends.has(uid)) return
      const b = backend.get({ backendUid: uid })
      if (!b) return
      out.backends.set(uid, { backendUid: uid, ...b })
      if (b.waypoint) queue.push(b.waypoint.address)
    }
    while (queue.length > 0) {
      const address = queue.shift() as string
      const bytes = parseIp(address)
      // The kernel folds a v4-mapped destination to its IPv4 key.
      for (const candidate of isV4Mapped(bytes) ? [address, formatIp(unmapV4(bytes))] : [address]) {
        if (seen.has(candidate)) continue
        seen.add(candidate)
        const fe = frontend.get({ address: candidate })
        if (!fe) continue
        out.frontends.push({ address: candidate, ...fe })
        const id = fe.upstreamId
        loadBackend(id)
        if (out.services.has(id)) continue
        const sv = service.get({ serviceId: id })
        if (!sv) continue
        out.services.set(id, { serviceId: id, ...sv })
        if (sv.waypoint) queue.push(sv.waypoint.address)
        for (let prio = 0; prio < PRIO_COUNT; prio++) {
          for (let i = 1; i <= (sv.prioEndpointCount[prio] ?? 0); i++) {
            const ep = endpoint.get({ serviceId: id, prio, backendIndex: i })
            if (!ep) continue
            out.endpoints.push({ serviceId: id, prio, backendIndex: i, ...ep })
            loadBackend(ep.backendUid)
          }
        }
      }
    }
    // Members of a reached service that have no endpoint entry (unhealthy, capacity 0, a Strict locality
    // mismatch) are found only by their backend record's service list: one batch read of km_backend (only the
    // service ids are looked at, a chunk at a time), so explain can say why each is not a candidate.
    if (out.services.size > 0) addMembersWithoutEndpoints(opened.backend, out.services, out.backends)
    return {
      frontends: out.frontends,
      services: [...out.services.values()],
      endpoints: out.endpoints,
      backends: [...out.backends.values()],
    }
  } finally {
    for (const m of Object.values(opened)) m.close()
  }
}

/** Adds every backend whose service list names one of `services`; only those records are decoded. */
function addMembersWithoutEndpoints(
  map: BpfMap,
  services: ReadonlyMap<number, unknown>,
  backends: Map<number, MapSnapshot['backends'][number]>,
): void {
  const layout = recordLayouts.backend_value!.fields
  const countAt = layout.service_count!
  const firstAt = layout.service!
  const { key: k, value: v } = mapSpecs.backend
  map.scanBatches((keys, values, count) => {
    for (let i = 0; i < count; i++) {
      const off = i * v.size
      const n = Math.min(readU32(values, off + countAt), MAX_SERVICE_COUNT)
      let member = false
      for (let j = 0; j < n && !member; j++) member = services.has(readU32(values, off + firstAt + 4 * j))
      if (!member) continue
      const key = k.decode(keys, i * k.size)
      if (!backends.has(key.backendUid)) backends.set(key.backendUid, { ...key, ...v.decode(values, off) })
    }
  })
}
