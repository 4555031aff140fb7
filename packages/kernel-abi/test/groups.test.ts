// The TypeScript groupings are built from the generated C values, never written again.
import t from 'tap'
import * as abi from '../src/index.js'

t.test('groupings carry the generated values', async (t) => {
  t.same(Object.values(abi.LB_POLICY), [
    abi.LB_POLICY_RANDOM,
    abi.LB_POLICY_STRICT,
    abi.LB_POLICY_FAILOVER,
    abi.LB_POLICY_PASSTHROUGH,
  ])
  t.same(abi.IPSEC_MARKS, { encrypt: abi.IPSEC_MARK_ENCRYPT, decrypt: abi.IPSEC_MARK_DECRYPT })
  t.equal(abi.MANAGE_CONTROL.enrolPort, abi.MANAGE_ENROL_PORT)
  t.equal(abi.MANAGE_CONTROL.unenrolPort, abi.MANAGE_UNENROL_PORT)
  t.same(abi.ERRNO, { ECONNREFUSED: abi.ECONNREFUSED, EINVAL: abi.EINVAL, EAFNOSUPPORT: abi.EAFNOSUPPORT })
})

t.test('mapNames names every declared map once', async (t) => {
  t.same(Object.values(abi.mapNames).sort(), Object.keys(abi.BPF_MAPS).sort())
})

t.test('the manage control texts are the host-order u32 of C', async (t) => {
  const n = abi.MANAGE_CONTROL_IP4
  const bytes = abi.MANAGE_CONTROL.ipv4.split('.').map(Number)
  t.equal(((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0, n)
  t.equal(abi.MANAGE_CONTROL.ipv6, `::${n.toString(16)}`, 'a value below 0x10000 is the last group of ::/112')
})

t.test('no Node built-in in the sources (the package must run in a browser)', async (t) => {
  const { readdirSync, readFileSync } = await import('node:fs')
  const dir = new URL('../src/', import.meta.url)
  for (const f of readdirSync(dir))
    t.notMatch(readFileSync(new URL(f, dir), 'utf8'), /from 'node:|\bBuffer\b|\bprocess\./, f)
})
