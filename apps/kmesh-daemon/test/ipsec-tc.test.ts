/** The IPsec controller's tc batch lines (one `tc -batch` per call). Attach and detach on real devices: ipsec-tc.kernel.test.ts. */
import t from 'tap'
import { attachBatch, detachBatch, TcError } from '../src/ipsec/index.js'

t.test('batch lines', async (t) => {
  t.same(attachBatch([{ dev: 'vpa', pin: '/sys/fs/bpf/x/enc' }]), [
    'qdisc replace dev vpa clsact',
    'filter replace dev vpa ingress prio 49152 handle 224 bpf object-pinned /sys/fs/bpf/x/enc da',
  ])
  t.same(
    detachBatch([
      { dev: 'vpa', pin: '' },
      { dev: 'nA', pin: '' },
    ]),
    ['filter del dev vpa ingress prio 49152 handle 224 bpf', 'filter del dev nA ingress prio 49152 handle 224 bpf'],
  )
  t.throws(() => attachBatch([{ dev: 'a b', pin: '/p' }]), TcError)
  t.throws(() => attachBatch([{ dev: 'a', pin: '/p q' }]), {
    name: 'TcError',
    message: /cannot pass "\/p q" in a tc batch line/,
  })
})
