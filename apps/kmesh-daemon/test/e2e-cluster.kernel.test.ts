/**
 * Cluster mode end to end: the xds-client testing server plays istiod on loopback; the daemon subscribes,
 * writes the maps, and connects from the managed cgroup follow. Addresses: VIPs 127.10.6.0/24, backends
 * 127.0.6.0/24.
 */
import t from 'tap'
import { privilegedSkip } from '@kmesh-ts/testkit'
import { startTestXdsServer, ADDRESS_TYPE_URL } from '@kmesh-ts/xds-client/testing'
import type { AddressInit } from '@kmesh-ts/xds-client'
import { meshHarness } from './support/mesh-harness.js'
import { LB_MAPS } from '../src/dataplane/map-image.js'

const skip = privilegedSkip(
  'BPF_PROG_TYPE_CGROUP_SOCK_ADDR connect4/connect6 attached by BPF links (kernel >= 5.7), a cgroup v2 mount and bpffs',
)
const SVC = 't/web.t.svc.cluster.local'
const ip = (s: string): Uint8Array => Uint8Array.from(s.split('.').map(Number))
const workload = (name: string, addr: string, services: string[] = [SVC]): AddressInit => ({
  workload: {
    uid: `c//v1/Pod/t/${name}`,
    name,
    namespace: 't',
    addresses: [ip(addr)],
    services: Object.fromEntries(services.map((s) => [s, { ports: [{ servicePort: 80, targetPort: 18080 }] }])),
  },
})
const service = (vip: string): AddressInit => ({
  service: {
    name: 'web',
    namespace: 't',
    hostname: 'web.t.svc.cluster.local',
    addresses: [{ network: '', address: ip(vip) }],
    ports: [{ servicePort: 80, targetPort: 18080 }],
  },
})

t.test('istiod pushes drive the maps; removals, NACKs and order', { skip }, async (t) => {
  const server = await startTestXdsServer()
  t.teardown(() => server.close())
  const h = await meshHarness(t)
  for (const [name, addr] of [
    ['w1', '127.0.6.11'],
    ['w2', '127.0.6.12'],
    ['w3', '127.0.6.13'],
  ] as const)
    await h.backend(name, addr, 18080)
  await h.sentinel('127.10.6.1', 80)
  server.setQuietly(ADDRESS_TYPE_URL, [
    service('127.10.6.1'),
    workload('w1', '127.0.6.11'),
    workload('w2', '127.0.6.12'),
  ])
  await h.start({ meshFile: undefined, xds: { address: server.address, insecure: true } })
  t.ok(h.daemon!.isReady(), 'ready after the first responses were ACKed')

  const first = await h.probe(['127.10.6.1:80'], 60)
  t.same(
    Object.keys(first['127.10.6.1:80']!).sort(),
    ['w1', 'w2'],
    'a connect to the pushed VIP lands on a pushed backend',
  )

  const [removal] = server.remove(ADDRESS_TYPE_URL, ['c//v1/Pod/t/w2'])
  t.ok((await server.reply(removal!)).ack, 'the removal is ACKed')
  t.same(
    (await h.probe(['127.10.6.1:80'], 30))['127.10.6.1:80'],
    { w1: 30 },
    'the next connects avoid the removed workload',
  )

  // One push with a good workload and one the backend record cannot hold: the good one applies, the bad one is NACKed.
  const tooMany = Array.from({ length: 11 }, (_, i) => `t/s${i}.t.svc.cluster.local`)
  const [mixed] = server.upsertAddresses(workload('w3', '127.0.6.13'), workload('wide', '127.0.6.99', tooMany))
  const reply = await server.reply(mixed!)
  t.notOk(reply.ack, 'the push is NACKed')
  t.match(
    reply.errorDetail?.message ?? '',
    /c\/\/v1\/Pod\/t\/wide: the workload belongs to 11 services, but the kernel backend record holds at most 10/,
    'naming the resource and the reason',
  )
  t.notMatch(reply.errorDetail?.message ?? '', /w3/, 'and only that resource')
  t.same(
    Object.keys((await h.probe(['127.10.6.1:80'], 60))['127.10.6.1:80']!).sort(),
    ['w1', 'w3'],
    'the good resource of the same push was applied',
  )

  // Order: workloads before their service give the same maps as the service first. Endpoint indexes depend on
  // arrival history (they stay stable as members come and go), so endpoints compare as (service, priority) -> set
  // of backends; every other record compares byte for byte.
  const snapshot = (): Record<string, string[]> =>
    Object.fromEntries(
      LB_MAPS.map((m) => [
        m,
        [...h.daemon!.dataplane.writer.mirror[m].entries()]
          .map(([k, r]) => `${m === 'endpoint' ? k.slice(0, 16) : k}=${r.value.toString('hex')}`)
          .sort(),
      ]),
    )
  const before = snapshot()
  for (const order of [
    [SVC, 'c//v1/Pod/t/w1', 'c//v1/Pod/t/w3'],
    ['c//v1/Pod/t/w1', 'c//v1/Pod/t/w3', SVC],
  ]) {
    const nonces = server.remove(ADDRESS_TYPE_URL, order)
    for (const n of nonces) await server.reply(n)
    t.same(snapshot().service, [], 'all gone')
    const pushes: AddressInit[] = order.map((name) =>
      name === SVC
        ? service('127.10.6.1')
        : workload(name.split('/').pop()!, name.endsWith('w1') ? '127.0.6.11' : '127.0.6.13'),
    )
    for (const p of pushes) for (const n of server.upsertAddresses(p)) t.ok((await server.reply(n)).ack)
    t.same(
      snapshot(),
      before,
      `pushing ${order[0] === SVC ? 'the service first' : 'the workloads first'} gives identical maps`,
    )
  }
})

t.test('a push past the maps ceiling is NACKed whole and changes nothing', { skip }, async (t) => {
  const server = await startTestXdsServer()
  t.teardown(() => server.close())
  const h = await meshHarness(t)
  await h.backend('w1', '127.0.6.21', 18080)
  server.setQuietly(ADDRESS_TYPE_URL, [service('127.10.6.2'), workload('w1', '127.0.6.21')])
  // --map-size is a floor (maps grow online); --map-size-max is the ceiling a push must fit under.
  await h.start({
    meshFile: undefined,
    xds: { address: server.address, insecure: true },
    mapSizes: { km_backend: 2 },
    mapSizeMax: { km_backend: 2 },
  })
  const [push] = server.upsertAddresses(workload('w2', '127.0.6.22'), workload('w3', '127.0.6.23'))
  const reply = await server.reply(push!)
  t.notOk(reply.ack)
  t.match(
    reply.errorDetail?.message ?? '',
    /w2.*km_backend would need 3 entries but may grow to at most 2.*--map-size-max/s,
  )
  t.match(reply.errorDetail?.message ?? '', /w3/)
  t.same((await h.probe(['127.10.6.2:80'], 10))['127.10.6.2:80'], { w1: 10 }, 'the last good state stays in force')
})
