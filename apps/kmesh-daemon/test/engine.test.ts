/**
 * The incremental engine equals a recompute from scratch: random meshes, random sequences of deltas, and after
 * every change the maps (in memory) hold what a fresh full computation says. Endpoint indexes depend on history
 * by design (they stay stable), so endpoints compare as (service, priority) -> multiset of backends.
 */
import t from 'tap'
import { MapWriter } from '../src/dataplane/map-writer.js'
import { MeshEngine, type MeshDelta } from '../src/processor/engine.js'
import { emptyImage, imageOf, LB_MAPS, type MapImage } from '../src/processor/map-image.js'
import { IdTable } from '../src/ids/id-table.js'
import { WorkloadProcessor } from '../src/processor/processor.js'
import type { Service, Workload } from '../src/mesh-file/index.js'
import { memoryMaps } from './support/memory-map.js'

function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32)
}

const ZONES = [['r1', 'z1'], ['r1', 'z2'], ['r2', 'z3']] as const
const MODES = [undefined, 'Standard', 'Strict', 'Failover', 'Passthrough'] as const

function randomWorkload(r: () => number, i: number, nServices: number): Workload {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!
  const zone = pick(ZONES)
  const services: Record<string, Record<number, number>> = {}
  const n = Math.floor(r() * 3)
  for (let k = 0; k < n; k++) services[`t/s${Math.floor(r() * nServices)}.t`] = { 80: 8080 }
  const ipPool = 40 // small pool: IPs collide with each other and with VIPs sometimes
  return {
    uid: `w${i}`, name: `w${i}`, namespace: 't', workloadIps: r() < 0.1 ? [] : [`127.0.1.${Math.floor(r() * ipPool)}`], hostname: '', network: '',
    protocol: 'TCP', networkMode: r() < 0.05 ? 'HostNetwork' : 'Standard', trustDomain: '', serviceAccount: '', clusterId: '', node: r() < 0.2 ? 'me' : 'other',
    workloadName: '', workloadType: '', canonicalName: '', canonicalRevision: '', status: r() < 0.15 ? 'Unhealthy' : 'Healthy',
    capacity: pick([0, 1, 1, 1, 2, 3]), locality: { region: zone[0], zone: zone[1], subzone: '' }, nativeTunnel: false, authorizationPolicies: [], services,
  }
}

function randomService(r: () => number, i: number): Service {
  const mode = MODES[Math.floor(r() * MODES.length)]
  return {
    name: `s${i}`, namespace: 't', hostname: `s${i}.t`, vips: [{ network: '', ip: r() < 0.1 ? `127.0.1.${Math.floor(r() * 40)}` : `127.10.0.${i}` }], cidrVips: [],
    ports: { 80: r() < 0.5 ? 8080 : 0 }, endpoints: {}, subjectAltNames: [], weightedWaypoints: [], canonical: false, visibility: 'Public',
    ...(mode ? { loadBalancer: { routingPreferences: ['Region', 'Zone'], mode, healthPolicy: r() < 0.2 ? 'AllowAll' : 'OnlyHealthy' } } : {}),
  } as Service
}

/** Map contents with endpoints as (service, prio) -> sorted backend values. */
function canonical(image: MapImage): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const m of LB_MAPS) out[m] = [...image[m].entries()].map(([k, r]) => `${m === 'endpoint' ? k.slice(0, 16) : k}=${r.value.toString('hex')}`).sort()
  return out
}

t.test('incremental changes equal a full recompute, over random delta sequences', async (t) => {
  const SEEDS = 12
  const STEPS = 40
  let deltas = 0
  let fullChanges = 0
  for (let seed = 1; seed <= SEEDS; seed++) {
    const r = rng(seed)
    const nServices = 12
    const ids = new IdTable()
    const maps = memoryMaps(100000)
    const writer = new MapWriter(maps, emptyImage())
    const processor = new WorkloadProcessor(writer, ids, 'me')
    const workloads = new Map<string, Workload>()
    const services = new Map<string, Service>()
    let nextW = 0
    for (let step = 0; step < STEPS; step++) {
      const delta: MeshDelta = { upsertWorkloads: [], removeWorkloads: [], upsertServices: [], removeServices: [] }
      const ops = 1 + Math.floor(r() * 4)
      for (let o = 0; o < ops; o++) {
        const x = r()
        if (x < 0.45) { const w = randomWorkload(r, r() < 0.5 && nextW > 0 ? Math.floor(r() * nextW) : nextW++, nServices); workloads.set(w.uid, w); (delta.upsertWorkloads as Workload[]).push(w) }
        else if (x < 0.6 && workloads.size) { const uid = [...workloads.keys()][Math.floor(r() * workloads.size)]!; workloads.delete(uid); (delta.removeWorkloads as string[]).push(uid) }
        else if (x < 0.85) { const s = randomService(r, Math.floor(r() * nServices)); services.set(`t/${s.hostname}`, s); (delta.upsertServices as Service[]).push(s) }
        else if (services.size) { const k = [...services.keys()][Math.floor(r() * services.size)]!; services.delete(k); (delta.removeServices as string[]).push(k) }
      }
      // Collapse duplicates in one delta the way a push would carry them (last one wins).
      delta.upsertWorkloads = [...new Map(delta.upsertWorkloads!.map((w) => [w.uid, workloads.get(w.uid) ?? w])).values()].filter((w) => workloads.has(w.uid))
      delta.removeWorkloads = [...new Set(delta.removeWorkloads)].filter((uid) => !workloads.has(uid))
      delta.upsertServices = [...new Map(delta.upsertServices!.map((s) => [`t/${s.hostname}`, services.get(`t/${s.hostname}`) ?? s])).values()].filter((s) => services.has(`t/${s.hostname}`))
      delta.removeServices = [...new Set(delta.removeServices)].filter((k) => !services.has(k))
      const applied = processor.applyDelta(delta)
      deltas++
      if (applied.full) fullChanges++
      const reference = imageOf(new MeshEngine(ids, 'me').load({ workloads: [...workloads.values()], services: [...services.values()], policies: [] }).fullIntent(), writer.mirror)
      const got = canonical(MapWriter.readMirror(maps))
      const want = canonical(reference)
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        t.same(got, want, `seed ${seed} step ${step}: incremental == full`)
        return
      }
    }
  }
  t.pass(`${deltas} deltas (${fullChanges} recomputed in full) all equal a recompute from scratch`)
  t.ok(fullChanges < deltas / 2, 'most changes took the incremental path')
})

t.test('one workload update at scale touches a handful of records', async (t) => {
  const ids = new IdTable()
  const maps = memoryMaps(1_000_000)
  const writer = new MapWriter(maps, emptyImage())
  const processor = new WorkloadProcessor(writer, ids)
  const services: Service[] = Array.from({ length: 1000 }, (_, i) => ({ ...randomService(rng(i), i), vips: [{ network: '', ip: `127.${20 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}` }], loadBalancer: undefined } as Service))
  const workloads: Workload[] = Array.from({ length: 20000 }, (_, i) => ({ ...randomWorkload(rng(i), i, 1), workloadIps: [`127.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`], status: 'Healthy', capacity: 1, node: 'x', networkMode: 'Standard', services: { [`t/s${i % 1000}.t`]: { 80: 8080 } } } as Workload))
  processor.applyDelta({ upsertServices: services, upsertWorkloads: workloads })
  maps.log.length = 0
  const moved = { ...workloads[123]!, workloadIps: ['127.99.0.1'] }
  const start = process.hrtime.bigint()
  const applied = processor.applyDelta({ upsertWorkloads: [moved] })
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  t.notOk(applied.full)
  t.comment(`one workload's address changed at 20k workloads / 1k services: ${maps.log.length} record writes in ${ms.toFixed(2)} ms`)
  t.same(maps.log.sort(), ['delete km_frontend', 'put km_backend', 'put km_frontend'], 'backend rewritten, old frontend deleted, new frontend written')
})
