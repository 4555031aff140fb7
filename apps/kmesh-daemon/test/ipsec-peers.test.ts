/**
 * Three nodes and more (issue 16): per-peer marks in the desired rules. Every remote's IN state has the same kernel
 * identity but for its mark; the 0xd0 IN/FWD policies take any source; km_ipsec_peer maps each remote address to its
 * mark; the wire side (keys, SPIs, OUT states) is exactly what a peer planning Kmesh's layout expects.
 */
import t from 'tap'
import { IpsecKey, KeyHistory, peerMark, planNodeRules, type NodeInfo } from '@kmesh-ts/ipsec/pure'
import { desiredRules, planSteps, stateKey, type RuleSet } from '../src/ipsec/index.js'
import { PeerIds } from '../src/ipsec/peer-ids.js'

const key = (spi: number, byte: number) => new IpsecKey(spi, 'rfc4106(gcm(aes))', Buffer.alloc(36, byte), 128)
const node = (i: number, spi = 1, boot = String.fromCharCode(96 + i)): NodeInfo => ({
  name: `node-${i}`,
  spi,
  addresses: [`192.168.0.${i}`],
  bootID: boot.repeat(36).slice(0, 36),
  podCIDRs: [`10.244.${i}.0/24`],
})
const keys = new KeyHistory()
keys.add(key(1, 1))

t.test('peer ids: stable while present, freed on leave, lowest free first', async (t) => {
  const ids = new PeerIds()
  t.same(
    [...ids.assign(['b', 'c', 'd']).ids],
    [
      ['b', 1],
      ['c', 2],
      ['d', 3],
    ],
  )
  t.same(
    [...ids.assign(['d', 'b', 'c']).ids].sort(),
    [
      ['b', 1],
      ['c', 2],
      ['d', 3],
    ],
    'order does not move ids',
  )
  t.same(
    [...ids.assign(['b', 'd', 'e']).ids].sort(),
    [
      ['b', 1],
      ['d', 3],
      ['e', 2],
    ],
    'c left: e takes its id',
  )
  const small = new PeerIds(2)
  t.same(small.assign(['x', 'y', 'z']).unassigned, ['z'], 'beyond the id space: reported, no id')
  t.same(peerMark(1), { value: 0x100c0, mask: 0xffff00ff })
  t.same(peerMark(65535), { value: 0xffff00c0, mask: 0xffff00ff })
  t.throws(() => peerMark(0), RangeError)
  t.throws(() => peerMark(65536), RangeError)
})

t.test('node 1 with four remotes: one IN state per remote, told apart by the mark', async (t) => {
  const local = node(1)
  const remotes = [2, 3, 4, 5].map((i) => node(i))
  const { ids } = new PeerIds().assign(remotes.map((r) => r.name))
  const d = desiredRules(local, remotes, keys, { peerIds: ids })
  t.same(d.errors, new Map())
  const inbound = [...d.states.values()].filter((s) => s.dst === '192.168.0.1')
  t.equal(inbound.length, 4, 'four IN states')
  t.same(
    inbound.map((s) => [s.src, s.spi, s.mark]),
    remotes.map((r) => [r.addresses[0], 1, peerMark(ids.get(r.name)!)]),
    'same dst and SPI, each with its peer mark',
  )
  t.equal(new Set(inbound.map((s) => stateKey(s))).size, 4, 'four distinct kernel identities')
  t.equal(new Set(inbound.map((s) => s.aead!.key.toString('hex'))).size, 4, 'four different pair keys')
  const decrypted = [...d.policies.values()].filter((p) => p.mark?.value === 0xd0)
  t.equal(decrypted.length, 2, 'one IN and one FWD 0xd0 policy for the local pod CIDR, shared by all peers')
  for (const p of decrypted)
    t.same(p.templates, [{ src: '0.0.0.0', dst: '192.168.0.1', proto: 50, reqid: 1, mode: 'tunnel' }], 'any source')
  const rejects = [...d.policies.values()].filter((p) => p.mark?.value === 0)
  t.equal(rejects.length, 8, 'IN+FWD per remote pod CIDR for unmarked plaintext')
  for (const p of rejects) t.equal(p.templates[0]!.src, `192.168.0.${p.selector.src.split('.')[2]}`, 'its own peer')
  t.same(
    [...d.peers!].sort(),
    remotes.map((r) => [r.addresses[0], peerMark(ids.get(r.name)!).value]),
    'km_ipsec_peer: address -> mark',
  )
  const out = [...d.states.values()].filter((s) => s.dst !== '192.168.0.1')
  t.equal(out.length, 4, 'four OUT states')
  t.ok(
    out.every((s) => s.mark === undefined),
    'OUT states carry no mark (they differ by destination already)',
  )
})

t.test('the wire is Kmesh’s: the peer’s OUT state equals our IN state but for the local mark', async (t) => {
  const a = node(1)
  const b = node(2)
  const ours = planNodeRules(a, b, keys, { peerId: 7 })
  const kmeshB = planNodeRules(b, a, keys) // b planning as Kmesh does
  const inA = ours.states.find((s) => s.dst === '192.168.0.1')!
  const outB = kmeshB.states.find((s) => s.dst === '192.168.0.1')!
  const { mark, ...rest } = inA
  t.same(mark, peerMark(7))
  t.same(rest, outB, 'same src, dst, SPI, mode, reqid, algorithm and pair key')
  const kmeshA = planNodeRules(a, b, keys)
  t.same(
    ours.states.find((s) => s.dst === '192.168.0.2'),
    kmeshA.states.find((s) => s.dst === '192.168.0.2'),
    'our OUT state is the one Kmesh makes',
  )
})

t.test('steps: peers follow their states; a node leaving takes its state, mark and policies', async (t) => {
  const local = node(1)
  const ids = new PeerIds()
  const all = [2, 3, 4].map((i) => node(i))
  const installed: RuleSet = { states: new Map(), policies: new Map(), cidrs: new Set(), peers: new Map() }
  const apply = (want: RuleSet): string[] => {
    const steps = planSteps(installed, want)
    for (const s of steps) {
      if (s.op === 'add-state') installed.states.set(s.key, s.state)
      else if (s.op === 'delete-state') installed.states.delete(s.key)
      else if (s.op === 'update-policy') installed.policies.set(s.key, s.policy)
      else if (s.op === 'delete-policy') installed.policies.delete(s.key)
      else if (s.op === 'add-cidr') installed.cidrs.add(s.cidr)
      else if (s.op === 'delete-cidr') installed.cidrs.delete(s.cidr)
      else if (s.op === 'put-peer') installed.peers!.set(s.address, s.mark)
      else installed.peers!.delete(s.address)
    }
    return steps.map((s) => s.op)
  }
  const first = apply(desiredRules(local, all, keys, { peerIds: ids.assign(all.map((r) => r.name)).ids }))
  t.ok(first.lastIndexOf('add-state') < first.indexOf('put-peer'), 'marks are set after the states they select')
  t.equal(installed.peers!.size, 3)
  const left = all.filter((r) => r.name !== 'node-3')
  const leave = apply(desiredRules(local, left, keys, { peerIds: ids.assign(left.map((r) => r.name)).ids }))
  t.same(
    leave.sort(),
    ['delete-cidr', 'delete-peer', 'delete-policy', 'delete-policy', 'delete-policy', 'delete-state', 'delete-state'],
    'node 3 left: its 2 states, its mark, its OUT and 2 plaintext policies, its CIDR',
  )
  t.notOk(installed.peers!.has('192.168.0.3'))
  t.equal(installed.states.size, 4, 'the others keep theirs')
  const rebooted = left.map((r) => (r.name === 'node-2' ? { ...r, bootID: 'z'.repeat(36) } : r))
  const reboot = apply(desiredRules(local, rebooted, keys, { peerIds: ids.assign(rebooted.map((r) => r.name)).ids }))
  t.same(reboot.sort(), ['add-state', 'add-state', 'delete-state', 'delete-state'], 'a reboot re-derives node 2 only')
  t.same(apply(desiredRules(local, rebooted, keys, { peerIds: ids.assign(rebooted.map((r) => r.name)).ids })), [])
})
