/**
 * The one rule, proven against Node: parse succeeds exactly when `net.isIP` is non-zero (zone ids aside, which
 * are refused), and the bytes equal an independent reference (WHATWG URL's IPv6 parser, dotted quads by hand).
 */
import t from 'tap'
import { isIP } from 'node:net'
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import {
  canonicalIp,
  cidrContains,
  compareIp,
  equalIp,
  formatCidr,
  formatIp,
  formatIpv6,
  ipFamily,
  ipHex,
  isIp,
  isV4Mapped,
  mapV4,
  maskIp,
  parseCidr,
  parseIp,
  parsePrefixLength,
  tryParseIp,
  unmapV4,
  whyNotIp,
  writeIp16,
  ZONE_REFUSED,
} from '../src/index.js'

/** Bytes of a text net.isIP accepted, computed without our parser. */
function reference(text: string, family: number): Uint8Array {
  if (family === 4) return Uint8Array.from(text.split('.').map(Number))
  const host = new URL(`http://[${text}]/`).hostname.slice(1, -1) // canonical hex, "::" at most once
  const [head = '', tail] = host.split('::')
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)))
  const h = groups(head)
  const tl = tail === undefined ? [] : groups(tail)
  const all = tail === undefined ? h : [...h, ...Array<number>(8 - h.length - tl.length).fill(0), ...tl]
  const out = new Uint8Array(16)
  all.forEach((g, i) => {
    out[2 * i] = g >> 8
    out[2 * i + 1] = g & 0xff
  })
  return out
}

function rng(seed: number): (n: number) => number {
  let s = seed >>> 0
  return (n) => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s % n
  }
}

const EDGES = [
  '',
  ' ',
  '.',
  ':',
  '::',
  ':::',
  '::1',
  '1::',
  '::ffff:1.2.3.4',
  '::FFFF:1.2.3.4',
  '::ffff:01.2.3.4',
  '::1.2.3.4',
  '1.2.3.4',
  '010.0.0.1',
  '10.0.0.01',
  '0.0.0.0',
  '00.0.0.0',
  '255.255.255.255',
  '256.0.0.0',
  '1.2.3',
  '1.2.3.4.5',
  '1.2.3.',
  '.1.2.3',
  '1..2.3',
  '1.2.3.4 ',
  ' 1.2.3.4',
  '1.2.3.4\n',
  '\t::1',
  '1::2::3',
  '1:2:3:4:5:6:7:8',
  '1:2:3:4:5:6:7:8:9',
  '1:2:3:4:5:6:7::',
  '::2:3:4:5:6:7:8',
  '1:2:3:4:5:6:7:8::',
  '::1:2:3:4:5:6:7:8',
  '1:2:3:4:5:6:1.2.3.4',
  '1:2:3:4:5:6:7:1.2.3.4',
  '1:2:3:4:5::1.2.3.4',
  '::1:2:3:4:5:1.2.3.4',
  '1.2.3.4::',
  '1.2.3.4:1::',
  '::1.2.3.4:1',
  'fe80::1%eth0',
  'fe80::1%',
  '1.2.3.4%eth0',
  '::%1',
  'FE80::ABCD',
  'fE80::aBcD',
  '12345::',
  '0000:0000:0000:0000:0000:0000:0000:0000',
  '00000::',
  'g::',
  '::g',
  '1:2',
  ':1::',
  '1::2:',
  '[::1]',
  '::ffff:1.2.3',
  '::ffff:1.2.3.256',
  '1:2:3:4:5:6:7:8%eth0',
  '::ffff:255.255.255.255',
  '0::0',
  '1e1.0.0.1',
  '0x1.0.0.1',
  '+1.0.0.1',
  '1.2.3.4/32',
  '::/0',
  '１.2.3.4',
  '١.2.3.4',
]

/** A random address written in one of its spellings (compressed or not, hex case, leading zeros, v4 tail). */
function spelling(r: (n: number) => number): string {
  const words = Array.from({ length: 8 }, () => (r(3) === 0 ? r(0x10000) : 0))
  if (r(4) === 0) return `${r(256)}.${r(256)}.${r(256)}.${r(256)}`
  const parts = words.map((w) => {
    let h = w.toString(16)
    if (r(5) === 0) h = h.padStart(1 + r(4), '0')
    return r(4) === 0 ? h.toUpperCase() : h
  })
  if (r(3) === 0) parts.splice(6, 2, `${r(256)}.${r(256)}.${r(256)}.${r(256)}`)
  if (r(2) === 0) {
    const start = r(parts.length)
    const end = start + 1 + r(parts.length - start)
    return `${parts.slice(0, start).join(':')}::${parts.slice(end).join(':')}`
  }
  return parts.join(':')
}

/** One random change: delete, insert or replace a character from an alphabet of address characters. */
function mutate(text: string, r: (n: number) => number): string {
  const alphabet = '0123456789abcdefABCDEFgx:.:.%/ \t[]'
  const c = alphabet[r(alphabet.length)]!
  const at = r(text.length + 1)
  switch (r(3)) {
    case 0:
      return text.slice(0, at) + text.slice(at + 1)
    case 1:
      return text.slice(0, at) + c + text.slice(at)
    default:
      return text.slice(0, at) + c + text.slice(at + 1)
  }
}

t.test('parse succeeds exactly when net.isIP does (zone ids refused), bytes equal the reference', async (t) => {
  const r = rng(0x5eed)
  const corpus: string[] = [...EDGES]
  for (let i = 0; i < 60000; i++) {
    let s = spelling(r)
    for (let m = r(3); m > 0; m--) s = mutate(s, r)
    corpus.push(s)
  }
  for (let i = 0; i < 20000; i++) {
    const len = r(16)
    let s = ''
    for (let j = 0; j < len; j++) s += '0123456789abcdef:.'[r(18)]
    corpus.push(s)
  }
  let accepted = 0
  let zones = 0
  const failures: string[] = []
  for (const text of corpus) {
    const node = isIP(text)
    const zone = node === 6 && text.includes('%')
    const expected = zone ? 0 : node
    if (zone) zones++
    const got = tryParseIp(text)
    if (isIp(text) !== expected) failures.push(`isIp(${JSON.stringify(text)}) = ${isIp(text)}, net.isIP = ${node}`)
    if ((got !== undefined) !== (expected !== 0)) {
      failures.push(`${JSON.stringify(text)}: parsed ${got !== undefined}, net.isIP ${node}`)
      continue
    }
    if (!got) continue
    accepted++
    const want = reference(text, expected)
    if (ipHex(got) !== ipHex(want)) failures.push(`${JSON.stringify(text)}: ${ipHex(got)} != ${ipHex(want)}`)
    const canonical = formatIp(got)
    const url = expected === 6 ? new URL(`http://[${text}]/`).hostname.slice(1, -1) : text
    const expectText = expected === 6 && isV4Mapped(got) ? `::ffff:${got.slice(12).join('.')}` : url
    if (canonical !== expectText) failures.push(`${JSON.stringify(text)} formats as ${canonical}, not ${expectText}`)
    if (ipHex(parseIp(canonical)) !== ipHex(got)) failures.push(`${canonical} does not round-trip`)
  }
  t.same(failures.slice(0, 20), [], `${corpus.length} texts, ${accepted} addresses, ${zones} with zone ids`)
  t.ok(accepted > 20000 && accepted < corpus.length - 20000, 'the corpus has plenty of both')
  t.ok(zones > 0, 'the corpus has zone ids net.isIP accepts')
})

t.test('edge cases, spelled out', async (t) => {
  t.equal(isIp('010.0.0.1'), 0, 'a leading zero is refused (net.isIP refuses it: octal or decimal is ambiguous)')
  t.equal(isIp('0.0.0.0'), 4)
  t.equal(isIp('fe80::1%eth0'), 0, 'a zone id is refused')
  t.equal(isIP('fe80::1%eth0'), 6, '... though net.isIP accepts it')
  t.equal(whyNotIp('fe80::1%eth0'), ZONE_REFUSED)
  t.equal(whyNotIp('1.2.3.4%eth0'), 'not an IP address')
  t.equal(whyNotIp('::1'), undefined)
  t.throws(() => parseIp('fe80::1%eth0'), {
    name: 'TypeError',
    message: `not an IP address: "fe80::1%eth0" (${ZONE_REFUSED})`,
  })
  t.throws(() => parseIp('010.0.0.1'), { name: 'TypeError', message: 'not an IP address: "010.0.0.1"' })
  t.same([...parseIp('::ffff:1.2.3.4')], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4])
  t.equal(canonicalIp('::FFFF:a00:1'), '::ffff:10.0.0.1', 'v4-mapped is printed with its dotted quad (RFC 5952 §5)')
  t.equal(canonicalIp('::1.2.3.4'), '::102:304', 'the deprecated v4-compatible form is printed as hex')
  t.equal(canonicalIp('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1', 'the first longest zero run')
  t.equal(canonicalIp('1:0:2:0:3:0:4:0'), '1:0:2:0:3:0:4:0', 'a single zero group stays')
  t.equal(canonicalIp('0:0:0:0:0:0:0:0'), '::')
  t.equal(canonicalIp('1:0:0:2:0:0:0:3'), '1:0:0:2::3')
  t.equal(formatIpv6(Uint8Array.of(9, 9, 0xfd, 0, ...new Array(14).fill(0), 7, 7), 2), 'fd00::', 'at an offset')
})

t.test('bytes: write into 16, family, v4-mapped folding, order', async (t) => {
  const out = new Uint8Array(20).fill(0xee)
  t.equal(writeIp16('10.0.0.1', out, 2), 4)
  t.equal(ipHex(out), 'eeee0a000001' + '00'.repeat(12) + 'eeee', 'v4 in bytes 0..3, zeros after')
  t.throws(() => writeIp16('1.2.3', out, 2), TypeError)
  t.equal(ipHex(out), 'eeee0a000001' + '00'.repeat(12) + 'eeee', 'a refused text leaves the bytes alone')
  t.throws(() => writeIp16('::1', out, 5), RangeError)
  t.equal(writeIp16('fd00::1', out, 0), 6)
  t.equal(ipFamily(new Uint8Array(4)), 4)
  t.throws(() => ipFamily(new Uint8Array(5)), /4 or 16 bytes, got 5/)
  const mapped = parseIp('::ffff:10.1.2.3')
  t.ok(isV4Mapped(mapped))
  t.notOk(isV4Mapped(parseIp('::1.2.3.4')))
  t.same([...unmapV4(mapped)], [10, 1, 2, 3])
  t.equal(unmapV4(parseIp('::1')).length, 16, 'anything else unchanged')
  t.equal(formatIp(mapV4(parseIp('10.1.2.3'))), '::ffff:10.1.2.3')
  t.ok(equalIp(parseIp('FD00:0::1'), parseIp('fd00::1')))
  t.notOk(equalIp(parseIp('10.0.0.1'), parseIp('::ffff:10.0.0.1')), 'a mapped address is not its IPv4 (fold first)')
  const sorted = ['fd00::1', '10.0.0.2', '::1', '10.0.0.1'].map(parseIp).sort(compareIp).map(formatIp)
  t.same(sorted, ['10.0.0.1', '10.0.0.2', '::1', 'fd00::1'])
})

t.test('CIDR: prefix bounds per family, host bits, containment', async (t) => {
  const c = parseCidr('10.244.1.77/24')
  const written = { address: '10.244.1.77', prefixLength: 24, family: 4 }
  t.same({ ...c, address: formatIp(c.address) }, written, 'kept as written')
  t.equal(formatCidr({ ...c, address: maskIp(c.address, c.prefixLength) }), '10.244.1.0/24')
  t.equal(formatCidr({ address: maskIp(parseIp('fd10:1:2:3:4::9'), 66), prefixLength: 66 }), 'fd10:1:2:3::/66')
  t.equal(formatCidr(parseCidr('192.168.0.9')), '192.168.0.9/32', 'a bare address is a host prefix')
  t.equal(formatCidr(parseCidr('::/0')), '::/0')
  t.equal(parseCidr('10.0.0.0/024').prefixLength, 24, 'leading zeros in a prefix length are decimal')
  const missing = { name: 'RangeError', message: /prefix length is missing/ }
  t.throws(() => parseCidr('10.0.0.0', { requirePrefix: true }), missing)
  const bounds = { name: 'RangeError', message: 'not a CIDR: "10.0.0.0/33": the prefix length is not 0..32' }
  t.throws(() => parseCidr('10.0.0.0/33'), bounds)
  t.throws(() => parseCidr('::/129'), /not 0\.\.128/)
  for (const bad of ['10.0.0.0/', '10.0.0.0/x', '10.0.0.0/+8', '10.0.0.0/ 8', '10.0.0.0/1e1', '::/0128']) {
    t.throws(() => parseCidr(bad), RangeError, bad)
  }
  t.throws(() => parseCidr('010.0.0.0/8'), { name: 'TypeError', message: /the address is not one/ })
  t.throws(() => parseCidr('fe80::%eth0/64'), { name: 'TypeError', message: /zone ids are not supported/ })
  t.equal(parsePrefixLength('128', 6), 128)
  t.equal(parsePrefixLength('128', 4), undefined)
  t.ok(cidrContains(parseCidr('10.244.0.0/15'), parseIp('10.245.3.3')))
  t.notOk(cidrContains(parseCidr('10.244.0.0/15'), parseIp('10.246.0.0')))
  t.notOk(cidrContains(parseCidr('0.0.0.0/0'), parseIp('::1')), 'another family is never inside')
  t.throws(() => maskIp(parseIp('10.0.0.1'), 33), RangeError)
})

t.test('the package is platform-neutral: no node: imports, no Buffer', async (t) => {
  const dir = fileURLToPath(new URL('../src/', import.meta.url))
  for (const f of readdirSync(dir)) {
    const code = readFileSync(dir + f, 'utf8')
    t.notMatch(code, /from 'node:|require\(|\bBuffer\b|\bprocess\./, f)
  }
})
