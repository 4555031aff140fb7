/**
 * `xfrm_address_t` (16 bytes: IPv4 in the first four, the rest zero) and the address texts of selectors and states.
 * Which texts are addresses, their bytes and their canonical text are @kmesh-ts/ip's one rule: exactly what
 * `net.isIP` accepts, zone ids refused (an XFRM address has no scope, so a zone would be dropped silently).
 */
import {
  formatIpv4,
  formatIpv6,
  isIp,
  maskIp,
  maxPrefixLength,
  parseIp,
  parsePrefixLength,
  whyNotIp,
  writeIp16,
  ZONE_REFUSED,
} from '@kmesh-ts/ip'
import { AF_INET, AF_INET6 } from '@kmesh-ts/kernel-abi'
import { XfrmCodecError } from '../errors.js'

// The Linux family numbers, as the BPF headers (and so clang) have them; re-exported for existing importers.
export { AF_INET, AF_INET6 }
export type AddressFamily = typeof AF_INET | typeof AF_INET6

function notAnAddress(ip: string): XfrmCodecError {
  const detail = whyNotIp(ip) === ZONE_REFUSED ? ` (${ZONE_REFUSED})` : ''
  return new XfrmCodecError(`"${ip}" is not an IPv4 or IPv6 address${detail}`)
}

/** The family of an IP address string, or throws. */
export function addressFamily(ip: string): AddressFamily {
  const family = isIp(ip)
  if (family === 4) return AF_INET
  if (family === 6) return AF_INET6
  throw notAnAddress(ip)
}

/** The 16-byte `xfrm_address_t` for an address: IPv4 in the first four bytes, the rest zero. */
export function encodeAddress(ip: string, out: Buffer = Buffer.alloc(16), offset = 0): Buffer {
  if (isIp(ip) === 0) throw notAnAddress(ip)
  writeIp16(ip, out, offset)
  return out
}

/** Formats an `xfrm_address_t` of a family: dotted quad, or RFC 5952 text for IPv6. */
export function decodeAddress(buf: Buffer, offset: number, family: number): string {
  if (family === AF_INET) return formatIpv4(buf, offset)
  if (family !== AF_INET6) {
    if (buf.subarray(offset, offset + 16).every((b) => b === 0)) return ''
    throw new XfrmCodecError(`address of unknown family ${family}`)
  }
  return formatIpv6(buf, offset)
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
  const max = maxPrefixLength(family === AF_INET ? 4 : 6)
  const prefixLength = slash < 0 ? max : parsePrefixLength(text.slice(slash + 1), family === AF_INET ? 4 : 6)
  if (prefixLength === undefined) throw new XfrmCodecError(`"${text}" has an invalid prefix length (0..${max})`)
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
  const network = maskIp(parseIp(c.address), c.prefixLength)
  return formatCidr(c.family === AF_INET ? formatIpv4(network) : formatIpv6(network), c.prefixLength)
}
