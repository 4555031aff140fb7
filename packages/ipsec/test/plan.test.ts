import t from 'tap'
import { derivePairKey } from '../src/derive.js'
import { KeyHistory } from '../src/key-history.js'
import { IpsecKey } from '../src/keyfile.js'
import { planDefaults, planNodeRules, policyIdOf, stateIdOf, type NodeInfo } from '../src/plan.js'

const key1 = new IpsecKey(1, 'rfc4106(gcm(aes))', Buffer.alloc(36, 0x11), 128)
const key2 = new IpsecKey(2, 'rfc4106(gcm(aes))', Buffer.alloc(36, 0x22), 128)
const history = (...keys: IpsecKey[]): KeyHistory => {
  const h = new KeyHistory()
  for (const k of keys) h.add(k)
  return h
}
const bootA = 'aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa'
const bootB = 'bbbbbbbb-2222-4222-8222-bbbbbbbbbbbb'
const nodeA: NodeInfo = {
  name: 'node-a',
  spi: 1,
  addresses: ['192.168.0.1'],
  bootID: bootA,
  podCIDRs: ['10.244.1.0/24'],
}
const nodeB: NodeInfo = {
  name: 'node-b',
  spi: 1,
  addresses: ['192.168.0.2'],
  bootID: bootB,
  podCIDRs: ['10.244.2.0/24'],
}
const mark = (value: number) => ({ value, mask: 0xffffffff })

t.test('the rules node A installs for node B, field by field', async (t) => {
  const r = planNodeRules(nodeA, nodeB, history(key1))
  t.equal(r.egress, 'planned')
  t.same(r.states, [
    {
      src: '192.168.0.2',
      dst: '192.168.0.1',
      proto: 50,
      spi: 1,
      mode: 'tunnel',
      reqid: 1,
      aead: {
        name: 'rfc4106(gcm(aes))',
        key: derivePairKey({
          key: key1.aeadKey,
          srcIp: '192.168.0.2',
          dstIp: '192.168.0.1',
          srcBootId: bootB,
          dstBootId: bootA,
        }),
        icvLengthBits: 128,
      },
      outputMark: mark(0xd0),
    },
    {
      src: '192.168.0.1',
      dst: '192.168.0.2',
      proto: 50,
      spi: 1,
      mode: 'tunnel',
      reqid: 1,
      aead: {
        name: 'rfc4106(gcm(aes))',
        key: derivePairKey({
          key: key1.aeadKey,
          srcIp: '192.168.0.1',
          dstIp: '192.168.0.2',
          srcBootId: bootA,
          dstBootId: bootB,
        }),
        icvLengthBits: 128,
      },
      outputMark: mark(0xd0),
    },
  ])
  const inTmpl = [{ src: '192.168.0.2', dst: '192.168.0.1', proto: 50, reqid: 1, mode: 'tunnel' }]
  t.same(r.policies, [
    { selector: { src: '0.0.0.0/0', dst: '10.244.1.0/24' }, dir: 'in', mark: mark(0xd0), templates: inTmpl },
    { selector: { src: '0.0.0.0/0', dst: '10.244.1.0/24' }, dir: 'fwd', mark: mark(0xd0), templates: inTmpl },
    // Beyond Kmesh: unmarked packets from B's pods to ours must have come through the same ESP tunnel.
    { selector: { src: '10.244.2.0/24', dst: '10.244.1.0/24' }, dir: 'in', mark: mark(0), templates: inTmpl },
    { selector: { src: '10.244.2.0/24', dst: '10.244.1.0/24' }, dir: 'fwd', mark: mark(0), templates: inTmpl },
    {
      selector: { src: '0.0.0.0/0', dst: '10.244.2.0/24' },
      dir: 'out',
      mark: mark(0xe0),
      templates: [{ src: '192.168.0.1', dst: '192.168.0.2', proto: 50, spi: 1, reqid: 1, mode: 'tunnel' }],
    },
  ])
})

t.test('rejectPlaintext: false plans exactly Kmesh’s rules', async (t) => {
  const kmesh = planNodeRules(nodeA, nodeB, history(key1), { rejectPlaintext: false })
  const ours = planNodeRules(nodeA, nodeB, history(key1))
  t.same(kmesh.states, ours.states, 'states do not change')
  t.same(
    kmesh.policies,
    ours.policies.filter((p) => p.mark!.value !== 0),
    'only the mark-0 policies go',
  )
  t.same(
    kmesh.policies.map((p) => `${p.dir} ${p.selector.src} ${p.mark!.value.toString(16)}`),
    ['in 0.0.0.0/0 d0', 'fwd 0.0.0.0/0 d0', 'out 0.0.0.0/0 e0'],
  )
  t.same(planDefaults, { rejectPlaintext: true })
  t.throws(() => planNodeRules(nodeA, nodeB, history(key1), { rejectPlaintext: 'yes' as unknown as boolean }), {
    name: 'TypeError',
    message: /rejectPlaintext must be a boolean/,
  })
})

t.test(
  'plaintext-rejecting policies: one IN and one FWD per (remote CIDR, local CIDR) of a family, disjoint from 0xd0',
  async (t) => {
    const a: NodeInfo = { ...nodeA, podCIDRs: ['10.244.1.0/24', 'fd10:1::/64'] }
    const b: NodeInfo = { ...nodeB, podCIDRs: ['10.244.2.9/24', '10.244.3.0/24', 'fd10:2::/64'] }
    const r = planNodeRules(a, b, history(key1))
    const reject = r.policies.filter((p) => p.mark!.value === 0)
    t.same(
      reject.map((p) => `${p.dir} ${p.selector.src} ${p.selector.dst}`),
      [
        'in 10.244.2.0/24 10.244.1.0/24',
        'fwd 10.244.2.0/24 10.244.1.0/24',
        'in 10.244.3.0/24 10.244.1.0/24',
        'fwd 10.244.3.0/24 10.244.1.0/24',
        'in fd10:2::/64 fd10:1::/64',
        'fwd fd10:2::/64 fd10:1::/64',
      ],
      'same-family pairs only, networks with host bits cleared',
    )
    for (const p of reject) {
      t.same(p.mark, { value: 0, mask: 0xffffffff }, 'matches only a packet whose mark tc_mark_decrypt cleared')
      t.same(
        p.templates,
        [{ src: '192.168.0.2', dst: '192.168.0.1', proto: 50, reqid: 1, mode: 'tunnel' }],
        'the ingress ESP template, any SPI (survives rotation)',
      )
      t.equal(p.priority, undefined, 'priority 0 like Kmesh’s: mark 0 and mark 0xd0 under a full mask never both match')
      t.ok(['in', 'fwd'].includes(p.dir))
    }
    // Rotation does not touch them: the template names no SPI.
    const rotated = planNodeRules({ ...a, spi: 2 }, b, history(key1, key2)).policies.filter((p) => p.mark!.value === 0)
    t.same(rotated, reject)
    // A remote without pod CIDRs (or of another family only) gets none.
    t.same(
      planNodeRules(a, { ...nodeB, podCIDRs: [] }, history(key1)).policies.filter((p) => p.mark!.value === 0),
      [],
    )
  },
)

t.test('two nodes mirror each other: A’s OUT state is B’s IN state, byte for byte', async (t) => {
  const a = planNodeRules(nodeA, nodeB, history(key1))
  const b = planNodeRules(nodeB, nodeA, history(key1))
  t.same(a.states[1], b.states[0], 'A → B')
  t.same(b.states[1], a.states[0], 'B → A')
})

t.test('rotation: SPIs move one node at a time and old keys keep the link up', async (t) => {
  // A has loaded key 2 (SPI 2); B still runs SPI 1.
  const aAfter = { ...nodeA, spi: 2 }
  const a = planNodeRules(aAfter, nodeB, history(key1, key2))
  t.equal(a.egress, 'planned', 'B is not newer: A keeps sending with B’s SPI 1')
  t.equal(a.states[0]!.spi, 2, 'A receives on its new SPI')
  t.same(
    a.states[0]!.aead!.key,
    derivePairKey({
      key: key2.aeadKey,
      srcIp: '192.168.0.2',
      dstIp: '192.168.0.1',
      srcBootId: bootB,
      dstBootId: bootA,
    }),
  )
  t.equal(a.states[1]!.spi, 1)
  t.same(
    a.states[1]!.aead!.key,
    derivePairKey({
      key: key1.aeadKey,
      srcIp: '192.168.0.1',
      dstIp: '192.168.0.2',
      srcBootId: bootA,
      dstBootId: bootB,
    }),
    'egress uses the old key from the history',
  )
  t.same(a.policies.find((p) => p.dir === 'out')!.templates[0]!.spi, 1)

  // B, still on SPI 1, sees A on SPI 2: no egress until B loads key 2.
  const b = planNodeRules(nodeB, aAfter, history(key1))
  t.equal(b.egress, 'remote-spi-newer')
  t.same(
    b.states.map((s) => s.dst),
    ['192.168.0.2'],
    'only the IN state',
  )
  t.same(
    b.policies.map((p) => `${p.dir} ${p.mark!.value.toString(16)}`),
    ['in d0', 'fwd d0', 'in 0', 'fwd 0'],
  )

  // Once B loads key 2, the two agree again on the new SPI.
  const b2 = planNodeRules({ ...nodeB, spi: 2 }, aAfter, history(key1, key2))
  const a2 = planNodeRules(aAfter, { ...nodeB, spi: 2 }, history(key1, key2))
  t.same(b2.states[1]!.aead!.key, a2.states[0]!.aead!.key)
  t.equal(b2.states[1]!.spi, 2)

  // A restarted with only key 2 while B is on SPI 1: the old key is unknown.
  t.equal(planNodeRules(aAfter, nodeB, history(key2)).egress, 'remote-key-unknown')
})

t.test('several addresses, IPv6, and policy keys that coincide', async (t) => {
  const a: NodeInfo = {
    name: 'a',
    spi: 1,
    addresses: ['192.168.0.1', 'fd00::1'],
    bootID: bootA,
    podCIDRs: ['10.244.1.0/24', 'fd10:1::/64'],
  }
  const b: NodeInfo = {
    name: 'b',
    spi: 1,
    addresses: ['192.168.0.2', '192.168.1.2', 'fd00::2'],
    bootID: bootB,
    podCIDRs: ['fd10:2::/64'],
  }
  const r = planNodeRules(a, b, history(key1), { rejectPlaintext: false })
  // Same-family pairs only: v4 2×1, v6 1×1, in each direction.
  t.same(
    r.states.map((s) => `${s.src}>${s.dst}`),
    [
      '192.168.0.2>192.168.0.1',
      '192.168.1.2>192.168.0.1',
      'fd00::2>fd00::1',
      '192.168.0.1>192.168.0.2',
      '192.168.0.1>192.168.1.2',
      'fd00::1>fd00::2',
    ],
  )
  t.same(
    r.policies.map(
      (p) => `${p.dir} ${p.selector.src} ${p.selector.dst} via ${p.templates[0]!.src}>${p.templates[0]!.dst}`,
    ),
    [
      'in 0.0.0.0/0 10.244.1.0/24 via fd00::2>fd00::1',
      'fwd 0.0.0.0/0 10.244.1.0/24 via fd00::2>fd00::1',
      'in ::/0 fd10:1::/64 via fd00::2>fd00::1',
      'fwd ::/0 fd10:1::/64 via fd00::2>fd00::1',
      'out ::/0 fd10:2::/64 via fd00::1>fd00::2',
    ],
    'one policy per (dir, selector, mark); the last address pair wins, as with Kmesh’s update in address order',
  )
  t.same(r.states.map(stateIdOf)[0], { src: '192.168.0.2', dst: '192.168.0.1', spi: 1, proto: 50 })
  t.same(policyIdOf(r.policies[0]!), {
    selector: { src: '0.0.0.0/0', dst: '10.244.1.0/24' },
    dir: 'in',
    mark: mark(0xd0),
  })
})

t.test('pod CIDRs enter selectors as networks', async (t) => {
  const r = planNodeRules(
    { ...nodeA, podCIDRs: ['10.244.1.77/24', 'fd10:1::5/64'] },
    { ...nodeB, podCIDRs: ['10.244.2.200/23'] },
    history(key1),
  )
  t.same(
    r.policies.map((p) => `${p.selector.src} ${p.selector.dst}`),
    [
      '0.0.0.0/0 10.244.1.0/24',
      '0.0.0.0/0 10.244.1.0/24',
      '::/0 fd10:1::/64',
      '::/0 fd10:1::/64',
      '10.244.2.0/23 10.244.1.0/24',
      '10.244.2.0/23 10.244.1.0/24',
      '0.0.0.0/0 10.244.2.0/23',
    ],
  )
})

t.test('unplannable inputs are PlanErrors naming the node', async (t) => {
  t.throws(() => planNodeRules({ ...nodeA, spi: 3 }, nodeB, history(key1)), {
    name: 'PlanError',
    message: 'node node-a: no key for the local SPI 3 in the key history',
  })
  t.throws(() => planNodeRules(nodeA, { ...nodeB, bootID: 'short' }, history(key1)), {
    name: 'PlanError',
    message: /node node-b: .*boot id is 5 bytes/,
  })
  t.throws(() => planNodeRules(nodeA, { ...nodeB, podCIDRs: ['10.0.0.0/33'] }, history(key1)), {
    name: 'PlanError',
    message: /node node-b: "10.0.0.0\/33" has an invalid prefix length/,
  })
  t.throws(() => planNodeRules(nodeA, { ...nodeB, addresses: ['node-b.local'] }, history(key1)), {
    name: 'PlanError',
    message: /not an IPv4 or IPv6 address/,
  })
  t.throws(() => planNodeRules(nodeA, { ...nodeB, spi: 0 }, history(key1)), {
    name: 'PlanError',
    message: /spi must be an integer/,
  })
})
