import t from 'tap'
import { localityRank, maxRank, type PeerInfo, type Scope } from '../src/index.js'

const client: PeerInfo = {
  locality: { region: 'r1', zone: 'z1', subzone: 's1' },
  node: 'n1',
  clusterId: 'c1',
  network: 'net1',
}
/** The client with some fields replaced: each override is one mismatching scope. */
const ep = (o: Partial<PeerInfo> & { region?: string; zone?: string; subzone?: string } = {}): PeerInfo => ({
  locality: {
    region: o.region ?? 'r1',
    zone: o.zone ?? 'z1',
    subzone: o.subzone ?? 's1',
  },
  node: o.node ?? 'n1',
  clusterId: o.clusterId ?? 'c1',
  network: o.network ?? 'net1',
})

const ALL: Scope[] = ['Region', 'Zone', 'Subzone', 'Node', 'Cluster', 'Network']
const MISMATCH: Record<Scope, PeerInfo> = {
  Region: ep({ region: 'r2' }),
  Zone: ep({ zone: 'z2' }),
  Subzone: ep({ subzone: 's2' }),
  Node: ep({ node: 'n2' }),
  Cluster: ep({ clusterId: 'c2' }),
  Network: ep({ network: 'net2' }),
}

t.test('each scope compares its own field', async (t) => {
  for (const scope of ALL) {
    t.equal(localityRank(client, ep(), [scope]), 1, `${scope}: same`)
    t.equal(localityRank(client, MISMATCH[scope], [scope]), 0, `${scope}: differs`)
    // a mismatch in any other field does not affect this scope
    for (const other of ALL.filter((s) => s !== scope)) {
      t.equal(localityRank(client, MISMATCH[other], [scope]), 1, `${scope} ignores ${other}`)
    }
  }
})

t.test('scopes are compared independently, not as a hierarchy', async (t) => {
  // same zone name in a different region still matches Zone
  t.equal(localityRank(client, ep({ region: 'r2' }), ['Zone']), 1)
  t.equal(localityRank(client, ep({ region: 'r2' }), ['Zone', 'Subzone']), 2)
})

t.test('consecutive matches, stop at the first mismatch', async (t) => {
  const prefs: Scope[] = ['Region', 'Zone', 'Subzone', 'Node', 'Cluster']
  const table: [string, PeerInfo, number][] = [
    ['all match', ep(), 5],
    ['region differs', ep({ region: 'r2' }), 0],
    ['zone differs', ep({ zone: 'z2' }), 1],
    ['subzone differs', ep({ subzone: 's2' }), 2],
    ['node differs', ep({ node: 'n2' }), 3],
    ['cluster differs', ep({ clusterId: 'c2' }), 4],
    ['region and cluster differ', ep({ region: 'r2', clusterId: 'c2' }), 0],
    ['network is not listed', ep({ network: 'net2' }), 5],
  ]
  for (const [name, e, want] of table) t.equal(localityRank(client, e, prefs), want, name)
  t.equal(localityRank(client, ep(), []), 0, 'no preferences: rank 0')
})

t.test('Network not first is an ordinary scope', async (t) => {
  const prefs: Scope[] = ['Region', 'Network', 'Zone']
  t.equal(maxRank(prefs), 3)
  t.equal(localityRank(client, ep(), prefs), 3)
  t.equal(localityRank(client, ep({ network: 'net2' }), prefs), 1, 'mismatch stops the walk')
  t.equal(localityRank(client, ep({ region: 'r2' }), prefs), 0)
})

t.test('NETWORK-first: mismatch continues, match adds len-1 bonus', async (t) => {
  const prefs: Scope[] = ['Network', 'Region', 'Zone']
  t.equal(maxRank(prefs), 5)
  const table: [string, PeerInfo, number][] = [
    ['same network, all match', ep(), 5],
    ['same network, zone differs', ep({ zone: 'z2' }), 4],
    ['same network, region differs', ep({ region: 'r2' }), 3],
    ['other network, all else match', ep({ network: 'net2' }), 2],
    ['other network, zone differs', ep({ network: 'net2', zone: 'z2' }), 1],
    ['other network, region differs', ep({ network: 'net2', region: 'r2' }), 0],
  ]
  for (const [name, e, want] of table) t.equal(localityRank(client, e, prefs), want, name)

  t.equal(localityRank(client, ep(), ['Network']), 1, 'only Network, match')
  t.equal(localityRank(client, ep({ network: 'net2' }), ['Network']), 0, 'only Network, mismatch')
  t.equal(maxRank(['Network']), 1)
})

t.test('NETWORK-first: worst same-network outranks best other-network for every length', async (t) => {
  const rest: Scope[] = ['Region', 'Zone', 'Subzone', 'Node', 'Cluster']
  for (let n = 0; n <= rest.length; n++) {
    const prefs: Scope[] = ['Network', ...rest.slice(0, n)]
    const worstSame = localityRank(
      client,
      ep({ region: 'r2', zone: 'z2', subzone: 's2', node: 'n2', clusterId: 'c2' }),
      prefs,
    )
    const bestOther = localityRank(client, ep({ network: 'net2' }), prefs)
    t.equal(worstSame, prefs.length, `len ${prefs.length}: worst same-network = len`)
    t.equal(bestOther, prefs.length - 1, `len ${prefs.length}: best other-network = len-1`)
    t.equal(localityRank(client, ep(), prefs), maxRank(prefs), `len ${prefs.length}: full match = maxRank`)
  }
})

t.test('missing client matches no scope', async (t) => {
  for (const prefs of [['Region'], ['Network'], ['Network', 'Region'], ALL] as Scope[][]) {
    t.equal(localityRank(undefined, ep(), prefs), 0, prefs.join(','))
    t.equal(localityRank(undefined, {}, prefs), 0, `${prefs.join(',')} vs empty endpoint`)
  }
})

t.test('missing fields compare as "" (ztunnel defaults)', async (t) => {
  const bare: PeerInfo = {}
  t.equal(localityRank(bare, {}, ['Region', 'Zone', 'Subzone', 'Node', 'Cluster']), 5, 'both bare: all equal')
  t.equal(localityRank(bare, {}, ['Network', 'Region']), 3, 'both bare, NETWORK-first: full match')
  t.equal(localityRank(client, {}, ['Region']), 0, 'endpoint without locality vs client with one')
  t.equal(localityRank({}, ep(), ['Region']), 0, 'client without locality vs endpoint with one')
  t.equal(localityRank({ node: 'n1' }, { node: 'n1' }, ['Node', 'Region']), 2, 'both lack locality: Region ""==""')
  t.equal(
    localityRank({ locality: { region: '', zone: '', subzone: '' } }, {}, ['Region', 'Zone', 'Subzone']),
    3,
    'explicit empty locality equals missing locality',
  )
})
