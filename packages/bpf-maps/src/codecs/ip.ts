import { isIPv4, isIPv6 } from 'node:net'

/** Bytes of `union ip_addr` (reference/kmesh-dataplane.md §2.2). */
export const IP_ADDR_SIZE = 16

/** An address as text ("10.0.0.1", "fd00::1") or as its 4 or 16 raw network-order bytes. */
export type IpInput = string | Uint8Array

/** Raw network-order bytes (4 or 16) of an IP given as text or bytes. */
export function ipBytes(ip: IpInput): Uint8Array {
  if (typeof ip !== 'string') {
    if (ip.length !== 4 && ip.length !== 16) throw new RangeError(`an IP address has 4 or 16 bytes, got ${ip.length}`)
    return ip
  }
  const v4 = parseIpv4(ip)
  if (v4) return v4
  if (isIPv4(ip)) return Uint8Array.from(ip.split('.').map(Number))
  if (isIPv6(ip)) return ipv6Bytes(ip)
  throw new TypeError(`not an IP address: ${JSON.stringify(ip)}`)
}

/** Dotted-quad fast path (no leading zeros, each part 0..255); undefined for anything else. */
function parseIpv4(text: string): Uint8Array | undefined {
  const out = new Uint8Array(4)
  let part = 0
  let value = 0
  let digits = 0
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46
    if (c === 46) {
      if (digits === 0 || part > 3) return undefined
      out[part++] = value
      value = 0
      digits = 0
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return undefined
      value = value * 10 + (c - 48)
      if (value > 255 || ++digits > 3) return undefined
    } else return undefined
  }
  return part === 4 ? out : undefined
}

function ipv6Bytes(text: string): Uint8Array {
  let s = text
  const out = new Uint8Array(16)
  // A trailing dotted quad ("::ffff:1.2.3.4") becomes two hex groups.
  const lastColon = s.lastIndexOf(':')
  const tail = s.slice(lastColon + 1)
  if (tail.includes('.')) {
    const b = ipBytes(tail)
    s = `${s.slice(0, lastColon + 1)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`
  }
  const [head, rest] = s.split('::') as [string, string | undefined]
  const headGroups = head ? head.split(':') : []
  const restGroups = rest ? rest.split(':') : []
  const groups = rest === undefined ? headGroups : [...headGroups, ...Array(8 - headGroups.length - restGroups.length).fill('0'), ...restGroups]
  groups.forEach((g, i) => {
    const v = parseInt(g, 16)
    out[i * 2] = v >> 8
    out[i * 2 + 1] = v & 0xff
  })
  return out
}

/** Writes an address into a 16-byte ip_addr: v4 in bytes 0..3 and zeros after, v6 in all 16. */
export function encodeIpAddr(ip: IpInput, buf: Uint8Array, offset: number): void {
  const bytes = ipBytes(ip)
  buf.fill(0, offset, offset + IP_ADDR_SIZE)
  buf.set(bytes, offset)
}

/**
 * Reads a 16-byte ip_addr as text. The record has no family, so bytes 4..15 all zero read as IPv4
 * (an IPv6 address of that shape, x:y::, is not used by any mesh).
 */
export function decodeIpAddr(buf: Uint8Array, offset: number): string {
  const bytes = buf.subarray(offset, offset + IP_ADDR_SIZE)
  if (bytes.subarray(4).every((b) => b === 0)) return Array.from(bytes.subarray(0, 4)).join('.')
  return formatIpv6(bytes)
}

/** Canonical RFC 5952 text for 16 bytes (longest zero run compressed). */
export function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!)
  let bestStart = -1
  let bestLen = 0
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen && j - i > 1) { bestStart = i; bestLen = j - i }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (bestStart < 0) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`
}

/** True when the address is zero (no waypoint, no address). */
export function isZeroIpAddr(buf: Uint8Array, offset: number): boolean {
  return buf.subarray(offset, offset + IP_ADDR_SIZE).every((b) => b === 0)
}
