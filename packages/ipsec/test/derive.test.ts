import { createHash } from 'node:crypto'
import t from 'tap'
import { derivePairKey } from '../src/derive.js'
import { DerivationError } from '../src/errors.js'

const key36 = Buffer.from(Array.from({ length: 36 }, (_, i) => i))
const bootA = '0f9a3c2e-5b7d-4e1f-8a6c-3d2b1e0f9a8c'
const bootB = '7e6d5c4b-3a29-4817-b6a5-9483726150fe'

// The spec, written out again from its text: SHA-512 over key ‖ src ‖ dst ‖ srcBoot[:36] ‖ dstBoot[:36], cut to the key length.
function fromSpec(key: Buffer, src: string, dst: string, srcBoot: string, dstBoot: string): Buffer {
  const input = Buffer.concat([
    key,
    Buffer.from(src),
    Buffer.from(dst),
    Buffer.from(srcBoot).subarray(0, 36),
    Buffer.from(dstBoot).subarray(0, 36),
  ])
  return createHash('sha512').update(input).digest().subarray(0, key.length)
}

t.test('fixed vectors, checked by hand with openssl dgst -sha512 and python hashlib', async (t) => {
  // printf '<key bytes 00..23>192.168.0.2192.168.0.1<bootA><bootB>' | openssl dgst -sha512, first 36 bytes.
  t.equal(
    derivePairKey({
      key: key36,
      srcIp: '192.168.0.2',
      dstIp: '192.168.0.1',
      srcBootId: bootA,
      dstBootId: bootB,
    }).toString('hex'),
    '6cb93d95d65af130ff7515c0cdcb5fbea9b100484c9a9c29f24c89695c0417255aacdce8',
  )
  // IPv6 strings; boot ids longer than 36 bytes (a suffix, a trailing newline as /proc gives it) use only 36 bytes.
  t.equal(
    derivePairKey({
      key: key36,
      srcIp: 'fd00:10::2',
      dstIp: 'fd00:10::1',
      srcBootId: `${bootA}-THIS-PART-IS-IGNORED`,
      dstBootId: `${bootB}\n`,
    }).toString('hex'),
    '9e04c5cf4d1f2170dc9d90f5c1e74d5c312ff227da1f9321c1fa779892780d1d96ae8a8f',
  )
})

t.test('agrees with an independent computation from the spec text', async (t) => {
  const cases: [Buffer, string, string, string, string][] = [
    [key36, '10.0.0.1', '10.0.0.2', bootA, bootB],
    [Buffer.alloc(20, 0xab), '172.18.0.3', '172.18.0.4', bootB + 'xyz', bootA + '0123456789'],
    [Buffer.from('secretsecretsecretsecretsecretsecret'), '2001:db8::1', '2001:db8:0:0::2', bootA, bootB],
    [Buffer.alloc(64, 7), '::ffff:10.1.2.3', '10.1.2.4', bootA, bootB],
  ]
  for (const [key, src, dst, sb, db] of cases) {
    const got = derivePairKey({ key, srcIp: src, dstIp: dst, srcBootId: sb, dstBootId: db })
    t.same(got, fromSpec(key, src, dst, sb, db), `${src} → ${dst}`)
    t.equal(got.length, key.length, 'truncated to the raw key length')
  }
})

t.test('address strings enter verbatim: equivalent spellings give different keys', async (t) => {
  const a = derivePairKey({
    key: key36,
    srcIp: '2001:db8::1',
    dstIp: '2001:db8::2',
    srcBootId: bootA,
    dstBootId: bootB,
  })
  const b = derivePairKey({
    key: key36,
    srcIp: '2001:db8:0::1',
    dstIp: '2001:db8::2',
    srcBootId: bootA,
    dstBootId: bootB,
  })
  t.not(a.toString('hex'), b.toString('hex'))
})

t.test('direction matters and both ends agree on one direction', async (t) => {
  const ab = derivePairKey({ key: key36, srcIp: '10.0.0.1', dstIp: '10.0.0.2', srcBootId: bootA, dstBootId: bootB })
  const ba = derivePairKey({ key: key36, srcIp: '10.0.0.2', dstIp: '10.0.0.1', srcBootId: bootB, dstBootId: bootA })
  t.not(ab.toString('hex'), ba.toString('hex'))
})

t.test('short boot ids, empty or oversized keys are errors', async (t) => {
  t.throws(
    () =>
      derivePairKey({
        key: key36,
        srcIp: '10.0.0.1',
        dstIp: '10.0.0.2',
        srcBootId: bootA.slice(0, 35),
        dstBootId: bootB,
      }),
    {
      name: 'DerivationError',
      message: /source boot id is 35 bytes; at least 36/,
    },
  )
  t.throws(
    () => derivePairKey({ key: key36, srcIp: '10.0.0.1', dstIp: '10.0.0.2', srcBootId: bootA, dstBootId: '' }),
    /destination boot id is 0 bytes/,
  )
  t.throws(
    () => derivePairKey({ key: Buffer.alloc(0), srcIp: 'a', dstIp: 'b', srcBootId: bootA, dstBootId: bootB }),
    DerivationError,
  )
  t.throws(
    () => derivePairKey({ key: Buffer.alloc(65), srcIp: 'a', dstIp: 'b', srcBootId: bootA, dstBootId: bootB }),
    /SHA-512 yields only 64/,
  )
})
