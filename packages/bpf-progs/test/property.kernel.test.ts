/**
 * Kernel == model, decision for decision (issue 4). Random services (0–7 priorities in use, 0..8 endpoints per
 * bucket, every lb_policy including PASSTHROUGH and invalid ones, up to 10 port slots with unserved and empty
 * ones, service and backend waypoints of every shape, stale counts, holes, missing backends, stale frontends,
 * IPv4 / IPv6 / v4-mapped / IPv6-aliasing-IPv4 destinations) are written into the maps of lb_test.o through
 * @kmesh-ts/bpf-maps, batch by batch. Each case runs the production lb_resolve() with BPF_PROG_TEST_RUN and
 * the same case runs @kmesh-ts/lb-model's resolve() on the maps as read back from the kernel; every outcome
 * (rewrite address, port and waypoint flag; leave; or the errno) must be identical.
 *
 * Knobs: LB_PROPERTY_SEED (default fixed, printed), LB_PROPERTY_SERVICES (default 12000).
 */
import t from 'tap'
import { privilegedSkip } from '@kmesh-ts/testkit'
import {
  Collection,
  backendKey,
  backendValue,
  decodeNetPort,
  encodeIpAddr,
  encodeNetPort,
  endpointKey,
  endpointValue,
  frontendKey,
  frontendValue,
  serviceKey,
  serviceValue,
  type BpfMap,
  type Codec,
} from '@kmesh-ts/bpf-maps'
import { ERRNO } from '@kmesh-ts/kernel-abi'
import { resolve, type MapSnapshot, type Resolution } from '@kmesh-ts/lb-model'
import { AF_INET, AF_INET6, LB_LEAVE, lbTestCtx, mapNames, objectPath, programs } from '../src/index.js'

const SEED = Number(process.env.LB_PROPERTY_SEED ?? 0x5eed1234) >>> 0
const SERVICES = Number(process.env.LB_PROPERTY_SERVICES ?? 12000)
const PER_BATCH = 1000
const BUDGET_MS = 60_000

/** xorshift32: small, seedable, the same sequence on every machine. */
function rng(seed: number) {
  let s = seed || 1
  const u32 = (): number => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s
  }
  const below = (n: number): number => u32() % n
  const chance = (p: number): boolean => u32() / 0x1_0000_0000 < p
  const pick = <T>(xs: readonly T[]): T => xs[below(xs.length)] as T
  return { u32, below, chance, pick }
}
type Rng = ReturnType<typeof rng>

interface Waypoint {
  address: string
  port: number
}
interface Batch {
  snapshot: MapSnapshot
  cases: Case[]
}
interface Case {
  destination: string
  family: 'ipv4' | 'ipv6'
  port: number
  random: number
  garbage: boolean
}

/** One batch of services over a pool of backends, with frontends, and the cases to run against them. */
function generate(r: Rng, batchNo: number, services: number): Batch {
  const usedIds = new Set<number>()
  const freshId = (): number => {
    for (;;) {
      const id = r.chance(0.01) ? r.pick([0, 1, 0xffffffff, 0xfffffffe]) : r.u32()
      if (!usedIds.has(id)) {
        usedIds.add(id)
        return id
      }
    }
  }
  const usedAddresses = new Set<string>()
  let n = 0
  const uniqueAddress = (kind: 'vip' | 'backend'): string => {
    for (;;) {
      n++
      const b = batchNo & 0xff
      const hi = (n >> 8) & 0xff
      const lo = n & 0xff
      const v = r.below(100)
      const a =
        kind === 'vip'
          ? v < 60
            ? `10.96.${hi}.${lo}`
            : v < 97
              ? `fd96:${b.toString(16)}::${n.toString(16)}`
              : `a60:${n.toString(16)}::`
          : v < 60
            ? `10.1.${hi}.${lo}`
            : v < 97
              ? `fd01:${b.toString(16)}::${n.toString(16)}`
              : `a02:${n.toString(16)}::`
      if (!usedAddresses.has(a)) {
        usedAddresses.add(a)
        return a
      }
    }
  }
  const waypoint = (): Waypoint | undefined => {
    if (r.chance(0.8)) return undefined
    const v = r.below(10)
    if (v === 0) return { address: '0.0.0.0', port: 15008 } // port without address: not a waypoint
    if (v === 1) return { address: '10.9.0.1', port: 0 } // address without port: not a waypoint
    if (v === 2) return { address: '::1:2', port: 15008 } // first word zero: still a waypoint (16 bytes tested)
    if (v < 6)
      return { address: `10.9.${r.below(256)}.${r.below(256)}`, port: r.pick([15008, 15001, 1 + r.below(65535)]) }
    return { address: `fd09::${(1 + r.below(0xffff)).toString(16)}`, port: r.pick([15008, 1 + r.below(65535)]) }
  }

  const backends = Array.from({ length: Math.max(8, services / 4) }, () => ({
    backendUid: freshId(),
    address: uniqueAddress('backend'),
    services: [] as number[],
    waypoint: waypoint(),
  }))
  const frontends: { address: string; upstreamId: number }[] = []
  const svcRecords: MapSnapshot['services'][number][] = []
  const endpoints: MapSnapshot['endpoints'][number][] = []
  const cases: Case[] = []
  const ports = [80, 443, 8080, 9090, 15008]

  for (let s = 0; s < services; s++) {
    const serviceId = freshId()
    const lbPolicy = r.chance(0.88) ? r.pick([0, 0, 0, 1, 1, 2, 2, 2, 3]) : r.pick([4, 5, 255, 0xffffffff, r.u32()])
    const counts = [0, 0, 0, 0, 0, 0, 0]
    const inUse = r.below(8) // 0..7 priorities in use
    for (let k = 0; k < inUse; k++) {
      const prio = r.below(7)
      const count = r.below(9)
      counts[prio] = count
      for (let i = 1; i <= count; i++) {
        const backendUid = r.chance(0.03) ? freshId() /* a backend that is gone */ : r.pick(backends).backendUid
        endpoints.push({ serviceId, prio, backendIndex: i, backendUid })
      }
      // Stale state a foreign or crashed writer could leave: a hole, a count beyond the entries, a huge count.
      const v = r.below(100)
      if (v < 4 && count > 1) endpoints.splice(endpoints.length - count + r.below(count), 1)
      else if (v < 7) counts[prio] = count + 1 + r.below(3)
      else if (v < 8) counts[prio] = r.pick([0xffffffff, 0x80000000, 1000])
    }
    if (r.chance(0.05))
      endpoints.push({
        serviceId,
        prio: r.below(7),
        backendIndex: 1 + r.below(4),
        backendUid: r.pick(backends).backendUid,
      }) // leftovers
    const slots = Array.from({ length: r.below(11) }, () => ({
      servicePort: r.chance(0.1) ? 0 : r.chance(0.8) ? r.pick(ports) : 1 + r.below(65535),
      targetPort: r.chance(0.05) ? 0 : 1 + r.below(65535),
    })).filter((p) => p.servicePort !== 0 || p.targetPort !== 0)
    svcRecords.push({
      serviceId,
      prioEndpointCount: counts,
      lbPolicy,
      ports: slots,
      waypoint: r.chance(0.5) ? waypoint() : undefined,
    })

    const vips = Array.from({ length: 1 + r.below(2) }, () => uniqueAddress('vip'))
    for (const address of vips) frontends.push({ address, upstreamId: serviceId })
    // Cases: each VIP (and its v4-mapped form), served ports, an unserved port, port 0, edge and random numbers.
    const count = counts.find((c) => c > 0) ?? 1
    const randoms = [0, (count - 1) >>> 0, 0xffffffff, r.u32(), r.below(Math.min(count, 0xffffffff) + 1) >>> 0]
    for (const vip of vips) {
      const dests: [string, 'ipv4' | 'ipv6'][] = [[vip, vip.includes(':') ? 'ipv6' : 'ipv4']]
      if (!vip.includes(':')) dests.push([`::ffff:${vip}`, 'ipv6'])
      for (const [destination, family] of dests) {
        const servicePorts = [...slots.map((p) => p.servicePort), 81, 0]
        for (let k = 0; k < 3; k++) {
          cases.push({
            destination,
            family,
            port: r.pick(servicePorts),
            random: r.pick(randoms),
            garbage: family === 'ipv4' && r.chance(0.3),
          })
        }
      }
    }
  }
  for (const b of backends) {
    if (r.chance(0.3)) {
      frontends.push({ address: b.address, upstreamId: b.backendUid }) // direct workload access
      cases.push({
        destination: b.address,
        family: b.address.includes('.') ? 'ipv4' : 'ipv6',
        port: r.pick(ports),
        random: r.u32(),
        garbage: false,
      })
    }
    b.services = svcRecords.slice(0, r.below(4)).map((s) => s.serviceId)
  }
  for (let i = 0; i < services / 50; i++) {
    const address = uniqueAddress('vip')
    frontends.push({ address, upstreamId: freshId() }) // left behind by a service or workload that is gone
    cases.push({
      destination: address,
      family: address.includes('.') ? 'ipv4' : 'ipv6',
      port: 80,
      random: r.u32(),
      garbage: false,
    })
    cases.push({
      destination: `10.200.${i & 0xff}.${r.below(256)}`,
      family: 'ipv4',
      port: 80,
      random: 0,
      garbage: false,
    }) // no frontend
  }
  return { snapshot: { frontends, services: svcRecords, endpoints, backends }, cases }
}

/** The four maps read back from the kernel and decoded: the snapshot the model sees. */
function readBack(maps: Record<'frontend' | 'service' | 'endpoint' | 'backend', BpfMap>): MapSnapshot {
  const all = <K, V>(map: BpfMap, kc: Codec<K>, vc: Codec<V>): [K, V][] => {
    const { keys, values, count } = map.lookupBatch()
    return Array.from({ length: count }, (_, i) => [kc.decode(keys, i * kc.size), vc.decode(values, i * vc.size)])
  }
  return {
    frontends: all(maps.frontend, frontendKey, frontendValue).map(([k, v]) => ({ ...k, ...v })),
    services: all(maps.service, serviceKey, serviceValue).map(([k, v]) => ({ ...k, ...v })),
    endpoints: all(maps.endpoint, endpointKey, endpointValue).map(([k, v]) => ({ ...k, ...v })),
    backends: all(maps.backend, backendKey, backendValue).map(([k, v]) => ({ ...k, ...v })),
  }
}

type Outcome =
  | { kind: 'rewrite'; ip: string; port: number; viaWaypoint: boolean }
  | { kind: 'leave' }
  | { kind: 'refuse'; errno: number }
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
// The model names an errno; the numbers are clang's from <linux/errno.h> (kernel-abi), not the model's.

function modelOutcome(res: Resolution): Outcome {
  if (res.kind === 'leave') return { kind: 'leave' }
  if (res.kind === 'refuse') return { kind: 'refuse', errno: ERRNO[res.errno] }
  const b = new Uint8Array(16)
  encodeIpAddr(res.address, b, 0) // bpf-maps' parser, not the model's: the address text must mean these bytes
  return { kind: 'rewrite', ip: hex(b), port: res.port, viaWaypoint: res.viaWaypoint }
}

t.test(
  'lb_resolve (kernel) equals lb-model resolve() on random services',
  {
    skip: privilegedSkip(
      'BPF_PROG_TEST_RUN of a BPF_PROG_TYPE_SYSCALL program (kernel >= 5.14) and batch map ops (kernel >= 5.6)',
    ),
  },
  async (t) => {
    const started = Date.now()
    const coll = Collection.load({ objectPath: objectPath('lb_test'), pinMaps: false })
    t.teardown(() => coll.close())
    const prog = coll.program(programs.lbTest.name)
    const maps = {
      frontend: coll.map(mapNames.frontend),
      service: coll.map(mapNames.service),
      endpoint: coll.map(mapNames.endpoint),
      backend: coll.map(mapNames.backend),
    }
    const typed = {
      backend: maps.backend.typed(backendKey, backendValue),
      endpoint: maps.endpoint.typed(endpointKey, endpointValue),
      service: maps.service.typed(serviceKey, serviceValue),
      frontend: maps.frontend.typed(frontendKey, frontendValue),
    }
    const r = rng(SEED)
    const ctx = Buffer.alloc(lbTestCtx.size)
    let cases = 0
    let services = 0
    const mismatches: string[] = []
    const tally: Record<string, number> = {}

    for (let batchNo = 0; services < SERVICES; batchNo++) {
      const n = Math.min(PER_BATCH, SERVICES - services)
      const batch = generate(r, batchNo, n)
      services += n
      for (const m of Object.values(maps)) {
        const { keys, count } = m.lookupBatch()
        if (count) m.deleteBatch(keys, count)
      }
      // Ordered like the daemon's writes (backend → endpoint → service → frontend), each map in one batch.
      typed.backend.putMany(
        batch.snapshot.backends.map((b) => [
          { backendUid: b.backendUid },
          { address: b.address, services: [...(b.services ?? [])], waypoint: b.waypoint },
        ]),
      )
      typed.endpoint.putMany(
        batch.snapshot.endpoints.map((e) => [
          { serviceId: e.serviceId, prio: e.prio, backendIndex: e.backendIndex },
          { backendUid: e.backendUid },
        ]),
      )
      typed.service.putMany(
        batch.snapshot.services.map((s) => [
          { serviceId: s.serviceId },
          {
            prioEndpointCount: [...s.prioEndpointCount],
            lbPolicy: s.lbPolicy,
            ports: [...s.ports],
            waypoint: s.waypoint,
          },
        ]),
      )
      typed.frontend.putMany(
        batch.snapshot.frontends.map((f) => [{ address: f.address }, { upstreamId: f.upstreamId }]),
      )
      const snapshot = readBack(maps)

      for (const c of batch.cases) {
        ctx.fill(0xee) // garbage in `out`: the program must write all of it
        encodeIpAddr(c.destination, ctx, lbTestCtx.in.dst)
        if (c.garbage) ctx.fill(0x5a, lbTestCtx.in.dst + 4, lbTestCtx.in.dst + 16) // an AF_INET socket reads bytes 0..3 only
        encodeNetPort(c.port, ctx, lbTestCtx.in.dstPort)
        ctx.writeUInt32LE(c.family === 'ipv4' ? AF_INET : AF_INET6, lbTestCtx.in.family)
        ctx.writeUInt32LE(c.random, lbTestCtx.in.random)
        const run = prog.testRun({ ctxIn: ctx })
        const out = run.ctxOut!
        const ret = out.readInt32LE(lbTestCtx.ret)
        const dnat = out.subarray(lbTestCtx.out.dnatIp, lbTestCtx.out.dnatIp + 16)
        const kernel: Outcome =
          ret === 0
            ? {
                kind: 'rewrite',
                ip: hex(dnat),
                port: decodeNetPort(out, lbTestCtx.out.dnatPort),
                viaWaypoint: out[lbTestCtx.out.viaWaypoint] === 1,
              }
            : ret === LB_LEAVE
              ? { kind: 'leave' }
              : { kind: 'refuse', errno: -ret }
        const untouchedOut = ret !== 0 && out.subarray(lbTestCtx.out.dnatIp, lbTestCtx.ret).some((x) => x !== 0)
        const res = resolve(snapshot, { destination: c.destination, family: c.family, port: c.port, random: c.random })
        const model = modelOutcome(res)
        cases++
        const label =
          res.kind === 'rewrite' ? `rewrite${res.viaWaypoint ? ' via waypoint' : ''}` : `${res.kind} ${res.reason}`
        tally[label] = (tally[label] ?? 0) + 1
        if (run.retval !== 0 || untouchedOut || JSON.stringify(kernel) !== JSON.stringify(model)) {
          if (mismatches.length < 20)
            mismatches.push(
              `${JSON.stringify(c)}: kernel ${JSON.stringify(kernel)}${untouchedOut ? ' (out written on a non-rewrite)' : ''}, model ${JSON.stringify(res)}`,
            )
          else mismatches.push('')
        }
      }
    }
    const ms = Date.now() - started
    t.comment(
      `seed 0x${SEED.toString(16)}: ${services} services, ${cases} cases, ${mismatches.length} disagreements, ${(ms / 1000).toFixed(1)} s`,
    )
    t.comment(
      `outcomes: ${Object.entries(tally)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    )
    t.same(mismatches.filter(Boolean), [], 'kernel and model agree on every case')
    t.ok(services >= 10_000 || process.env.LB_PROPERTY_SERVICES !== undefined, `at least 10 000 services (${services})`)
    // Every decision branch is exercised, so agreement is not vacuous.
    for (const label of [
      'rewrite',
      'rewrite via waypoint',
      'leave no-frontend',
      'leave passthrough',
      'leave direct-access',
      'refuse stale-frontend',
      'refuse no-endpoint',
      'refuse missing-endpoint',
      'refuse missing-backend',
      'refuse port-not-served',
      'refuse invalid-policy',
      'refuse family-mismatch',
    ]) {
      t.ok((tally[label] ?? 0) > 0, `branch exercised: ${label} (${tally[label] ?? 0})`)
    }
    t.ok(ms < BUDGET_MS, `done in ${(ms / 1000).toFixed(1)} s (budget ${BUDGET_MS / 1000} s)`)
  },
)
