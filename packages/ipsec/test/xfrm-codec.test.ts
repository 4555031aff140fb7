import { execFileSync } from 'node:child_process'
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { errnoName } from '../src/errno.js'
import { canonicalAddress, canonicalCidr, decodeAddress, encodeAddress, networkCidr } from '../src/xfrm/address.js'
import { decodePolicyPayload, decodeXfrmMessage, request } from '../src/xfrm/codec.js'
import { SIZEOF, XFRM_MSG } from '../src/xfrm/constants.js'
import { decodeAttributes, decodeError, decodeMessages } from '../src/xfrm/netlink.js'
import type { XfrmPolicy, XfrmState } from '../src/xfrm/types.js'

const fixture = (name: string): Buffer =>
  Buffer.from(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8').trim(), 'hex')
const one = (b: Buffer) => {
  const ms = decodeMessages(b)
  if (ms.length !== 1) throw new Error(`expected one message, got ${ms.length}`)
  return ms[0]!
}

t.test('addresses: xfrm_address_t bytes and canonical text', async (t) => {
  t.same([...encodeAddress('192.168.0.1')], [192, 168, 0, 1, ...Array(12).fill(0)])
  t.equal(encodeAddress('fd00::1').toString('hex'), 'fd000000000000000000000000000001')
  t.equal(encodeAddress('::ffff:10.1.2.3').toString('hex'), '00000000000000000000ffff0a010203')
  t.equal(encodeAddress('1:2:3:4:5:6:7:8').toString('hex'), '00010002000300040005000600070008')
  t.equal(encodeAddress('::').toString('hex'), '0'.repeat(32))
  for (const [input, canonical] of [
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['fd00:0:0::', 'fd00::'],
    ['::', '::'],
    ['1:0:2:0:3:0:4:0', '1:0:2:0:3:0:4:0'],
    ['FD00::ABCD', 'fd00::abcd'],
    ['10.0.0.1', '10.0.0.1'],
  ])
    t.equal(canonicalAddress(input!), canonical, input)
  t.equal(canonicalCidr('fd00:0::/64'), 'fd00::/64')
  t.equal(networkCidr('10.244.1.77/24'), '10.244.1.0/24')
  t.equal(networkCidr('10.244.3.1/23'), '10.244.2.0/23')
  t.equal(networkCidr('10.1.2.3/0'), '0.0.0.0/0')
  t.equal(networkCidr('fd10:1:2:3:4::9/66'), 'fd10:1:2:3::/66')
  t.equal(networkCidr('192.168.0.9'), '192.168.0.9/32')
  t.equal(decodeAddress(Buffer.alloc(16), 0, 0), '', 'unset address of no family')
  t.throws(() => encodeAddress('10.0.0'), { name: 'XfrmCodecError' })
  // @kmesh-ts/ip's one rule: a zone id used to be dropped silently here; it is refused, as is a leading zero.
  t.throws(() => encodeAddress('fe80::1%eth0'), { name: 'XfrmCodecError', message: /zone ids are not supported/ })
  t.throws(() => encodeAddress('010.0.0.1'), { name: 'XfrmCodecError', message: '"010.0.0.1" is not an IPv4 or IPv6' })
  t.equal(canonicalAddress('::FFFF:a01:203'), '::ffff:10.1.2.3', 'v4-mapped as inet_ntop and ip(8) print it')
})

const aeadState: XfrmState = {
  src: '192.168.0.2',
  dst: '192.168.0.1',
  proto: 50,
  spi: 0x1234abcd,
  mode: 'tunnel',
  reqid: 1,
  aead: {
    name: 'rfc4106(gcm(aes))',
    key: Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223', 'hex'),
    icvLengthBits: 128,
  },
  outputMark: { value: 0xd0, mask: 0xffffffff },
}

t.test('states round-trip through the codec', async (t) => {
  const variants: XfrmState[] = [
    aeadState,
    {
      ...aeadState,
      src: 'fd00::2',
      dst: 'fd00::1',
      outputMark: undefined,
      mark: { value: 7, mask: 0xff },
      replayWindow: 32,
      flags: 1,
      ifId: 9,
    },
    { ...aeadState, selector: { src: '10.244.2.0/24', dst: '10.244.1.0/24', proto: 6, dport: 443, dportMask: 0xffff } },
  ]
  for (const s of variants) {
    for (const [build, op] of [
      [request.addState, 'new'],
      [request.updateState, 'update'],
    ] as const) {
      const d = decodeXfrmMessage(one(build(s, 42)))
      if (d.kind !== 'state') throw new Error('not a state')
      t.equal(d.op, op)
      const { current, stats, otherAlgorithms, ...config } = d.state
      const expected: Record<string, unknown> = { replayWindow: 0, flags: 0, ...s }
      for (const k of Object.keys(expected)) if (expected[k] === undefined) delete expected[k]
      t.same(config, expected, `${op} ${s.src} → ${s.dst}`)
      t.equal(current.bytes, 0n)
      t.same(otherAlgorithms, [])
      t.equal(stats.replay, 0)
    }
  }
  const id = decodeXfrmMessage(
    one(request.deleteState({ src: 'fd00::2', dst: 'fd00::1', spi: 5, mark: { value: 1, mask: 2 } }, 1)),
  )
  t.same(id, {
    kind: 'state-id',
    op: 'delete',
    id: { src: 'fd00::2', dst: 'fd00::1', spi: 5, proto: 50, mark: { value: 1, mask: 2 } },
  })
  t.same(decodeXfrmMessage(one(request.getState({ src: '1.1.1.1', dst: '2.2.2.2', spi: 3 }, 1))).kind, 'state-id')
})

t.test('the state layout: fields land at the UAPI offsets', async (t) => {
  const m = one(request.addState(aeadState, 0x01020304))
  t.equal(m.type, XFRM_MSG.NEWSA)
  t.equal(m.flags, 0x05, 'NLM_F_REQUEST | NLM_F_ACK')
  t.equal(m.seq, 0x01020304)
  const p = m.payload
  t.equal(p.readUInt32BE(72), 0x1234abcd, 'id.spi in network order at 72')
  t.equal(p[76], 50, 'id.proto')
  t.equal(p.readBigUInt64LE(96), 0xffffffffffffffffn, 'soft byte limit infinite')
  t.equal(p.readBigUInt64LE(128), 0n, 'expiry times zero')
  t.equal(p.readUInt16LE(212), 2, 'family AF_INET')
  t.equal(p[214], 1, 'tunnel mode')
  const attrs = decodeAttributes(p.subarray(SIZEOF.usersaInfo))
  t.same(
    attrs.map((a) => a.type),
    [18, 29, 30],
    'ALG_AEAD, SET_MARK, SET_MARK_MASK',
  )
  t.equal(attrs[0]!.value.readUInt32LE(64), 288, 'key length in bits')
  t.equal(attrs[0]!.value.readUInt32LE(68), 128, 'ICV length in bits')
})

const policy: XfrmPolicy = {
  selector: { src: '0.0.0.0/0', dst: '10.244.2.0/24' },
  dir: 'out',
  mark: { value: 0xe0, mask: 0xffffffff },
  templates: [{ src: '192.168.0.1', dst: '192.168.0.2', proto: 50, spi: 2, reqid: 1, mode: 'tunnel' }],
}

t.test('policies round-trip through the codec', async (t) => {
  const variants: XfrmPolicy[] = [
    policy,
    {
      selector: { src: '::/0', dst: 'fd10:2::/64' },
      dir: 'fwd',
      priority: 10,
      action: 'block',
      templates: [
        { src: 'fd00::1', dst: 'fd00::2', reqid: 1, mode: 'tunnel' },
        {
          src: '192.168.0.1',
          dst: '192.168.0.2',
          reqid: 2,
          mode: 'transport',
          optional: true,
          share: 1,
          aalgos: 1,
          ealgos: 2,
          calgos: 3,
        },
      ],
      ifId: 4,
    },
  ]
  for (const p of variants) {
    const d = decodeXfrmMessage(one(request.addPolicy(p, 1)))
    if (d.kind !== 'policy') throw new Error('not a policy')
    t.equal(d.policy.dir, p.dir)
    t.same(d.policy.selector, p.selector)
    t.same(d.policy.mark, p.mark)
    t.equal(d.policy.priority, p.priority ?? 0)
    t.equal(d.policy.action, p.action ?? 'allow')
    t.equal(d.policy.ifId, p.ifId)
    t.same(
      d.policy.templates,
      p.templates.map((tm) => ({
        proto: 50,
        spi: 0,
        share: 0,
        optional: false,
        aalgos: 0xffffffff,
        ealgos: 0xffffffff,
        calgos: 0xffffffff,
        ...tm,
      })),
    )
    t.equal(decodeXfrmMessage(one(request.updatePolicy(p, 1))).kind, 'policy')
  }
  t.same(
    decodeXfrmMessage(one(request.deletePolicy({ selector: policy.selector, dir: 'out', mark: policy.mark }, 1))),
    {
      kind: 'policy-id',
      op: 'delete',
      id: { selector: policy.selector, dir: 'out', mark: policy.mark },
    },
  )
  const dump = one(request.dumpPolicies(9))
  t.same([dump.type, dump.flags, dump.payload.length], [XFRM_MSG.GETPOLICY, 0x301, 0])
})

t.test('a policy the kernel returned (captured from `ip xfrm policy get`) decodes', async (t) => {
  const m = one(fixture('policy-get-answer.hex'))
  t.equal(m.type, XFRM_MSG.NEWPOLICY)
  const p = decodePolicyPayload(m.payload)
  t.same(p.selector, policy.selector)
  t.equal(p.dir, 'out')
  t.same(p.mark, policy.mark)
  t.same(p.templates, [
    {
      src: '192.168.0.1',
      dst: '192.168.0.2',
      proto: 50,
      spi: 2,
      reqid: 1,
      mode: 'tunnel',
      share: 0,
      optional: false,
      aalgos: 0xffffffff,
      ealgos: 0xffffffff,
      calgos: 0xffffffff,
    },
  ])
  t.ok(p.index > 0, 'the kernel assigned an index')
  t.ok(p.current.addTime > 0n, 'and an add time')
})

t.test('a kernel error with an extended ack (captured ENOSYS for a missing AEAD) decodes', async (t) => {
  const m = one(fixture('state-add-enosys-answer.hex'))
  const e = decodeError(m)
  t.equal(e.errno, 38)
  t.equal(e.code, 'ENOSYS')
  t.equal(e.kernelMessage, 'Requested AEAD algorithm not found')
  t.equal(e.request.type, XFRM_MSG.NEWSA)
})

t.test('errno names', async (t) => {
  t.equal(errnoName(17), 'EEXIST')
  t.equal(errnoName(-3), 'ESRCH')
  t.equal(errnoName(11), 'EAGAIN')
  t.equal(errnoName(95), 'EOPNOTSUPP')
  t.equal(errnoName(4000), 'E4000')
})

t.test('bad input is an XfrmCodecError, never a crash', async (t) => {
  t.throws(() => request.addState({ ...aeadState, src: 'fd00::1' }, 1), {
    name: 'XfrmCodecError',
    message: /mixes address families/,
  })
  t.throws(() => request.addState({ ...aeadState, spi: 2 ** 32 }, 1), {
    name: 'XfrmCodecError',
    message: /spi must be a u32/,
  })
  t.throws(
    () => request.addState({ ...aeadState, aead: { ...aeadState.aead!, name: 'x'.repeat(64) } }, 1),
    /longer than 63 bytes/,
  )
  t.throws(
    () => request.addPolicy({ ...policy, selector: { src: '::/0', dst: '10.0.0.0/8' } }, 1),
    /selector mixes families/,
  )
  t.throws(
    () => request.addPolicy({ ...policy, selector: { src: '0.0.0.0/0', dst: '10.0.0.0/40' } }, 1),
    /invalid prefix length/,
  )
  t.throws(() => request.addPolicy({ ...policy, dir: 'sideways' as 'in' }, 1), /unknown policy direction/)
  t.throws(() => request.addState({ ...aeadState, mode: 'bogus' as 'tunnel' }, 1), /unknown mode/)
  const truncated = request.addPolicy(policy, 1).subarray(0, 100)
  t.throws(() => decodeMessages(truncated), { name: 'XfrmCodecError', message: /beyond the 100-byte datagram/ })
  const badAttr = Buffer.from([0x20, 0, 5, 0, 1, 2])
  t.throws(() => decodeAttributes(badAttr), { name: 'XfrmCodecError' })
  t.throws(() => decodePolicyPayload(Buffer.alloc(10)), /shorter than xfrm_userpolicy_info/)
})

t.test(
  'struct sizes and offsets agree with the C compiler',
  { skip: hasCc() ? false : 'SKIPPED (needs a C compiler, cc, and <linux/xfrm.h> from linux-libc-dev): no cc on PATH' },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'kmesh-test-xfrm-layout-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    writeFileSync(
      join(dir, 'l.c'),
      `#include <stdio.h>
#include <stddef.h>
#include <linux/xfrm.h>
int main(void) {
  printf("%zu %zu %zu %zu %zu %zu %zu %zu\\n", sizeof(struct xfrm_selector), sizeof(struct xfrm_usersa_info), sizeof(struct xfrm_usersa_id),
    sizeof(struct xfrm_userpolicy_info), sizeof(struct xfrm_userpolicy_id), sizeof(struct xfrm_user_tmpl), sizeof(struct xfrm_algo_aead), sizeof(struct xfrm_mark));
  printf("%zu %zu %zu %zu %zu %zu %zu %zu\\n", offsetof(struct xfrm_usersa_info, id), offsetof(struct xfrm_usersa_info, saddr), offsetof(struct xfrm_usersa_info, lft),
    offsetof(struct xfrm_usersa_info, curlft), offsetof(struct xfrm_usersa_info, reqid), offsetof(struct xfrm_usersa_info, family), offsetof(struct xfrm_userpolicy_info, dir), offsetof(struct xfrm_user_tmpl, aalgos));
  return 0;
}
`,
    )
    execFileSync('cc', ['-o', join(dir, 'l'), join(dir, 'l.c')])
    const [sizes, offsets] = execFileSync(join(dir, 'l'), { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => l.split(' ').map(Number))
    t.same(sizes, [
      SIZEOF.selector,
      SIZEOF.usersaInfo,
      SIZEOF.usersaId,
      SIZEOF.userpolicyInfo,
      SIZEOF.userpolicyId,
      SIZEOF.userTmpl,
      SIZEOF.algoAead,
      SIZEOF.mark,
    ])
    t.same(offsets, [56, 80, 96, 160, 208, 212, 160, 52], 'the offsets codec.ts writes at')
  },
)

function hasCc(): boolean {
  try {
    execFileSync('cc', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
