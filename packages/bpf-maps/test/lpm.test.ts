/**
 * The km_nodeinfo LPM record (src/codecs/lpm.ts): bytes, CIDR masking, errors, equality with `struct lpm_key` in the
 * BTF of tc_mark.o. Longest-prefix lookups in a real LPM trie: lpm.kernel.test.ts.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { lpmKey, lpmKeyOfCidr, nodeInfoMapSpec, MapType } from '../src/codecs/index.js'
import { encodeToBuffer } from '../src/native/index.js'

const le = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n)
  return b.toString('hex')
}

t.test('lpm_key bytes: native prefixlen, then the network address in network order', async (t) => {
  t.equal(lpmKey.size, 20)
  t.equal(
    encodeToBuffer(lpmKey, { prefixLen: 24, address: '10.244.2.9' }).toString('hex'),
    le(24) + '0af40200' + '00'.repeat(12),
    'host bits cleared, v4 in bytes 0..3',
  )
  t.equal(
    encodeToBuffer(lpmKey, { prefixLen: 64, address: 'fd00:2::7' }).toString('hex'),
    le(64) + 'fd000002' + '00'.repeat(12),
  )
  t.equal(
    encodeToBuffer(lpmKey, { prefixLen: 12, address: '10.255.1.1' }).toString('hex').slice(8, 16),
    '0af00000',
    'a prefix inside a byte keeps only its bits',
  )
  t.same(lpmKeyOfCidr('10.244.2.0/24'), { prefixLen: 24, address: '10.244.2.0' })
  t.same(lpmKeyOfCidr('10.244.2.77/24'), { prefixLen: 24, address: '10.244.2.0' })
  t.same(lpmKeyOfCidr('fd00:2::/64'), { prefixLen: 64, address: 'fd00:2::' })
  t.same(lpmKeyOfCidr('192.168.1.5'), { prefixLen: 32, address: '192.168.1.5' })
  t.same(lpmKey.decode(encodeToBuffer(lpmKey, { prefixLen: 128, address: 'fd00::1' })), {
    prefixLen: 128,
    address: 'fd00::1',
  })
  t.throws(() => lpmKeyOfCidr('10.0.0.0/33'), /not a CIDR/)
  t.throws(() => lpmKeyOfCidr('10.0.0.0/x'), /not a CIDR/)
  t.throws(
    () => encodeToBuffer(lpmKey, { prefixLen: 33, address: '10.0.0.0' }),
    /prefixLen must be an integer in 0\.\.32 for IPv4, got 33/,
  )
  t.equal(nodeInfoMapSpec.type, MapType.LpmTrie)
  t.equal(nodeInfoMapSpec.name, 'km_nodeinfo')
})

t.test('lpm_key equals struct lpm_key in the BTF of tc_mark.o', async (t) => {
  const obj = fileURLToPath(new URL('../../bpf-progs/obj/tc_mark.o', import.meta.url))
  const { types } = JSON.parse(
    execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', obj, 'format', 'raw'], { encoding: 'utf8' }),
  ) as { types: { kind: string; name: string; size?: number; members?: { name: string; bits_offset: number }[] }[] }
  const s = types.filter((ty) => ty.kind === 'STRUCT' && ty.name === 'lpm_key')
  t.equal(s.length, 1)
  t.equal(s[0]?.size, lpmKey.size)
  t.same(
    s[0]?.members?.map((m) => [m.name, m.bits_offset / 8]),
    [
      ['prefixlen', 0],
      ['ip', 4],
    ],
  )
})
