import { privilegedSkip, tempNetns } from '@kmesh-ts/testkit'
import t from 'tap'
import { KeyHistory } from '../src/key-history.js'
import { IpsecKey } from '../src/keyfile.js'
import { planNodeRules, policyIdOf, stateIdOf, type NodeInfo } from '../src/plan.js'
import { decodeXfrmMessage, request } from '../src/xfrm/codec.js'
import { decodeMessages } from '../src/xfrm/netlink.js'
import type { XfrmPolicy, XfrmPolicyId, XfrmState, XfrmStateId } from '../src/xfrm/types.js'
import { captureIp, missingStrace, withoutSeq } from './iproute2.js'

// Byte-for-byte comparison of our requests with iproute2's for the exact rules Kmesh installs, plus our
// plaintext-rejecting policies (mark 0/0xffffffff)
// (reference: issue 6 "Ingress"/"Egress"; iproute2 6.1). Everything runs in a namespace created here.

const hex = (n: number): string => `0x${n.toString(16)}`
const markArgs = (m?: { value: number; mask: number }): string[] =>
  m ? ['mark', hex(m.value), 'mask', hex(m.mask)] : []

function policyArgs(verb: 'add' | 'update', p: XfrmPolicy): string[] {
  const tm = p.templates[0]!
  return [
    'policy',
    verb,
    'src',
    p.selector.src,
    'dst',
    p.selector.dst,
    'dir',
    p.dir,
    'tmpl',
    'src',
    tm.src,
    'dst',
    tm.dst,
    'proto',
    'esp',
    ...(tm.spi ? ['spi', hex(tm.spi)] : []),
    'reqid',
    String(tm.reqid),
    'mode',
    tm.mode,
    ...markArgs(p.mark),
  ]
}
function policyIdArgs(verb: 'delete' | 'get', id: XfrmPolicyId): string[] {
  return ['policy', verb, 'src', id.selector.src, 'dst', id.selector.dst, 'dir', id.dir, ...markArgs(id.mark)]
}
function stateArgs(verb: 'add' | 'update', s: XfrmState): string[] {
  const a = s.aead!
  return [
    'state',
    verb,
    'src',
    s.src,
    'dst',
    s.dst,
    'proto',
    'esp',
    'spi',
    hex(s.spi),
    'reqid',
    String(s.reqid),
    'mode',
    s.mode,
    'aead',
    a.name,
    `0x${a.key.toString('hex')}`,
    String(a.icvLengthBits),
    ...(s.outputMark ? ['output-mark', hex(s.outputMark.value), 'mask', hex(s.outputMark.mask)] : []),
  ]
}
function stateIdArgs(verb: 'delete' | 'get', id: XfrmStateId): string[] {
  return ['state', verb, 'src', id.src, 'dst', id.dst, 'proto', 'esp', 'spi', hex(id.spi)]
}

const key = new IpsecKey(1, 'rfc4106(gcm(aes))', Buffer.from('5a'.repeat(36), 'hex'), 128)
const keys = new KeyHistory()
keys.add(key)
const boot = (c: string): string => `${c.repeat(8)}-${c.repeat(4)}-4${c.repeat(3)}-8${c.repeat(3)}-${c.repeat(12)}`
const nodes: [NodeInfo, NodeInfo][] = [
  [
    { name: 'a', spi: 1, addresses: ['192.168.77.1'], bootID: boot('a'), podCIDRs: ['10.251.1.0/24'] },
    { name: 'b', spi: 1, addresses: ['192.168.77.2'], bootID: boot('b'), podCIDRs: ['10.251.2.0/24', '10.251.3.0/24'] },
  ],
  [
    { name: 'a6', spi: 1, addresses: ['fd77::1'], bootID: boot('c'), podCIDRs: ['fd51:1::/64'] },
    { name: 'b6', spi: 1, addresses: ['fd77::2'], bootID: boot('d'), podCIDRs: ['fd51:2::/64'] },
  ],
]

t.test(
  'our XFRM requests equal iproute2’s, byte for byte',
  {
    skip: privilegedSkip(
      'NETLINK_XFRM (xfrm_user) in a network namespace (CAP_NET_ADMIN), iproute2 and strace',
      missingStrace,
    ),
  },
  async (t) => {
    const ns = tempNetns()
    t.teardown(() => ns.close())
    let compared = 0
    const compare = (what: string, ours: Buffer, args: string[]): void => {
      const theirs = captureIp(ns.name, args)
      const [o] = decodeMessages(ours)
      const [i] = decodeMessages(theirs.request)
      t.same({ type: i!.type, flags: i!.flags }, { type: o!.type, flags: o!.flags }, `${what}: header`)
      t.same(decodeXfrmMessage(i!), decodeXfrmMessage(o!), `${what}: decoded field by field`)
      t.same(
        withoutSeq(ours).toString('hex'),
        withoutSeq(theirs.request).toString('hex'),
        `${what}: bytes (ip ${args.join(' ')})`,
      )
      compared++
    }
    for (const [local, remote] of nodes) {
      const plan = planNodeRules(local, remote, keys)
      // Kmesh's IN/FWD per local CIDR and OUT per remote CIDR, then our plaintext-rejecting IN/FWD per CIDR pair.
      t.equal(
        plan.policies.length,
        2 * local.podCIDRs.length + remote.podCIDRs.length + 2 * local.podCIDRs.length * remote.podCIDRs.length,
      )
      for (const p of plan.policies) {
        const name = `${p.dir} policy ${p.selector.src} → ${p.selector.dst} mark ${hex(p.mark?.value ?? 0)}`
        compare(`add ${name}`, request.addPolicy(p, 1), policyArgs('add', p))
        compare(`update ${name}`, request.updatePolicy(p, 1), policyArgs('update', p))
        const id = policyIdOf(p)
        if (id.mark && id.mark.value === 0) {
          // iproute2 6.1 sends XFRMA_MARK on get/delete only when `mark & mask` is non-zero, so it cannot address our
          // mark-0/0xffffffff policies (the kernel matches value and mask exactly: `ip xfrm policy delete … mark 0 mask
          // 0xffffffff` answers ENOENT). We send the attribute; apart from it the request is iproute2's, byte for byte.
          const { mark, ...unmarked } = id
          for (const verb of ['get', 'delete'] as const) {
            const ours = verb === 'get' ? request.getPolicy(id, 1) : request.deletePolicy(id, 1)
            const bare = verb === 'get' ? request.getPolicy(unmarked, 1) : request.deletePolicy(unmarked, 1)
            compare(`${verb} ${name} (without XFRMA_MARK)`, bare, policyIdArgs(verb, id))
            t.same(
              decodeXfrmMessage(decodeMessages(ours)[0]!),
              { ...decodeXfrmMessage(decodeMessages(bare)[0]!), id: { ...unmarked, mark } },
              `${verb} ${name}: ours adds only XFRMA_MARK 0/0xffffffff`,
            )
          }
          continue
        }
        compare(`get ${name}`, request.getPolicy(id, 1), policyIdArgs('get', id))
        compare(`delete ${name}`, request.deletePolicy(id, 1), policyIdArgs('delete', id))
      }
      for (const s of plan.states) {
        // The host kernel has no rfc4106(gcm(aes)) and rejects these, but the request bytes are what counts here.
        const name = `state ${s.src} → ${s.dst} spi ${s.spi}${s.outputMark ? ' output-mark 0xd0' : ''}`
        compare(`add ${name}`, request.addState(s, 1), stateArgs('add', s))
        compare(`update ${name}`, request.updateState(s, 1), stateArgs('update', s))
        compare(`get ${name}`, request.getState(stateIdOf(s), 1), stateIdArgs('get', stateIdOf(s)))
        compare(`delete ${name}`, request.deleteState(stateIdOf(s), 1), stateIdArgs('delete', stateIdOf(s)))
      }
    }
    t.equal(
      compared,
      4 * (8 + 2 + (5 + 2)),
      'every planned policy and state (v4 pair: 8 + 2, v6 pair: 5 + 2), in four verbs',
    )
  },
)
