/**
 * Text forms of the mesh file's values (docs/reference/local-config.md §2.3, §4.1), parsed the way ztunnel's
 * Rust types parse them. Pure functions: each returns the parsed value or a message saying what is wrong.
 */
import { formatIp, parsePrefixLength, tryParseIp, whyNotIp, ZONE_REFUSED } from '@kmesh-ts/ip'

import type { GatewayDestination, NetworkAddress } from '../model/mesh.js'

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string }

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value })
const bad = <T>(message: string): Parsed<T> => ({ ok: false, message })

/**
 * A plain IP address (v4 or v6), returned in canonical text form (RFC 5952, as Rust's `Ipv6Addr` displays it). No
 * `/len`, no zone (`%eth0`). Which texts are addresses is @kmesh-ts/ip's one rule: exactly what `net.isIP` accepts
 * (so `010.0.0.1` is refused, as Rust's `Ipv4Addr` refuses it), zone ids refused with the reason.
 */
export function parseIp(text: string): Parsed<{ family: 4 | 6; ip: string }> {
  const bytes = tryParseIp(text)
  if (bytes) return ok({ family: bytes.length === 4 ? 4 : 6, ip: formatIp(bytes) })
  if (text.includes('/')) return bad(`"${text}" is not an IP address (a plain address takes no "/len")`)
  if (whyNotIp(text) === ZONE_REFUSED) return bad(`"${text}" is not an IP address (${ZONE_REFUSED})`)
  return bad(`"${text}" is not an IP address`)
}

/** `ip/prefix` (ipnet): the prefix length is required; host bits may be set and are kept. */
export function parseCidr(text: string): Parsed<string> {
  const slash = text.lastIndexOf('/')
  if (slash < 0) {
    const host = parseIp(text)
    const hint = host.ok ? `; write "${host.value.ip}/${host.value.family === 4 ? 32 : 128}" for one address` : ''
    return bad(`"${text}" is not a CIDR: the prefix length is required${hint}`)
  }
  const ip = parseIp(text.slice(0, slash))
  if (!ip.ok) return bad(`"${text}" is not a CIDR: ${ip.message}`)
  const prefixText = text.slice(slash + 1)
  const max = ip.value.family === 4 ? 32 : 128
  const prefix = parsePrefixLength(prefixText, ip.value.family)
  if (prefix === undefined) return bad(`"${text}" is not a CIDR: prefix length "${prefixText}" is not 0..${max}`)
  return ok(`${ip.value.ip}/${prefix}`)
}

/** `"<network>/<ip>"`, split at the first `/`; the slash is required even for the default network. */
export function parseNetworkAddress(text: string): Parsed<NetworkAddress> {
  const slash = text.indexOf('/')
  if (slash < 0) {
    const ip = parseIp(text)
    if (ip.ok) return bad(`"${text}" has no network part; write "/${text}" for the default network`)
    return bad(`"${text}" is not "<network>/<ip>"`)
  }
  const network = text.slice(0, slash)
  const ip = parseIp(text.slice(slash + 1))
  if (!ip.ok) {
    const rest = text.slice(slash + 1)
    const cidr = rest.includes('/') ? ' (a CIDR is not allowed here; use cidrVips for ranges)' : ''
    return bad(`"${text}" is not "<network>/<ip>": ${ip.message}${cidr}`)
  }
  return ok({ network, ip: ip.value.ip })
}

/** `"<namespace>/<hostname>"`, split at the first `/`. */
export function parseNamespacedHostname(text: string): Parsed<{ namespace: string; hostname: string }> {
  const slash = text.indexOf('/')
  if (slash < 0) return bad(`"${text}" is not "<namespace>/<hostname>" (the "/" is missing)`)
  return ok({ namespace: text.slice(0, slash), hostname: text.slice(slash + 1) })
}

/** §4.1: the address form is tried first, so `"ns/10.1.2.3"` is an address in network `ns`. */
export function parseGatewayDestination(text: string): Parsed<GatewayDestination> {
  const slash = text.indexOf('/')
  if (slash < 0) {
    return bad(
      `"${text}" matches neither "<network>/<ip>" nor "<namespace>/<hostname>" ` +
        `(ztunnel: data did not match any variant of untagged enum Destination)`,
    )
  }
  const ip = parseIp(text.slice(slash + 1))
  if (ip.ok) return ok({ kind: 'address', network: text.slice(0, slash), ip: ip.value.ip })
  return ok({ kind: 'hostname', namespace: text.slice(0, slash), hostname: text.slice(slash + 1) })
}
