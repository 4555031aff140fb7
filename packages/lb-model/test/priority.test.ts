import t from 'tap'
import {
  endpointPriority,
  LB_POLICY,
  lbPolicyOf,
  PRIO_COUNT,
  type LoadBalancing,
  type PeerInfo,
  type Scope,
} from '../src/index.js'

const client: PeerInfo = {
  locality: { region: 'r1', zone: 'z1', subzone: 's1' },
  node: 'n1',
  clusterId: 'c1',
  network: 'net1',
}
const ep = (
  o: { region?: string; zone?: string; subzone?: string; node?: string; clusterId?: string; network?: string } = {},
): PeerInfo => ({
  locality: { region: o.region ?? 'r1', zone: o.zone ?? 'z1', subzone: o.subzone ?? 's1' },
  node: o.node ?? 'n1',
  clusterId: o.clusterId ?? 'c1',
  network: o.network ?? 'net1',
})
const lb = (mode: LoadBalancing['mode'], ...routingPreferences: Scope[]): LoadBalancing => ({
  mode,
  routingPreferences,
})
const far = ep({ region: 'r2', zone: 'z2', subzone: 's2', node: 'n2', clusterId: 'c2', network: 'net2' })

t.test('constants', async (t) => {
  t.equal(PRIO_COUNT, 7)
  t.same(LB_POLICY, { Random: 0, Strict: 1, Failover: 2, Passthrough: 3 })
})

t.test('lbPolicyOf', async (t) => {
  t.equal(lbPolicyOf(undefined), 0)
  t.equal(lbPolicyOf(lb('Standard', 'Region')), 0)
  t.equal(lbPolicyOf(lb('Strict', 'Region')), 1)
  t.equal(lbPolicyOf(lb('Failover', 'Region')), 2)
  t.equal(lbPolicyOf(lb('Passthrough')), 3)
})

t.test('Standard and no loadBalancer: always bucket 0, preferences ignored', async (t) => {
  for (const e of [ep(), far, {}]) {
    t.equal(endpointPriority(client, e, undefined), 0)
    t.equal(endpointPriority(undefined, e, undefined), 0)
    t.equal(endpointPriority(client, e, lb('Standard', 'Region', 'Zone', 'Node')), 0)
    t.equal(endpointPriority(client, e, lb('Standard', 'Network', 'Region')), 0)
  }
})

t.test('Passthrough: no endpoint is used', async (t) => {
  for (const e of [ep(), far]) {
    t.equal(endpointPriority(client, e, lb('Passthrough')), undefined)
    t.equal(endpointPriority(client, e, lb('Passthrough', 'Region')), undefined)
  }
})

t.test('Failover: bucket = maxRank - rank', async (t) => {
  const prefs: Scope[] = ['Region', 'Zone', 'Subzone', 'Node', 'Cluster', 'Network']
  const table: [string, PeerInfo, number][] = [
    ['all six match', ep(), 0],
    ['network differs', ep({ network: 'net2' }), 1],
    ['cluster differs', ep({ clusterId: 'c2' }), 2],
    ['node differs', ep({ node: 'n2' }), 3],
    ['subzone differs', ep({ subzone: 's2' }), 4],
    ['zone differs', ep({ zone: 'z2' }), 5],
    ['region differs', ep({ region: 'r2' }), 6],
    ['nothing matches', far, 6],
  ]
  for (const [name, e, want] of table) t.equal(endpointPriority(client, e, lb('Failover', ...prefs)), want, name)

  t.equal(endpointPriority(client, ep(), lb('Failover', 'Region', 'Zone')), 0)
  t.equal(endpointPriority(client, ep({ zone: 'z2' }), lb('Failover', 'Region', 'Zone')), 1)
  t.equal(endpointPriority(client, ep({ region: 'r2' }), lb('Failover', 'Region', 'Zone')), 2)
  t.equal(endpointPriority(client, far, lb('Failover')), 0, 'no preferences: everything in bucket 0')
  t.equal(endpointPriority(undefined, ep(), lb('Failover', 'Region', 'Zone')), 2, 'missing client: worst bucket')
})

t.test('Failover NETWORK-first: same network always in a better bucket', async (t) => {
  const l = lb('Failover', 'Network', 'Region', 'Zone') // maxRank 5
  const table: [string, PeerInfo, number][] = [
    ['same network, all match', ep(), 0],
    ['same network, zone differs', ep({ zone: 'z2' }), 1],
    ['same network, region differs', ep({ region: 'r2' }), 2],
    ['other network, region+zone match', ep({ network: 'net2' }), 3],
    ['other network, zone differs', ep({ network: 'net2', zone: 'z2' }), 4],
    ['other network, nothing matches', far, 5],
  ]
  for (const [name, e, want] of table) t.equal(endpointPriority(client, e, l), want, name)
  t.equal(endpointPriority(undefined, ep(), l), 5, 'missing client: worst bucket')
})

t.test('Failover clamping: ranks more than 6 below the best share bucket 6', async (t) => {
  // NETWORK-first with 5 scopes: maxRank 9, ranks 0..9 -> prio 9..0, clamped at 6
  const l = lb('Failover', 'Network', 'Region', 'Zone', 'Subzone', 'Node')
  const table: [string, PeerInfo, number][] = [
    ['same network, all match (rank 9)', ep(), 0],
    ['same network, nothing else (rank 5)', ep({ region: 'r2' }), 4],
    ['other network, rest match (rank 4)', ep({ network: 'net2' }), 5],
    ['other network, node differs (rank 3)', ep({ network: 'net2', node: 'n2' }), 6],
    ['other network, subzone differs (rank 2)', ep({ network: 'net2', subzone: 's2' }), 6],
    ['other network, zone differs (rank 1)', ep({ network: 'net2', zone: 'z2' }), 6],
    ['nothing matches (rank 0)', far, 6],
  ]
  for (const [name, e, want] of table) t.equal(endpointPriority(client, e, l), want, name)

  // all six scopes NETWORK-first: maxRank 11; same network stays in 0..5
  const six = lb('Failover', 'Network', 'Region', 'Zone', 'Subzone', 'Node', 'Cluster')
  t.equal(endpointPriority(client, ep({ region: 'r2' }), six), 5, 'worst same-network: 5')
  t.equal(endpointPriority(client, ep({ network: 'net2' }), six), 6, 'best other-network: 6')
  // repeated scopes make a list longer than 6
  const rep = lb('Failover', 'Region', 'Region', 'Region', 'Region', 'Region', 'Region', 'Region', 'Region')
  t.equal(endpointPriority(client, ep(), rep), 0)
  t.equal(endpointPriority(client, ep({ region: 'r2' }), rep), 6, 'prio 8 clamped to 6')
  for (const e of [ep(), far, ep({ network: 'net2' }), {}]) {
    const p = endpointPriority(client, e, six)
    t.ok(p !== undefined && p >= 0 && p < PRIO_COUNT, 'always a valid bucket')
  }
})

t.test('Strict: bucket 0 for a full match, excluded otherwise', async (t) => {
  const l = lb('Strict', 'Region', 'Zone', 'Node')
  const table: [string, PeerInfo, number | undefined][] = [
    ['all match', ep(), 0],
    ['unlisted scopes differ', ep({ subzone: 's2', clusterId: 'c2', network: 'net2' }), 0],
    ['node differs', ep({ node: 'n2' }), undefined],
    ['zone differs', ep({ zone: 'z2' }), undefined],
    ['region differs', ep({ region: 'r2' }), undefined],
    ['nothing matches', far, undefined],
  ]
  for (const [name, e, want] of table) t.equal(endpointPriority(client, e, l), want, name)
  t.equal(endpointPriority(undefined, ep(), l), undefined, 'missing client: excluded')
  t.equal(endpointPriority(undefined, ep(), lb('Strict')), 0, 'no preferences: everything matches')
  t.equal(endpointPriority(client, far, lb('Strict')), 0)
  t.equal(endpointPriority({}, {}, l), 0, 'both lack every field: "" equals ""')
})

t.test(
  'Strict NETWORK-first: ztunnel keeps rank >= len (every same-network endpoint), then the best group',
  async (t) => {
    const l = lb('Strict', 'Network', 'Region', 'Zone')
    t.equal(lbPolicyOf(l), LB_POLICY.Failover, 'the kernel draws from the first non-empty bucket: the best group')
    t.equal(lbPolicyOf(lb('Strict', 'Region', 'Network')), LB_POLICY.Strict, 'Network not first: plain Strict')
    t.equal(endpointPriority(client, ep(), l), 0, 'same network, all match')
    t.equal(endpointPriority(client, ep({ zone: 'z2' }), l), 1, 'same network, zone differs')
    t.equal(endpointPriority(client, ep({ region: 'r2' }), l), 2, 'same network, region differs')
    t.equal(endpointPriority(client, ep({ network: 'net2' }), l), undefined, 'other network, rest match')
    t.equal(endpointPriority(client, far, l), undefined, 'other network, nothing matches')
    t.equal(endpointPriority(undefined, ep(), l), undefined, 'missing client')
    t.equal(endpointPriority(client, ep(), lb('Strict', 'Network')), 0)
    t.equal(endpointPriority(client, ep({ network: 'net2' }), lb('Strict', 'Network')), undefined)
  },
)

t.test('every mode x every single scope', async (t) => {
  const scopes: Scope[] = ['Region', 'Zone', 'Subzone', 'Node', 'Cluster', 'Network']
  const mismatch: Record<Scope, PeerInfo> = {
    Region: ep({ region: 'r2' }),
    Zone: ep({ zone: 'z2' }),
    Subzone: ep({ subzone: 's2' }),
    Node: ep({ node: 'n2' }),
    Cluster: ep({ clusterId: 'c2' }),
    Network: ep({ network: 'net2' }),
  }
  for (const s of scopes) {
    t.equal(endpointPriority(client, ep(), lb('Standard', s)), 0, `Standard ${s} match`)
    t.equal(endpointPriority(client, mismatch[s], lb('Standard', s)), 0, `Standard ${s} mismatch`)
    t.equal(endpointPriority(client, ep(), lb('Strict', s)), 0, `Strict ${s} match`)
    t.equal(endpointPriority(client, mismatch[s], lb('Strict', s)), undefined, `Strict ${s} mismatch`)
    t.equal(endpointPriority(client, ep(), lb('Failover', s)), 0, `Failover ${s} match`)
    t.equal(endpointPriority(client, mismatch[s], lb('Failover', s)), 1, `Failover ${s} mismatch`)
    t.equal(endpointPriority(client, ep(), lb('Passthrough', s)), undefined, `Passthrough ${s}`)
  }
})
