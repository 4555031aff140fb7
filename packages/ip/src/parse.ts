/**
 * Address text to bytes. One rule for every kmesh-ts package: a text is an address exactly when Node's
 * `net.isIP` says so (dotted-quad IPv4 without leading zeros, IPv6 in every RFC 4291 form including an
 * embedded IPv4 tail), except that a zone id (`fe80::1%eth0`) is refused: BPF records and XFRM addresses
 * carry 16 bytes and no scope, so a zone would be dropped silently.
 */

export type IpFamily = 4 | 6

/** Why `fe80::1%eth0` is refused. */
export const ZONE_REFUSED = 'zone ids are not supported: a zone names a link on one host, a mesh address must not'

// One scratch for every parse: a failed parse never touches the caller's bytes, and a good one costs no garbage.
const scratch = new Uint8Array(16)

/** Dotted quad in s[start, end) into out[at..at+3]; no leading zeros, each part 0..255. */
function scanV4(s: string, start: number, end: number, out: Uint8Array, at: number): boolean {
  let part = 0
  let value = 0
  let digits = 0
  for (let i = start; i <= end; i++) {
    const c = i < end ? s.charCodeAt(i) : 46
    if (c === 46) {
      if (digits === 0 || part === 4) return false
      out[at + part++] = value
      value = 0
      digits = 0
    } else if (c >= 48 && c <= 57) {
      if (digits === 1 && value === 0) return false
      value = value * 10 + (c - 48)
      if (++digits > 3 || value > 255) return false
    } else return false
  }
  return part === 4
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 97 && c <= 102) return c - 87
  if (c >= 65 && c <= 70) return c - 55
  return -1
}

/** IPv6 text (no zone) into scratch[0..15]. */
function scanV6(s: string): boolean {
  const n = s.length
  let count = 0 // 16-bit groups written
  let gap = -1 // group index where "::" stands
  let i = 0
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false
    gap = 0
    i = 2
  }
  while (i < n) {
    const start = i
    let value = 0
    for (let h = hexDigit(s.charCodeAt(i)); h >= 0; h = hexDigit(s.charCodeAt(i))) {
      value = value * 16 + h
      if (++i - start > 4) return false
    }
    if (s.charCodeAt(i) === 46) {
      // An IPv4 tail ("::ffff:1.2.3.4") is the last two groups and must end the text.
      if (count > 6 || !scanV4(s, start, n, scratch, count * 2)) return false
      count += 2
      break
    }
    if (i === start || count === 8) return false
    scratch[count * 2] = value >> 8
    scratch[count * 2 + 1] = value & 0xff
    count++
    if (i === n) break
    if (s.charCodeAt(i) !== 58) return false
    i++
    if (s.charCodeAt(i) === 58) {
      if (gap >= 0) return false
      gap = count
      i++
    } else if (i === n) return false
  }
  if (gap < 0) return count === 8
  if (count === 8) return false // "::" stands for at least one zero group
  const tail = (count - gap) * 2
  scratch.copyWithin(16 - tail, gap * 2, count * 2)
  scratch.fill(0, gap * 2, 16 - tail)
  return true
}

/** Parses into the scratch: 4 (bytes 0..3), 6 (bytes 0..15) or 0. A zone id gives 0. */
function scan(text: string): 0 | IpFamily {
  if (text.length === 0) return 0
  if (text.indexOf(':') < 0) return scanV4(text, 0, text.length, scratch, 0) ? 4 : 0
  return text.indexOf('%') < 0 && scanV6(text) ? 6 : 0
}

/**
 * 4 or 6 when `text` is an IPv4 or IPv6 address, 0 otherwise: `net.isIP` of Node, except that a text with a
 * zone id is 0.
 */
export function isIp(text: string): 0 | IpFamily {
  return scan(text)
}

/**
 * Why `text` is not an address (`undefined` when it is): {@link ZONE_REFUSED} for an IPv6 address with a zone
 * id, "not an IP address" for anything else.
 */
export function whyNotIp(text: string): string | undefined {
  if (scan(text) !== 0) return undefined
  const zone = text.indexOf('%')
  if (zone > 0 && text.indexOf(':') >= 0 && scanV6(text.slice(0, zone))) return ZONE_REFUSED
  return 'not an IP address'
}

function refuse(text: string): TypeError {
  const why = whyNotIp(text)
  const detail = why === ZONE_REFUSED ? ` (${why})` : ''
  return new TypeError(`not an IP address: ${JSON.stringify(text)}${detail}`)
}

/** The address as its network-order bytes: 4 for IPv4, 16 for IPv6. Throws TypeError naming the text. */
export function parseIp(text: string): Uint8Array {
  const family = scan(text)
  if (family === 0) throw refuse(text)
  return scratch.slice(0, family === 4 ? 4 : 16)
}

/** {@link parseIp} without the throw: `undefined` for a text that is not an address. */
export function tryParseIp(text: string): Uint8Array | undefined {
  const family = scan(text)
  return family === 0 ? undefined : scratch.slice(0, family === 4 ? 4 : 16)
}

/**
 * Writes the address into the 16 bytes at `out[offset]` the way the kernel's records hold one (`union ip_addr`,
 * `xfrm_address_t`): IPv6 in all 16, IPv4 in the first 4 and zeros after. Returns the family; throws TypeError
 * (and leaves `out` untouched) for a text that is not an address. Allocates nothing.
 */
export function writeIp16(text: string, out: Uint8Array, offset = 0): IpFamily {
  const family = scan(text)
  if (family === 0) throw refuse(text)
  if (offset < 0 || offset + 16 > out.length) throw new RangeError(`16 bytes at ${offset} do not fit in ${out.length}`)
  if (family === 4) {
    for (let i = 0; i < 4; i++) out[offset + i] = scratch[i]!
    out.fill(0, offset + 4, offset + 16)
  } else for (let i = 0; i < 16; i++) out[offset + i] = scratch[i]!
  return family
}

/** 4 for 4 bytes, 6 for 16; RangeError for any other length. */
export function ipFamily(bytes: Uint8Array): IpFamily {
  if (bytes.length === 4) return 4
  if (bytes.length === 16) return 6
  throw new RangeError(`an IP address has 4 or 16 bytes, got ${bytes.length}`)
}
