/**
 * Kubernetes settings → istiod's LoadBalancing → the endpoints a client reaches, and with what probability.
 * Each row is checked three ways: the expected answer written by hand, ztunnel's semantics
 * (ztunnelChoice), and what the kmesh-ts kernel does with the maps the daemon writes (kernelChoice).
 */
import t from 'tap'
import {
  kernelChoice,
  loadBalancingOf,
  ztunnelChoice,
  type KubernetesServiceSettings,
  type MeshEndpoint,
  type PeerInfo,
  type ServiceLoadBalancing,
} from '../src/index.js'

const client: PeerInfo = {
  locality: { region: 'r1', zone: 'z1', subzone: 's1' },
  node: 'n1',
  clusterId: 'c1',
  network: 'net1',
}
const at = (node: string, region: string, zone: string, network = 'net1'): PeerInfo => ({
  locality: { region, zone, subzone: 's1' },
  node,
  clusterId: 'c1',
  network,
})
const mesh: MeshEndpoint[] = [
  { id: 'a', peer: at('n1', 'r1', 'z1') }, // my node
  { id: 'b', peer: at('n2', 'r1', 'z1'), capacity: 2 }, // my zone, double weight
  { id: 'c', peer: at('n3', 'r1', 'z2') }, // my region
  { id: 'd', peer: at('n4', 'r2', 'z9') }, // my network only
  { id: 'e', peer: at('n5', 'r1', 'z1', 'net2') }, // my zone, other network
  { id: 'u', peer: at('n1', 'r1', 'z1'), healthy: false }, // my node, not ready
]
const without = (...ids: string[]): MeshEndpoint[] => mesh.filter((e) => !ids.includes(e.id))
const with_ = (id: string, patch: Partial<MeshEndpoint>): MeshEndpoint[] =>
  mesh.map((e) => (e.id === id ? { ...e, ...patch } : e))

type Expect = Record<string, number> | 'passthrough' | 'refused'
const rows: [string, KubernetesServiceSettings | ServiceLoadBalancing, MeshEndpoint[], Expect][] = [
  [
    'no settings: Standard, every ready endpoint by capacity',
    {},
    mesh,
    { a: 1 / 6, b: 2 / 6, c: 1 / 6, d: 1 / 6, e: 1 / 6 },
  ],
  ['internalTrafficPolicy Local: Strict [Node]', { internalTrafficPolicy: 'Local' }, mesh, { a: 1 }],
  [
    'Local + publishNotReadyAddresses: not-ready endpoints count (AllowAll)',
    { internalTrafficPolicy: 'Local', publishNotReadyAddresses: true },
    mesh,
    { a: 1 / 2, u: 1 / 2 },
  ],
  [
    'Local with nothing on my node: refused at once (fail fast)',
    { internalTrafficPolicy: 'Local' },
    without('a'),
    'refused',
  ],
  [
    'Local wins over a traffic distribution',
    { internalTrafficPolicy: 'Local', trafficDistribution: 'PreferSameZone' },
    mesh,
    { a: 1 },
  ],
  [
    'PreferSameZone: Failover [Network, Region, Zone], my zone by capacity',
    { trafficDistribution: 'PreferSameZone' },
    mesh,
    { a: 1 / 3, b: 2 / 3 },
  ],
  ['PreferClose is PreferSameZone', { trafficDistribution: 'PreferClose' }, mesh, { a: 1 / 3, b: 2 / 3 }],
  [
    'PreferSameZone, my zone empty: my region',
    { trafficDistribution: 'PreferSameZone' },
    without('a', 'b', 'u'),
    { c: 1 },
  ],
  [
    'PreferSameZone, NETWORK first: my network in another region beats my zone in another network',
    { trafficDistribution: 'PreferSameZone' },
    without('a', 'b', 'c', 'u'),
    { d: 1 },
  ],
  [
    'PreferSameZone, only the other network left: still served',
    { trafficDistribution: 'PreferSameZone' },
    without('a', 'b', 'c', 'd', 'u'),
    { e: 1 },
  ],
  ['PreferSameNode: Failover down to the node', { trafficDistribution: 'PreferSameNode' }, mesh, { a: 1 }],
  ['PreferSameNode, my node empty: my zone', { trafficDistribution: 'PreferSameNode' }, without('a'), { b: 1 }],
  [
    'PreferSameNode + publishNotReadyAddresses',
    { trafficDistribution: 'PreferSameNode', publishNotReadyAddresses: true },
    mesh,
    { a: 1 / 2, u: 1 / 2 },
  ],
  [
    'publishNotReadyAddresses alone: Standard over everything',
    { publishNotReadyAddresses: true },
    mesh,
    { a: 1 / 7, b: 2 / 7, c: 1 / 7, d: 1 / 7, e: 1 / 7, u: 1 / 7 },
  ],
  ['capacity 0 is never chosen', {}, with_('b', { capacity: 0 }), { a: 1 / 4, c: 1 / 4, d: 1 / 4, e: 1 / 4 }],
  [
    'PreferSameZone, my zone only capacity 0: the next group',
    { trafficDistribution: 'PreferSameZone' },
    with_('a', { capacity: 0 }).filter((e) => e.id !== 'b'),
    { c: 1 },
  ],
  [
    'UNSPECIFIED mode ignores routing preferences',
    { mode: 'Standard', routingPreferences: ['Node'] },
    mesh,
    { a: 1 / 6, b: 2 / 6, c: 1 / 6, d: 1 / 6, e: 1 / 6 },
  ],
  [
    'PASSTHROUGH leaves the destination untouched',
    { mode: 'Passthrough', routingPreferences: [] },
    mesh,
    'passthrough',
  ],
  [
    'Strict [Network, Region]: same network only, then the best group',
    { mode: 'Strict', routingPreferences: ['Network', 'Region'] },
    mesh,
    { a: 1 / 4, b: 2 / 4, c: 1 / 4 },
  ],
  [
    'Strict [Network, Region], my region empty: the rest of my network',
    { mode: 'Strict', routingPreferences: ['Network', 'Region'] },
    without('a', 'b', 'c', 'u'),
    { d: 1 },
  ],
  [
    'Strict [Network]: other networks never',
    { mode: 'Strict', routingPreferences: ['Network'] },
    [mesh[4]!],
    'refused',
  ],
  [
    'Strict [Region, Zone]: full matches only, whatever the network',
    { mode: 'Strict', routingPreferences: ['Region', 'Zone'] },
    mesh,
    { a: 1 / 4, b: 2 / 4, e: 1 / 4 },
  ],
]

const lbOf = (x: KubernetesServiceSettings | ServiceLoadBalancing): ServiceLoadBalancing | undefined =>
  'mode' in x ? x : loadBalancingOf(x)
const summary = (c: ReturnType<typeof ztunnelChoice>): Expect =>
  c.outcome === 'passthrough'
    ? 'passthrough'
    : c.outcome === 'none'
      ? 'refused'
      : Object.fromEntries(c.candidates.map((x) => [x.id, Math.round(x.probability * 1e9) / 1e9]))
const round = (e: Expect): Expect =>
  typeof e === 'string' ? e : Object.fromEntries(Object.entries(e).map(([k, v]) => [k, Math.round(v * 1e9) / 1e9]))

t.test('istiod mapping of Kubernetes settings', async (t) => {
  t.equal(loadBalancingOf({}), undefined)
  t.same(loadBalancingOf({ internalTrafficPolicy: 'Local' }), { mode: 'Strict', routingPreferences: ['Node'] })
  t.same(loadBalancingOf({ trafficDistribution: 'PreferSameZone' }), {
    mode: 'Failover',
    routingPreferences: ['Network', 'Region', 'Zone'],
  })
  t.same(loadBalancingOf({ trafficDistribution: 'PreferSameNode' }), {
    mode: 'Failover',
    routingPreferences: ['Network', 'Region', 'Zone', 'Subzone', 'Node'],
  })
  t.same(loadBalancingOf({ publishNotReadyAddresses: true }), {
    mode: 'Standard',
    routingPreferences: [],
    healthPolicy: 'AllowAll',
  })
})

t.test('Kubernetes settings → chosen endpoints: expected = ztunnel = kmesh-ts kernel', async (t) => {
  for (const [name, settings, endpoints, expect] of rows) {
    const lb = lbOf(settings)
    t.same(summary(ztunnelChoice(lb, client, endpoints)), round(expect), `${name} (ztunnel)`)
    t.same(summary(kernelChoice(lb, client, endpoints)), round(expect), `${name} (kernel)`)
  }
})

t.test('every exclusion has a reason', async (t) => {
  const c = kernelChoice(
    loadBalancingOf({ trafficDistribution: 'PreferSameZone' }),
    client,
    with_('c', { capacity: 0 }),
  )
  t.same(Object.fromEntries(c.excluded.map((x) => [x.id, x.reason.kind])), {
    c: 'capacity-zero',
    d: 'lower-rank',
    e: 'lower-rank',
    u: 'unhealthy',
  })
  const s = ztunnelChoice(loadBalancingOf({ internalTrafficPolicy: 'Local' }), client, mesh)
  t.same(s.excluded.find((x) => x.id === 'b')?.reason, { kind: 'strict-mismatch', rank: 0, needed: 1 })
})
