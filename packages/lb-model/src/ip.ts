/**
 * Addresses the way the kernel's maps hold them (docs/reference/kmesh-dataplane.md §2.2): 16 bytes, an IPv4 address
 * in bytes 0..3 (network order) with bytes 4..15 zero, an IPv6 address in all 16. Keys compare all 16 bytes, so
 * this package compares addresses as these bytes, never as text. Parsing and text are @kmesh-ts/ip's one rule
 * (exactly what `net.isIP` accepts, zone ids refused); it has no dependency, so the model still runs anywhere.
 */
import { formatIpv4, formatIpv6, ipHex, isV4Mapped, writeIp16 } from '@kmesh-ts/ip'

export { isV4Mapped }

export type Family = 'ipv4' | 'ipv6'

/** 16 bytes in the kernel layout. */
export type IpBytes = Uint8Array

/** The family an address text is written in: dotted quad is IPv4, anything with a colon is IPv6. */
export function familyOf(text: string): Family {
  return text.includes(':') ? 'ipv6' : 'ipv4'
}

/** An address text as the 16 bytes a map key or value holds. Throws TypeError naming the text when it is not an IP. */
export function ipToBytes(text: string): IpBytes {
  const out = new Uint8Array(16)
  writeIp16(text, out, 0)
  return out
}

/** Hex of 16 bytes: the identity of a key. */
export const bytesKey = (b: IpBytes): string => ipHex(b)

export const isZeroIp = (b: IpBytes): boolean => b.every((x) => x === 0)

/** Text for bytes as a socket of `family` would use them: IPv4 reads bytes 0..3, IPv6 all 16 (RFC 5952 form). */
export function bytesToText(b: IpBytes, family: Family): string {
  return family === 'ipv4' ? formatIpv4(b) : formatIpv6(b)
}
