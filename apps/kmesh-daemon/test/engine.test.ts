/**
 * The incremental engine equals a recompute from scratch: random meshes, random sequences of deltas, and after
 * every change the maps (in memory) hold what a fresh full computation says. Endpoint indexes depend on history
 * by design (they stay stable), so endpoints compare as (service, priority) -> multiset of backends.
 */
import t from 'tap'
import { MapWriter } from '../src/dataplane/map-writer.js'
import { MeshEngine } from '../src/processor/engine.js'
import { emptyImage, LB_MAPS, type MapImage } from '../src/dataplane/map-image.js'
import { imageOf } from '../src/processor/records.js'
import { IdTable } from '../src/ids/id-table.js'
import { WorkloadProcessor } from '../src/processor/processor.js'
import type { MeshDelta, Service, Workload } from '../src/model/index.js'
import { memoryMaps } from './support/memory-map.js'

function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32
}

const ZONES = [
  ['r1', 'z1'],
  ['r1', 'z2'],
  ['r2', 'z3'],
] as const
const MODES = [undefined, 'Standard', 'Strict', 'Failover', 'Passthrough'] as const

function randomWorkload(r: () => number, i: number, nServices: number): Workload {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!
  const zone = pick(ZONES)
  const services: Record<string, Record<number, number>> = {}
  const n = Math.floor(r() * 3)
  for (let k = 0; k < n; k++) services[`t/s${Math.floor(r() * nServices)}.t`] = { 80: 8080 }
  const ipPool = 40 // small pool: IPs collide with each other and with VIPs sometimes
  return {
    uid: `w${i}`,
    name: `w${i}`,
    namespace: 't',
    workloadIps: r() < 0.1 ? [] : [`127.0.1.${Math.floor(r() * ipPool)}`],
    hostname: '',
    network: '',
    protocol: 'TCP',
    networkMode: r() < 0.05 ? 'HostNetwork' : 'Standard',
    trustDomain: '',
    serviceAccount: '',
    clusterId: '',
    node: r() < 0.2 ? 'me' : 'other',
    workloadName: '',
    workloadType: '',
    canonicalName: '',
    canonicalRevision: '',
    status: r() < 0.15 ? 'Unhealthy' : 'Healthy',
    capacity: pick([0, 1, 1, 1, 2, 3]),
    locality: { region: zone[0], zone: zone[1], subzone: '' },
    nativeTunnel: false,
    authorizationPolicies: [],
    services,
  }
}

function randomService(r: () => number, i: number): Service {
  const mode = MODES[Math.floor(r() * MODES.length)]
  return {
    name: `s${i}`,
    namespace: 't',
    hostname: `s${i}.t`,
    vips: [{ network: '', ip: r() < 0.1 ? `127.0.1.${Math.floor(r() * 40)}` : `127.10.0.${i}` }],
    cidrVips: [],
    ports: { 80: r() < 0.5 ? 8080 : 0 },
    endpoints: {},
    subjectAltNames: [],
    weightedWaypoints: [],
    canonical: false,
    visibility: 'Public',
    ...(mode
      ? {
          loadBalancer: {
            routingPreferences: ['Region', 'Zone'],
            mode,
            healthPolicy: r() < 0.2 ? 'AllowAll' : 'OnlyHealthy',
          },
        }
      : {}),
  } as Service
}

/** Map contents with endpoints as (service, prio) -> sorted backend values. */
function canonical(image: MapImage): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const m of LB_MAPS)
    out[m] = [...image[m].entries()]
      .map(([k, r]) => `${m === 'endpoint' ? k.slice(0, 16) : k}=${r.value.toString('hex')}`)
      .sort()
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
    const processor = new WorkloadProcessor({ writer, ids, nodeName: 'me' })
    const workloads = new Map<string, Workload>()
    const services = new Map<string, Service>()
    let nextW = 0
    for (let step = 0; step < STEPS; step++) {
      const delta: MeshDelta = { upsertWorkloads: [], removeWorkloads: [], upsertServices: [], removeServices: [] }
      const ops = 1 + Math.floor(r() * 4)
      for (let o = 0; o < ops; o++) {
        const x = r()
        if (x < 0.45) {
          const w = randomWorkload(r, r() < 0.5 && nextW > 0 ? Math.floor(r() * nextW) : nextW++, nServices)
          workloads.set(w.uid, w)
          ;(delta.upsertWorkloads as Workload[]).push(w)
        } else if (x < 0.6 && workloads.size) {
          const uid = [...workloads.keys()][Math.floor(r() * workloads.size)]!
          workloads.delete(uid)
          ;(delta.removeWorkloads as string[]).push(uid)
        } else if (x < 0.85) {
          const s = randomService(r, Math.floor(r() * nServices))
          services.set(`t/${s.hostname}`, s)
          ;(delta.upsertServices as Service[]).push(s)
        } else if (services.size) {
          const k = [...services.keys()][Math.floor(r() * services.size)]!
          services.delete(k)
          ;(delta.removeServices as string[]).push(k)
        }
      }
      // Collapse duplicates in one delta the way a push would carry them (last one wins).
      delta.upsertWorkloads = [
        ...new Map(delta.upsertWorkloads!.map((w) => [w.uid, workloads.get(w.uid) ?? w])).values(),
      ].filter((w) => workloads.has(w.uid))
      delta.removeWorkloads = [...new Set(delta.removeWorkloads)].filter((uid) => !workloads.has(uid))
      delta.upsertServices = [
        ...new Map(
          delta.upsertServices!.map((s) => [`t/${s.hostname}`, services.get(`t/${s.hostname}`) ?? s]),
        ).values(),
      ].filter((s) => services.has(`t/${s.hostname}`))
      delta.removeServices = [...new Set(delta.removeServices)].filter((k) => !services.has(k))
      const applied = processor.applyDelta(delta)
      deltas++
      if (applied.full) fullChanges++
      const reference = imageOf(
        new MeshEngine({ ids, nodeName: 'me' })
          .load({ workloads: [...workloads.values()], services: [...services.values()], policies: [] })
          .fullIntent(),
        writer.mirror,
      )
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
  const processor = new WorkloadProcessor({ writer, ids })
  const services: Service[] = Array.from(
    { length: 1000 },
    (_, i) =>
      ({
        ...randomService(rng(i), i),
        vips: [{ network: '', ip: `127.${20 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}` }],
        loadBalancer: undefined,
      }) as Service,
  )
  const workloads: Workload[] = Array.from(
    { length: 20000 },
    (_, i) =>
      ({
        ...randomWorkload(rng(i), i, 1),
        workloadIps: [`127.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`],
        status: 'Healthy',
        capacity: 1,
        node: 'x',
        networkMode: 'Standard',
        services: { [`t/s${i % 1000}.t`]: { 80: 8080 } },
      }) as Workload,
  )
  processor.applyDelta({ upsertServices: services, upsertWorkloads: workloads })
  maps.log.length = 0
  const moved = { ...workloads[123]!, workloadIps: ['127.99.0.1'] }
  const start = process.hrtime.bigint()
  const applied = processor.applyDelta({ upsertWorkloads: [moved] })
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  t.notOk(applied.full)
  t.comment(
    `one workload's address changed at 20k workloads / 1k services: ${maps.log.length} record writes in ${ms.toFixed(2)} ms`,
  )
  t.same(
    maps.log.sort(),
    ['delete km_frontend', 'put km_backend', 'put km_frontend'],
    'backend rewritten, old frontend deleted, new frontend written',
  )
})

/** What the maps hold, against what a fresh full computation of `mesh` says they should hold. */
function matchesFullRecompute(
  maps: ReturnType<typeof memoryMaps>,
  writer: MapWriter,
  ids: IdTable,
  mesh: { workloads: Workload[]; services: Service[] },
): boolean {
  const reference = imageOf(
    new MeshEngine({ ids, nodeName: 'me' }).load({ ...mesh, policies: [] }).fullIntent(),
    writer.mirror,
  )
  return JSON.stringify(canonical(MapWriter.readMirror(maps))) === JSON.stringify(canonical(reference))
}

t.test('a change whose derivation throws leaves the engine as it was', async (t) => {
  const ids = new IdTable()
  const maps = memoryMaps(1000)
  const writer = new MapWriter(maps, emptyImage())
  const processor = new WorkloadProcessor({ writer, ids, nodeName: 'me' })
  const s0 = randomService(rng(1), 0)
  const w0 = {
    ...randomWorkload(rng(2), 0, 1),
    status: 'Healthy',
    capacity: 1,
    workloadIps: ['127.0.2.1'],
    services: { 't/s0.t': { 80: 8080 } },
  } as Workload
  processor.applyDelta({ upsertServices: [s0], upsertWorkloads: [w0] })
  const w1 = { ...w0, uid: 'w1', name: 'w1', workloadIps: ['127.0.2.2'] }
  const tooManyPorts = {
    ...randomService(rng(3), 1),
    ports: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [80 + i, 8080])),
  } as Service
  t.throws(() => processor.applyDelta({ upsertWorkloads: [w1], upsertServices: [tooManyPorts] }), /at most 10 ports/)
  // The next change must behave as if the failed one never happened: w1 and the bad service are not held.
  const w2 = { ...w0, uid: 'w2', name: 'w2', workloadIps: ['127.0.2.3'] }
  processor.applyDelta({ upsertWorkloads: [w2] })
  t.ok(
    matchesFullRecompute(maps, writer, ids, { workloads: [w0, w2], services: [s0] }),
    'maps equal a recompute of the mesh without the failed change',
  )
})

t.test('a rollback that reorders workloads does not leave a stale ranking client', async (t) => {
  const ids = new IdTable()
  const maps = memoryMaps(5) // the initial mesh fits; 2 more workloads do not (km_frontend would need 6)
  const writer = new MapWriter(maps, emptyImage())
  const processor = new WorkloadProcessor({ writer, ids, nodeName: 'me' })
  const mk = (uid: string, ip: string, zone: string, services: Workload['services']): Workload =>
    ({
      ...randomWorkload(rng(9), 0, 1),
      uid,
      name: uid,
      node: 'me',
      status: 'Healthy',
      capacity: 1,
      networkMode: 'Standard',
      workloadIps: [ip],
      locality: { region: 'r1', zone, subzone: '' },
      services,
    }) as Workload
  const member = { 't/s0.t': { 80: 8080 } }
  const a = mk('a', '127.0.3.1', 'z1', {}) // the ranking client (first on node "me"), not an endpoint
  const b = mk('b', '127.0.3.2', 'z2', member)
  const e = mk('e', '127.0.3.5', 'z1', member)
  const svc = {
    ...randomService(rng(4), 0),
    vips: [{ network: '', ip: '127.10.3.1' }],
    loadBalancer: { routingPreferences: ['Region', 'Zone'], mode: 'Failover', healthPolicy: 'OnlyHealthy' },
  } as Service
  processor.applyDelta({ upsertServices: [svc], upsertWorkloads: [a, b, e] })
  // Fails on capacity and rolls back: undo puts "a" back at the end, so "b" would become the first on the node.
  t.throws(
    () =>
      processor.applyDelta({
        removeWorkloads: ['a'],
        upsertWorkloads: [mk('c', '127.0.3.3', 'z1', {}), mk('d', '127.0.3.4', 'z1', {})],
      }),
    /would need/,
  )
  processor.applyDelta({ removeWorkloads: ['a'] })
  t.ok(
    matchesFullRecompute(maps, writer, ids, { workloads: [b, e], services: [svc] }),
    'priorities follow the client the mesh really has',
  )
})

t.test(
  'the ranking client kept between changes is the first workload on the node, after commits and rollbacks',
  async (t) => {
    let checked = 0
    let moved = 0
    for (let seed = 1; seed <= 20; seed++) {
      const r = rng(seed)
      const engine = new MeshEngine({ ids: new IdTable(), nodeName: 'me' })
      const mirror = emptyImage()
      const held = new Set<string>()
      let nextW = 0
      let before: string | undefined
      for (let step = 0; step < 60; step++) {
        const upserts = new Map<string, Workload>()
        const removes = new Set<string>()
        for (let o = 1 + Math.floor(r() * 3); o > 0; o--) {
          if (r() < 0.3 && held.size > 0) removes.add([...held][Math.floor(r() * held.size)]!)
          else {
            const w = randomWorkload(r, r() < 0.5 && nextW > 0 ? Math.floor(r() * nextW) : nextW++, 4)
            upserts.set(w.uid, w)
          }
        }
        for (const uid of upserts.keys()) removes.delete(uid)
        const pending = engine.change({ upsertWorkloads: [...upserts.values()], removeWorkloads: [...removes] }, mirror)
        // Rollbacks put removed workloads back at the end of the order: the client may move.
        if (r() < 0.3) pending.rollback()
        else {
          pending.commit()
          for (const uid of upserts.keys()) held.add(uid)
          for (const uid of removes) held.delete(uid)
        }
        const naive = [...engine.held.workloads.values()].find((w) => w.node === 'me')?.uid
        const kept = (engine as unknown as { clientUid(): string | undefined }).clientUid()
        if (kept !== naive) {
          t.equal(kept, naive, `seed ${seed} step ${step}: the client kept is the first workload on the node`)
          return
        }
        if (kept !== before) moved++
        before = kept
        checked++
      }
    }
    t.ok(checked === 1200 && moved > 20, `${checked} changes checked, the client moved ${moved} times`)
  },
)
