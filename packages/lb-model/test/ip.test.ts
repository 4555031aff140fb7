import t from 'tap'
import { isIPv6 } from 'node:net'
import { bytesKey, bytesToText, ipToBytes, isV4Mapped } from '../src/ip.js'

t.test('addresses become the 16 bytes of the kernel layout and back', async (t) => {
  const cases: [string, string, string][] = [
    ['10.1.2.3', '0a010203000000000000000000000000', '10.1.2.3'],
    ['::', '00000000000000000000000000000000', '::'],
    ['::1', '00000000000000000000000000000001', '::1'],
    ['fd00::5', 'fd000000000000000000000000000005', 'fd00::5'],
    ['::ffff:10.1.0.2', '00000000000000000000ffff0a010002', '::ffff:10.1.0.2'],
    ['::1.2.3.4', '00000000000000000000000001020304', '::102:304'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008', '1:2:3:4:5:6:7:8'],
    ['1:2:3:4:5:6:1.2.3.4', '00010002000300040005000601020304', '1:2:3:4:5:6:102:304'],
    ['a01:1::', '0a010001000000000000000000000000', 'a01:1::'],
    ['1:0:0:2::3', '00010000000000020000000000000003', '1:0:0:2::3'],
  ]
  for (const [text, hex, back] of cases) {
    const b = ipToBytes(text)
    t.equal(bytesKey(b), hex, text)
    t.equal(bytesToText(b, text.includes(':') ? 'ipv6' : 'ipv4'), back, `${text} as text`)
  }
  t.ok(isV4Mapped(ipToBytes('::ffff:1.2.3.4')))
  t.notOk(isV4Mapped(ipToBytes('::1.2.3.4')))
  t.equal(
    bytesKey(ipToBytes('a01:1::')),
    bytesKey(ipToBytes('10.1.0.1')),
    'an IPv6 address with bytes 4..15 zero has the bytes of an IPv4 key',
  )
})

t.test('anything else is refused with the text named', async (t) => {
  for (const bad of [
    '1.2.3',
    '1:2:3:4:5:6:7:8:9',
    '1::2::3',
    '::g',
    '256.1.1.1',
    '1:2:3:4:5:6:7::8',
    '',
    '1.2.3.4.5',
    '::ffff:1.2.3',
  ]) {
    t.throws(() => ipToBytes(bad), { name: 'TypeError', message: JSON.stringify(bad) }, bad)
  }
})

t.test("@kmesh-ts/ip's one rule: no leading zeros, no zone ids, no brackets", async (t) => {
  // This model used to read 010.0.0.1 as 10.0.0.1 and strip [brackets]; net.isIP refuses both.
  t.throws(() => ipToBytes('010.0.0.1'), { name: 'TypeError', message: '"010.0.0.1"' })
  t.throws(() => ipToBytes('[fd00::1]'), { name: 'TypeError', message: '"[fd00::1]"' })
  t.throws(() => ipToBytes('fe80::1%eth0'), { name: 'TypeError', message: /zone ids are not supported/ })
})

t.test('agrees with node:net on random IPv6 texts', async (t) => {
  let seed = 7
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0
    return seed % n
  }
  for (let i = 0; i < 500; i++) {
    const b = new Uint8Array(16).map(() => (rnd(3) === 0 ? rnd(256) : 0))
    const text = bytesToText(b, 'ipv6')
    if (!isIPv6(text) || bytesKey(ipToBytes(text)) !== bytesKey(b)) t.fail(`round trip ${text}`)
  }
  t.pass('500 random addresses round-trip')
})
