import { isIPv4, isIPv6 } from 'node:net'
import { XfrmCodecError } from '../errors.js'

export const AF_INET = 2
export const AF_INET6 = 10
export type AddressFamily = typeof AF_INET | typeof AF_INET6

/** The family of an IP address string, or throws. */
export function addressFamily(ip: string): AddressFamily {
  if (isIPv4(ip)) return AF_INET
  if (isIPv6(ip)) return AF_INET6
  throw new XfrmCodecError(`"${ip}" is not an IPv4 or IPv6 address`)
}

/** The 16-byte `xfrm_address_t` for an address: IPv4 in the first four bytes, the rest zero. */
export function encodeAddress(ip: string, out: Buffer = Buffer.alloc(16), offset = 0): Buffer {
  const family = addressFamily(ip)
  out.fill(0, offset, offset + 16)
  if (family === AF_INET) {
    ip.split('.').forEach((part, i) => out.writeUInt8(Number(part), offset + i))
    return out
  }
  let text = ip
  const zone = text.indexOf('%')
  if (zone >= 0) text = text.slice(0, zone)
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (v4) {
    const b = v4[1]!.split('.').map(Number)
    text = text.slice(0, v4.index) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined]
  const h = head ? head.split(':') : []
  const tl = tail === undefined ? [] : tail ? tail.split(':') : []
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl]
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), offset + 2 * i))
  return out
}

/** Formats an `xfrm_address_t` of a family: dotted quad, or RFC 5952 text for IPv6. */
export function decodeAddress(buf: Buffer, offset: number, family: number): string {
  if (family === AF_INET) return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`
  if (family !== AF_INET6) {
    if (buf.subarray(offset, offset + 16).every((b) => b === 0)) return ''
    throw new XfrmCodecError(`address of unknown family ${family}`)
  }
  const groups: number[] = []
  for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(offset + 2 * i))
  // The longest run of two or more zero groups becomes "::" (RFC 5952 §4.2).
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) { best = i; bestLen = j - i }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (best < 0) return hex.join(':')
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`
}

export interface Cidr {
  address: string
  prefixLength: number
  family: AddressFamily
}

/** Parses `a.b.c.d/n` or `x::y/n`; a bare address is a host prefix (/32 or /128). */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/')
  const address = slash < 0 ? text : text.slice(0, slash)
  const family = addressFamily(address)
  const max = family === AF_INET ? 32 : 128
  const prefixLength = slash < 0 ? max : Number(text.slice(slash + 1))
  if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > max || (slash >= 0 && !/^\d+$/.test(text.slice(slash + 1)))) {
    throw new XfrmCodecError(`"${text}" has an invalid prefix length (0..${max})`)
  }
  return { address, prefixLength, family }
}

/** `address/prefix` with the address in canonical form (as the codec decodes it). */
export function formatCidr(address: string, prefixLength: number): string {
  return `${address}/${prefixLength}`
}

/** The canonical text of an address (what decodeAddress returns for it). */
export function canonicalAddress(ip: string): string {
  return decodeAddress(encodeAddress(ip), 0, addressFamily(ip))
}

/** The canonical text of a CIDR, e.g. `fd00:0::/64` → `fd00::/64`. */
export function canonicalCidr(text: string): string {
  const c = parseCidr(text)
  return formatCidr(canonicalAddress(c.address), c.prefixLength)
}

/**
 * The network of a CIDR with the host bits cleared, canonical text: `10.244.1.5/24` → `10.244.1.0/24`
 * (what Go's net.ParseCIDR hands Kmesh, so a selector carries the network address).
 */
export function networkCidr(text: string): string {
  const c = parseCidr(text)
  const b = encodeAddress(c.address)
  const bits = c.family === AF_INET ? 32 : 128
  for (let i = c.prefixLength; i < bits; i++) b[i >> 3]! &= ~(0x80 >> (i & 7))
  return formatCidr(decodeAddress(b, 0, c.family), c.prefixLength)
}
