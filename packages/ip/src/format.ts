/**
 * Bytes to canonical text: dotted quad for IPv4, RFC 5952 for IPv6 (lower-case hex, no leading zeros, the first
 * longest run of two or more zero groups as `::`, and `::ffff:a.b.c.d` for an IPv4-mapped address, §5). The same
 * text Rust's `Ipv6Addr` and glibc's `inet_ntop` print, except that the deprecated IPv4-compatible form
 * (`::1.2.3.4`) is printed as hex (`::102:304`), as Rust and Node's URL do.
 */
import { ipFamily, parseIp } from './parse.js'

/** The 4 bytes at `bytes[offset]` as a dotted quad. */
export function formatIpv4(bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`
}

/** True for the 16 bytes of `::ffff:a.b.c.d` at `bytes[offset]`. */
export function isV4Mapped(bytes: Uint8Array, offset = 0): boolean {
  if (bytes.length - offset < 16) return false
  for (let i = 0; i < 10; i++) if (bytes[offset + i] !== 0) return false
  return bytes[offset + 10] === 0xff && bytes[offset + 11] === 0xff
}

/** The 16 bytes at `bytes[offset]` as RFC 5952 text. Allocates only the string. */
export function formatIpv6(bytes: Uint8Array, offset = 0): string {
  if (isV4Mapped(bytes, offset)) return `::ffff:${formatIpv4(bytes, offset + 12)}`
  let bestStart = -1
  let bestLen = 1
  let runStart = -1
  for (let g = 0; g < 8; g++) {
    if (bytes[offset + 2 * g] !== 0 || bytes[offset + 2 * g + 1] !== 0) {
      runStart = -1
      continue
    }
    if (runStart < 0) runStart = g
    if (g - runStart + 1 > bestLen) {
      bestStart = runStart
      bestLen = g - runStart + 1
    }
  }
  let out = ''
  let colon = false
  for (let g = 0; g < 8; g++) {
    if (g === bestStart) {
      out += '::'
      colon = false
      g += bestLen - 1
      continue
    }
    if (colon) out += ':'
    out += (((bytes[offset + 2 * g] ?? 0) << 8) | (bytes[offset + 2 * g + 1] ?? 0)).toString(16)
    colon = true
  }
  return out
}

/** Canonical text of 4 or 16 bytes. RangeError for any other length. */
export function formatIp(bytes: Uint8Array): string {
  return ipFamily(bytes) === 4 ? formatIpv4(bytes) : formatIpv6(bytes)
}

/** The canonical text of an address text (`FD00:0::1` → `fd00::1`). Throws TypeError like parseIp. */
export function canonicalIp(text: string): string {
  return formatIp(parseIp(text))
}

/** `::ffff:a.b.c.d` (16 bytes) for 4 IPv4 bytes; 16 bytes are returned as they are. */
export function mapV4(bytes: Uint8Array): Uint8Array {
  if (ipFamily(bytes) === 6) return bytes
  const out = new Uint8Array(16)
  out[10] = 0xff
  out[11] = 0xff
  out.set(bytes, 12)
  return out
}

/** The IPv4 address (4 bytes) inside `::ffff:a.b.c.d`; any other address is returned as it is. */
export function unmapV4(bytes: Uint8Array): Uint8Array {
  return ipFamily(bytes) === 6 && isV4Mapped(bytes) ? bytes.slice(12, 16) : bytes
}

/** Lower-case hex of the bytes: a map key for an address (`0a000001` for 10.0.0.1 as 4 bytes). */
export function ipHex(bytes: Uint8Array): string {
  let s = ''
  for (let i = 0; i < bytes.length; i++) s += (bytes[i]! < 16 ? '0' : '') + bytes[i]!.toString(16)
  return s
}

/** Same family and same bytes. */
export function equalIp(a: Uint8Array, b: Uint8Array): boolean {
  return compareIp(a, b) === 0
}

/** Orders addresses: IPv4 (4 bytes) before IPv6 (16), then by bytes as unsigned big-endian numbers. */
export function compareIp(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return a.length - b.length
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return 0
}
