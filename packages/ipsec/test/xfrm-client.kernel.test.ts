import { privilegedSkip, tempNetns } from '@kmesh-ts/testkit'
import t from 'tap'
import { XfrmError } from '../src/errors.js'
import { KeyHistory } from '../src/key-history.js'
import { IpsecKey } from '../src/keyfile.js'
import { planNodeRules, policyIdOf, stateIdOf, type NodeInfo } from '../src/plan.js'
import { XfrmClient } from '../src/xfrm/client.js'
import type { XfrmPolicy } from '../src/xfrm/types.js'
import { ipInNetns } from './iproute2.js'

const XFRM_NETNS =
  'NETLINK_XFRM (xfrm_user) in a network namespace (CAP_NET_ADMIN); ESP with rfc4106(gcm(aes)) for the states'

// Real installs on the host kernel, always inside a namespace created here (policies work on this kernel;
// states need rfc4106(gcm(aes)), which it lacks — the test accepts either outcome and checks each fully).

const keys = new KeyHistory()
keys.add(new IpsecKey(1, 'rfc4106(gcm(aes))', Buffer.alloc(36, 0x5a), 128))
const boot = (c: string): string => `${c.repeat(8)}-${c.repeat(4)}-4${c.repeat(3)}-8${c.repeat(3)}-${c.repeat(12)}`
const local: NodeInfo = {
  name: 'a',
  spi: 1,
  addresses: ['192.168.77.1', 'fd77::1'],
  bootID: boot('a'),
  podCIDRs: ['10.251.1.0/24', 'fd51:1::/64'],
}
const remote: NodeInfo = {
  name: 'b',
  spi: 1,
  addresses: ['192.168.77.2', 'fd77::2'],
  bootID: boot('b'),
  podCIDRs: ['10.251.2.0/24', 'fd51:2::/64'],
}
const plan = planNodeRules(local, remote, keys)

function caught(fn: () => unknown): XfrmError {
  try {
    fn()
  } catch (err) {
    if (err instanceof XfrmError) return err
    throw err
  }
  throw new Error('expected an XfrmError')
}

/** The configuration part of a dumped policy, for comparison with what was planned. */
const configOf = (p: XfrmPolicy) => ({
  selector: p.selector,
  dir: p.dir,
  mark: p.mark,
  templates: p.templates.map((tm) => ({ src: tm.src, dst: tm.dst, spi: tm.spi ?? 0, reqid: tm.reqid, mode: tm.mode })),
})
const key = (p: XfrmPolicy): string => `${p.dir} ${p.selector.dst} ${p.mark?.value}`

t.test(
  'install, dump, get, update and delete Kmesh policies inside a namespace',
  { skip: privilegedSkip(XFRM_NETNS) },
  async (t) => {
    const ns = tempNetns()
    t.teardown(() => ns.close())
    const client = XfrmClient.open({ netns: `/run/netns/${ns.name}` })
    t.teardown(() => client.close())

    t.same(client.dumpPolicies(), [], 'a fresh namespace has no policies')
    for (const p of plan.policies) client.addPolicy(p)

    const dumped = client.dumpPolicies()
    t.equal(dumped.length, plan.policies.length, `${plan.policies.length} policies dumped`)
    t.same(
      dumped.map(configOf).sort((a, b) => key(a as XfrmPolicy).localeCompare(key(b as XfrmPolicy))),
      plan.policies.map(configOf).sort((a, b) => key(a as XfrmPolicy).localeCompare(key(b as XfrmPolicy))),
    )
    // iproute2 sees the same rules in the same namespace.
    const text = ipInNetns(ns.name, ['xfrm', 'policy', 'list'])
    t.equal(text.match(/^src /gm)?.length, plan.policies.length)
    // The last address pair (IPv6) carries every policy, as Kmesh's updates in address order leave it (plan.ts).
    t.match(
      text,
      /src 0\.0\.0\.0\/0 dst 10\.251\.2\.0\/24 \n\tdir out priority 0 ptype main \n\tmark 0xe0\/0xffffffff \n\ttmpl src fd77::1 dst fd77::2\n\t\tproto esp spi 0x00000001 reqid 1 mode tunnel/,
    )
    t.match(
      text,
      /src ::\/0 dst fd51:1::\/64 \n\tdir fwd priority 0 ptype main \n\tmark 0xd0\/0xffffffff \n\ttmpl src fd77::2 dst fd77::1/,
    )

    // Our plaintext-rejecting policies (beyond Kmesh, plan.ts): from the remote pod CIDR to ours, unmarked only.
    for (const dir of ['in', 'fwd']) {
      t.match(
        text,
        new RegExp(
          `src 10\\.251\\.2\\.0/24 dst 10\\.251\\.1\\.0/24 \\n\\tdir ${dir} priority 0 ptype main \\n\\tmark 0/0xffffffff \\n\\ttmpl src fd77::2 dst fd77::1\\n\\t\\tproto esp reqid 1 mode tunnel`,
        ),
        `${dir}: unmarked from the remote pods needs ESP`,
      )
      t.match(
        text,
        new RegExp(`src fd51:2::/64 dst fd51:1::/64 \\n\\tdir ${dir} priority 0 ptype main \\n\\tmark 0/0xffffffff `),
        `${dir}: the IPv6 pair too`,
      )
    }
    const reject = plan.policies.filter((p) => p.mark?.value === 0)
    t.equal(reject.length, 4, 'IN and FWD for the v4 and the v6 CIDR pair')
    for (const p of reject)
      t.same(
        configOf(client.getPolicy(policyIdOf(p))!),
        configOf(p),
        `get ${p.dir} ${p.selector.src} mark 0/0xffffffff`,
      )
    t.equal(
      client.getPolicy({ ...policyIdOf(reject[0]!), mark: undefined }),
      undefined,
      'mark 0/0 is another policy: the kernel matches value and mask',
    )

    const out = plan.policies.find((p) => p.dir === 'out' && p.selector.dst === '10.251.2.0/24')!
    t.same(configOf(client.getPolicy(policyIdOf(out))!), configOf(out), 'get returns the policy')
    t.equal(
      client.getPolicy({ ...policyIdOf(out), mark: { value: 0xe1, mask: 0xffffffff } }),
      undefined,
      'another mark is another policy',
    )

    const dup = caught(() => client.addPolicy(out))
    t.equal(dup.code, 'EEXIST')
    t.equal(dup.errno, 17)
    t.match(dup.message, /^xfrm add policy: EEXIST/)

    const moved = { ...out, templates: [{ ...out.templates[0]!, spi: 2 }] }
    client.updatePolicy(moved)
    t.equal(client.getPolicy(policyIdOf(out))!.templates[0]!.spi, 2, 'update replaced the template in place')
    t.equal(client.dumpPolicies().length, plan.policies.length)

    for (const p of plan.policies) client.deletePolicy(policyIdOf(p))
    t.same(client.dumpPolicies(), [], 'all deleted')
    t.equal(caught(() => client.deletePolicy(policyIdOf(out))).code, 'ENOENT')
    t.equal(ipInNetns(ns.name, ['xfrm', 'policy', 'list']), '')
  },
)

t.test(
  'states: installed where the kernel has the AEAD, a typed ENOSYS where it has not',
  { skip: privilegedSkip(XFRM_NETNS) },
  async (t) => {
    const ns = tempNetns()
    t.teardown(() => ns.close())
    using client = XfrmClient.open({ netns: `/run/netns/${ns.name}` })
    const inbound = plan.states[0]!
    let refused: XfrmError | undefined
    try {
      client.addState(inbound)
    } catch (err) {
      if (!(err instanceof XfrmError)) throw err
      refused = err
    }
    if (refused) {
      t.equal(refused.code, 'ENOSYS', 'this kernel has no rfc4106(gcm(aes))')
      t.equal(refused.errno, 38)
      t.equal(refused.kernelMessage, 'Requested AEAD algorithm not found')
      t.equal(refused.message, 'xfrm add state: ENOSYS (Requested AEAD algorithm not found)')
      t.same(client.dumpStates(), [])
    } else {
      // A kernel with ESP and GCM (the VM harness): the state is there with every field we set.
      const got = client.getState(stateIdOf(inbound))!
      t.same(
        {
          src: got.src,
          dst: got.dst,
          spi: got.spi,
          mode: got.mode,
          reqid: got.reqid,
          aead: got.aead,
          outputMark: got.outputMark,
        },
        {
          src: inbound.src,
          dst: inbound.dst,
          spi: inbound.spi,
          mode: inbound.mode,
          reqid: inbound.reqid,
          aead: inbound.aead,
          outputMark: inbound.outputMark,
        },
      )
      t.equal(client.dumpStates().length, 1)
      t.equal(caught(() => client.addState(inbound)).code, 'EEXIST')
      client.updateState(inbound)
      client.deleteState(stateIdOf(inbound))
    }
    t.equal(client.getState(stateIdOf(inbound)), undefined, 'get of a missing state is undefined')
    t.equal(caught(() => client.deleteState(stateIdOf(inbound))).code, 'ESRCH')
  },
)

t.test(
  'the client works only in its namespace; the host is untouched',
  { skip: privilegedSkip(XFRM_NETNS) },
  async (t) => {
    const ns = tempNetns()
    t.teardown(() => ns.close())
    const inNs = XfrmClient.open({ netns: `/run/netns/${ns.name}` })
    t.teardown(() => inNs.close())
    const host = XfrmClient.open() // read-only use: dumps
    t.teardown(() => host.close())
    const marker: XfrmPolicy = {
      selector: { src: '0.0.0.0/0', dst: '10.251.99.0/24' },
      dir: 'out',
      mark: { value: 0xe0, mask: 0xffffffff },
      templates: [{ src: '192.168.77.1', dst: '192.168.77.2', reqid: 1, mode: 'tunnel' }],
    }
    const hostBefore = host.dumpPolicies().length
    inNs.addPolicy(marker)
    t.equal(inNs.dumpPolicies().length, 1)
    t.equal(host.dumpPolicies().length, hostBefore, 'nothing appeared in the host namespace')
    t.notOk(host.dumpPolicies().some((p) => p.selector.dst === '10.251.99.0/24'))
    t.match(ipInNetns(ns.name, ['xfrm', 'policy']), /10\.251\.99\.0\/24/)
  },
)

t.test('open and use errors are typed', { skip: privilegedSkip(XFRM_NETNS) }, async (t) => {
  const e = caught(() => XfrmClient.open({ netns: '/run/netns/kmesh-test-no-such-namespace' }))
  t.equal(e.code, 'ENOENT')
  t.match(e.message, /open netns \/run\/netns\/kmesh-test-no-such-namespace: ENOENT/)
  t.throws(() => XfrmClient.open({ timeoutMs: 0 }), { name: 'RangeError', message: /timeoutMs/ })
  const ns = tempNetns()
  t.teardown(() => ns.close())
  const c = XfrmClient.open({ netns: `/run/netns/${ns.name}` })
  c.close()
  c.close()
  t.equal(caught(() => c.dumpPolicies()).code, 'EBADF')
})
