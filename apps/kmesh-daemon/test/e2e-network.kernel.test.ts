/**
 * The node's network on the real kernel (issue 11, item 6): a daemon on network net1 serves its own VIPs, leaves
 * a VIP on net2 alone, resolves an address claimed on both networks to net1's service, and never sends a connect
 * to an endpoint on net2 (nor to net2's gateway); the same from istiod (cluster mode: the xDS converter keeps the
 * networks, and the node announces its network). Addresses: VIPs 127.10.77.0/24, backends 127.0.77.0/24 (unique
 * to this file; tap runs files in parallel).
 */
import t from 'tap'
import { privilegedSkip } from '@kmesh-ts/testkit'
import { startTestXdsServer, ADDRESS_TYPE_URL } from '@kmesh-ts/xds-client/testing'
import type { AddressInit } from '@kmesh-ts/xds-client'
import { meshHarness } from './support/mesh-harness.js'

const skip = privilegedSkip(
  'BPF_PROG_TYPE_CGROUP_SOCK_ADDR connect4/connect6 attached by BPF links (kernel >= 5.7), a cgroup v2 mount and bpffs',
)
const N = 60

const MESH = `
workloads:
- uid: c//v1/Pod/t/local-a
  name: local-a
  namespace: t
  network: net1
  node: node-1
  workloadIps: ["127.0.77.11"]
  services:
    "t/shop.t.svc.cluster.local": {80: 18080}
    "t/shared-net1.t.svc.cluster.local": {80: 18080}
- uid: c2//v1/Pod/t/remote-b
  name: remote-b
  namespace: t
  network: net2
  node: node-9
  workloadIps: ["127.0.77.12"]
  networkGateway: {destination: "net2/127.0.77.13", hboneMtlsPort: 15008}
  services:
    "t/shop.t.svc.cluster.local": {80: 18080}
    "t/remote.t.svc.cluster.local": {80: 18080}
    "t/shared-net2.t.svc.cluster.local": {80: 18080}
- uid: c2//v1/Pod/istio-system/eastwest
  name: eastwest
  namespace: istio-system
  network: net2
  node: node-9
  workloadIps: ["127.0.77.13"]
  services: {}
services:
- name: shop
  namespace: t
  hostname: shop.t.svc.cluster.local
  vips: ["net1/127.10.77.1"]
  ports: {80: 18080}
- name: remote
  namespace: t
  hostname: remote.t.svc.cluster.local
  vips: ["net2/127.10.77.2"]
  ports: {80: 18080}
- name: shared-net1
  namespace: t
  hostname: shared-net1.t.svc.cluster.local
  vips: ["net1/127.10.77.3"]
  ports: {80: 18080}
- name: shared-net2
  namespace: t
  hostname: shared-net2.t.svc.cluster.local
  vips: ["net2/127.10.77.3"]
  ports: {80: 18080}
policies: []
`

t.test('a node on net1: its VIPs only, the shared address to its service, no connect to net2', { skip }, async (t) => {
  const h = await meshHarness(t)
  await h.backend('local-a', '127.0.77.11', 18080)
  await h.backend('remote-b', '127.0.77.12', 18080)
  await h.backend('eastwest', '127.0.77.13', 18080)
  await h.backend('gateway-hbone', '127.0.77.13', 15008)
  for (let i = 1; i <= 3; i++) await h.sentinel(`127.10.77.${i}`, 80)
  h.writeMesh(MESH)
  await h.start({ nodeName: 'node-1', network: 'net1' })

  const r = await h.probe(['127.10.77.1:80', '127.10.77.2:80', '127.10.77.3:80'], N)
  t.same(r['127.10.77.1:80'], { 'local-a': N }, "shop: only the endpoint on the node's network")
  t.same(r['127.10.77.2:80'], { untouched: N }, 'the VIP on net2 is not a frontend here: the connect is left alone')
  t.same(r['127.10.77.3:80'], { 'local-a': N }, "127.10.77.3 (net1 and net2): net1's service")
  t.ok(
    h.logs.some((l) =>
      l.includes('endpoint c2//v1/Pod/t/remote-b of service t/shop.t.svc.cluster.local is on network \\"net2\\"'),
    ),
    'the endpoint left out is reported in the log',
  )

  // The same mesh seen from net2 (a second daemon would be another node): there the roles swap.
  await h.daemon!.close()
  await h.start({ nodeName: 'node-9', network: 'net2' })
  const r2 = await h.probe(['127.10.77.1:80', '127.10.77.2:80', '127.10.77.3:80'], N)
  t.same(r2['127.10.77.1:80'], { untouched: N }, 'from net2 the net1 VIP is left alone')
  t.same(r2['127.10.77.2:80'], { 'remote-b': N }, "from net2 its own service reaches net2's endpoint")
  t.same(r2['127.10.77.3:80'], { 'remote-b': N }, "127.10.77.3 from net2: net2's service")
})

const ip = (s: string): Uint8Array => Uint8Array.from(s.split('.').map(Number))
const xdsWorkload = (name: string, network: string, addr: string, services: string[], gw?: string): AddressInit => ({
  workload: {
    uid: `c//v1/Pod/t/${name}`,
    name,
    namespace: 't',
    network,
    addresses: [ip(addr)],
    ...(gw ? { networkGateway: { address: { network, address: ip(gw) }, hboneMtlsPort: 15008 } } : {}),
    services: Object.fromEntries(
      services.map((s) => [`t/${s}.t.svc.cluster.local`, { ports: [{ servicePort: 80, targetPort: 18080 }] }]),
    ),
  },
})
const xdsService = (name: string, vips: [string, string][]): AddressInit => ({
  service: {
    name,
    namespace: 't',
    hostname: `${name}.t.svc.cluster.local`,
    addresses: vips.map(([network, vip]) => ({ network, address: ip(vip) })),
    ports: [{ servicePort: 80, targetPort: 18080 }],
  },
})

t.test(
  'cluster mode: the networks istiod pushes decide the same way, and the node announces net1',
  { skip },
  async (t) => {
    const server = await startTestXdsServer()
    t.teardown(() => server.close())
    const h = await meshHarness(t)
    await h.backend('local-x', '127.0.77.21', 18080)
    await h.backend('remote-y', '127.0.77.22', 18080)
    for (let i = 11; i <= 13; i++) await h.sentinel(`127.10.77.${i}`, 80)
    server.setQuietly(ADDRESS_TYPE_URL, [
      xdsService('shop', [['net1', '127.10.77.11']]),
      xdsService('remote', [['net2', '127.10.77.12']]),
      xdsService('shared-net1', [['net1', '127.10.77.13']]),
      xdsService('shared-net2', [['net2', '127.10.77.13']]),
      xdsWorkload('local-x', 'net1', '127.0.77.21', ['shop', 'shared-net1']),
      xdsWorkload('remote-y', 'net2', '127.0.77.22', ['shop', 'remote', 'shared-net2'], '127.0.77.23'),
    ])
    await h.start({ meshFile: undefined, xds: { address: server.address, insecure: true }, network: 'net1' })
    t.match(server.streams[0]?.node?.metadata, { NETWORK: 'net1' }, "istiod is told the node's network")
    const r = await h.probe(['127.10.77.11:80', '127.10.77.12:80', '127.10.77.13:80'], N)
    t.same(r['127.10.77.11:80'], { 'local-x': N }, 'shop: only the endpoint on net1')
    t.same(r['127.10.77.12:80'], { untouched: N }, 'the VIP on net2 is left alone')
    t.same(r['127.10.77.13:80'], { 'local-x': N }, "the address on both networks: net1's service")
    t.ok(
      h.logs.some((l) => l.includes('endpoint c//v1/Pod/t/remote-y of service t/shop.t.svc.cluster.local')),
      'the endpoint left out is reported',
    )
  },
)
