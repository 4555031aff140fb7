/**
 * `union ip_addr` (docs/reference/kmesh-dataplane.md §2.2): 16 bytes, IPv4 in bytes 0..3 and zeros after, IPv6 in all
 * 16. Which texts are addresses, and their bytes and canonical text, are @kmesh-ts/ip's one rule (exactly what
 * `net.isIP` accepts; zone ids refused).
 */
import { formatIpv4, formatIpv6, ipFamily, parseIp, writeIp16 } from '@kmesh-ts/ip'

export { formatIpv6 }

/** Bytes of `union ip_addr` (docs/reference/kmesh-dataplane.md §2.2). */
export const IP_ADDR_SIZE = 16

/** An address as text ("10.0.0.1", "fd00::1") or as its 4 or 16 raw network-order bytes. */
export type IpInput = string | Uint8Array

/** Raw network-order bytes (4 or 16) of an IP given as text or bytes. TypeError for a text that is not an IP. */
export function ipBytes(ip: IpInput): Uint8Array {
  if (typeof ip === 'string') return parseIp(ip)
  ipFamily(ip)
  return ip
}

/** Writes an address into a 16-byte ip_addr: v4 in bytes 0..3 and zeros after, v6 in all 16. */
export function encodeIpAddr(ip: IpInput, buf: Uint8Array, offset: number): void {
  if (typeof ip === 'string') {
    writeIp16(ip, buf, offset)
    return
  }
  const n = ipFamily(ip) === 4 ? 4 : 16
  if (!(offset >= 0 && offset + IP_ADDR_SIZE <= buf.length)) {
    throw new RangeError(`ip_addr at ${offset} does not fit in ${buf.length} bytes`)
  }
  for (let i = 0; i < n; i++) buf[offset + i] = ip[i]!
  if (n === 4) buf.fill(0, offset + 4, offset + IP_ADDR_SIZE)
}

/**
 * Reads a 16-byte ip_addr as text. The record has no family, so bytes 4..15 all zero read as IPv4
 * (an IPv6 address of that shape, x:y::, is not used by any mesh).
 */
export function decodeIpAddr(buf: Uint8Array, offset: number): string {
  for (let i = 4; i < IP_ADDR_SIZE; i++) if (buf[offset + i] !== 0) return formatIpv6(buf, offset)
  return formatIpv4(buf, offset)
}

/** True when the address is zero (no waypoint, no address). */
export function isZeroIpAddr(buf: Uint8Array, offset: number): boolean {
  for (let i = 0; i < IP_ADDR_SIZE; i++) if (buf[offset + i] !== 0) return false
  return true
}
