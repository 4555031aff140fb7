/** Prefixes: `10.244.1.0/24`, `fd00:1::/64`, with the prefix length checked against the family. */
import { formatIp } from './format.js'
import { ipFamily, parseIp, whyNotIp, ZONE_REFUSED, type IpFamily } from './parse.js'

export interface Cidr {
  /** 4 or 16 bytes, as written (host bits kept; see maskIp). */
  address: Uint8Array
  prefixLength: number
  family: IpFamily
}

/** Bits in an address of the family: 32 or 128. */
export const maxPrefixLength = (family: IpFamily): number => (family === 4 ? 32 : 128)

/**
 * A prefix length text: 1 to 3 ASCII decimal digits with a value 0..32 (IPv4) or 0..128 (IPv6); `undefined`
 * for anything else (signs, spaces, hex, "1e1", an empty text).
 */
export function parsePrefixLength(text: string, family: IpFamily): number | undefined {
  if (text.length === 0 || text.length > 3) return undefined
  let n = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 48 || c > 57) return undefined
    n = n * 10 + (c - 48)
  }
  return n <= maxPrefixLength(family) ? n : undefined
}

export interface ParseCidrOptions {
  /** A bare address is a host prefix (/32 or /128) unless this is true. Default false. */
  requirePrefix?: boolean
}

/**
 * `address/prefix`, split at the last `/`. Throws TypeError when the address is not one (parseIp's rule),
 * RangeError when the prefix length is missing (requirePrefix) or out of bounds; the message names the text.
 */
export function parseCidr(text: string, options: ParseCidrOptions = {}): Cidr {
  const slash = text.lastIndexOf('/')
  const addressText = slash < 0 ? text : text.slice(0, slash)
  const why = whyNotIp(addressText)
  if (why !== undefined) {
    const reason = why === ZONE_REFUSED ? why : 'the address is not one'
    throw new TypeError(`not a CIDR: ${JSON.stringify(text)}: ${reason}`)
  }
  const address = parseIp(addressText)
  const family = ipFamily(address)
  const max = maxPrefixLength(family)
  if (slash < 0) {
    if (options.requirePrefix) {
      throw new RangeError(`not a CIDR: ${JSON.stringify(text)}: the prefix length is missing`)
    }
    return { address, prefixLength: max, family }
  }
  const prefixLength = parsePrefixLength(text.slice(slash + 1), family)
  if (prefixLength === undefined) {
    throw new RangeError(`not a CIDR: ${JSON.stringify(text)}: the prefix length is not 0..${max}`)
  }
  return { address, prefixLength, family }
}

/** A copy of the address with every bit after the first `prefixLength` cleared (the network address). */
export function maskIp(address: Uint8Array, prefixLength: number): Uint8Array {
  const max = maxPrefixLength(ipFamily(address))
  if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > max) {
    throw new RangeError(`a prefix length is an integer in 0..${max}, got ${prefixLength}`)
  }
  const out = address.slice()
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, prefixLength - i * 8))
    out[i] = out[i]! & (0xff << (8 - keep))
  }
  return out
}

/** `text/prefix` in canonical text. */
export function formatCidr(cidr: { address: Uint8Array; prefixLength: number }): string {
  return `${formatIp(cidr.address)}/${cidr.prefixLength}`
}

/** True when `address` lies in the prefix (same family, equal first `prefixLength` bits). */
export function cidrContains(cidr: Cidr, address: Uint8Array): boolean {
  if (address.length !== cidr.address.length) return false
  for (let bit = 0; bit < cidr.prefixLength; bit += 8) {
    const keep = Math.min(8, cidr.prefixLength - bit)
    const mask = (0xff << (8 - keep)) & 0xff
    if (((address[bit >> 3]! ^ cidr.address[bit >> 3]!) & mask) !== 0) return false
  }
  return true
}
