/**
 * End to end on the real kernel: the daemon in process, a mesh file, connects from a private cgroup.
 * Addresses: VIPs 127.10.1.0/24, backends 127.0.1.0/24 (unique to this file; tap runs files in parallel).
 */
import t from 'tap'
import { privilegedSkip } from '@kmesh-ts/testkit'
import { meshHarness, meshYaml, type WorkloadSpec } from './support/mesh-harness.js'

const skip = privilegedSkip(
  'BPF_PROG_TYPE_CGROUP_SOCK_ADDR connect4/connect6 attached by BPF links (kernel >= 5.7), a cgroup v2 mount and bpffs',
)
const N = 240

t.test('Random, Strict, Failover, ports, refusals, unmanaged and direct access', { skip }, async (t) => {
  const h = await meshHarness(t)
  const zoneA: [string, string] = ['r1', 'z1']
  const zoneB: [string, string] = ['r1', 'z2']
  const farAway: [string, string] = ['r2', 'z9']
  const w = (
    name: string,
    ip: string,
    locality: [string, string],
    services: WorkloadSpec['services'],
  ): WorkloadSpec => ({ name, ip, locality, services })
  const all = { random: { 80: 18080, 81: 18081 }, strict: { 80: 18080 }, failover: { 80: 18080 } }
  const workloads = [
    w('a1', '127.0.1.11', zoneA, all),
    w('a2', '127.0.1.12', zoneA, all),
    w('b1', '127.0.1.13', zoneB, all),
    w('far', '127.0.1.14', farAway, all),
  ]
  const services = [
    { name: 'random', vips: ['127.10.1.1'], ports: { 80: 18080, 81: 18081 } },
    { name: 'strict', vips: ['127.10.1.2'], ports: { 80: 18080 }, mode: 'Strict' as const, prefs: ['Region', 'Zone'] },
    {
      name: 'failover',
      vips: ['127.10.1.3'],
      ports: { 80: 18080 },
      mode: 'Failover' as const,
      prefs: ['Region', 'Zone'],
    },
    { name: 'empty', vips: ['127.10.1.4'], ports: { 80: 18080 } },
  ]
  for (const wl of workloads) {
    await h.backend(wl.name, wl.ip, 18080)
    await h.backend(`${wl.name}:18081`, wl.ip, 18081)
  }
  for (let i = 1; i <= 4; i++) await h.sentinel(`127.10.1.${i}`, 80)
  await h.sentinel('127.10.1.1', 82)
  h.writeMesh(meshYaml(workloads, services, { node: 'node-1', locality: zoneA }))
  await h.start({ nodeName: 'node-1' })

  const r = await h.probe(['127.10.1.1:80', '127.10.1.2:80', '127.10.1.3:80'], N)
  const random = r['127.10.1.1:80']!
  t.same(Object.keys(random).sort(), ['a1', 'a2', 'b1', 'far'], 'Random reaches every endpoint')
  for (const name of ['a1', 'a2', 'b1', 'far'])
    t.ok(random[name]! > N / 4 / 3, `Random gives ${name} a fair share (${random[name]} of ${N})`)
  t.same(Object.keys(r['127.10.1.2:80']!).sort(), ['a1', 'a2'], 'Strict stays on full matches (priority 0)')
  t.ok(r['127.10.1.2:80']!.a1! > N / 6 && r['127.10.1.2:80']!.a2! > N / 6, 'Strict spreads over priority 0')
  t.same(Object.keys(r['127.10.1.3:80']!).sort(), ['a1', 'a2'], 'Failover takes the first non-empty priority')

  const ports = await h.probe(['127.10.1.1:81', '127.10.1.1:82', '127.10.1.4:80'], 20)
  t.same(
    Object.keys(ports['127.10.1.1:81']!).every((k) => k.endsWith(':18081')),
    true,
    'service port 81 maps to target port 18081',
  )
  t.same(
    ports['127.10.1.1:82'],
    { ECONNREFUSED: 20 },
    'a port the service does not serve is refused, not passed to the VIP',
  )
  t.same(ports['127.10.1.4:80'], { ECONNREFUSED: 20 }, 'a VIP with no endpoint refuses at once')

  const outside = await h.probe(['127.10.1.1:80'], 10, { outside: true })
  t.same(outside['127.10.1.1:80'], { untouched: 10 }, 'a process outside the managed cgroup is untouched')
  const direct = await h.probe(['127.0.1.13:18080'], 10)
  t.same(direct['127.0.1.13:18080'], { b1: 10 }, 'direct workload access goes to that workload')

  // Empty Failover's first priority: the traffic moves to the next one at the next connect.
  const healthy = workloads.map((x) => (x.name.startsWith('a') ? { ...x, status: 'Unhealthy' as const } : x))
  h.writeMesh(meshYaml(healthy, services, { node: 'node-1', locality: zoneA }))
  t.ok((await h.daemon!.mesh!.reload()).ok)
  const moved = await h.probe(['127.10.1.3:80', '127.10.1.2:80', '127.10.1.1:80'], 60)
  t.same(moved['127.10.1.3:80'], { b1: 60 }, 'Failover moves to priority 1 when priority 0 empties')
  t.same(moved['127.10.1.2:80'], { ECONNREFUSED: 60 }, 'Strict with nothing at priority 0 refuses')
  t.notOk(
    'a1' in moved['127.10.1.1:80']! || 'a2' in moved['127.10.1.1:80']!,
    'removed backends are not chosen by Random at the next connect',
  )

  // Remove a workload entirely: its backend is gone from every service at the next connect.
  h.writeMesh(
    meshYaml(
      workloads.filter((x) => x.name !== 'far'),
      services,
      { node: 'node-1', locality: zoneA },
    ),
  )
  t.ok((await h.daemon!.mesh!.reload()).ok)
  const after = await h.probe(['127.10.1.1:80'], 80)
  t.notOk('far' in after['127.10.1.1:80']!, 'a removed workload is never reached again')
  t.same(Object.keys(after['127.10.1.1:80']!).sort(), ['a1', 'a2', 'b1'])
})
