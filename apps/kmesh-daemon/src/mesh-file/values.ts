/**
 * Text forms of the mesh file's values (reference/local-config.md §2.3, §4.1), parsed the way ztunnel's
 * Rust types parse them. Pure functions: each returns the parsed value or a message saying what is wrong.
 */
import { isIP } from 'node:net'

import type { GatewayDestination, NetworkAddress } from './types.js'

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string }

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value })
const bad = <T>(message: string): Parsed<T> => ({ ok: false, message })

/** 8 × 16-bit groups of an address that `isIP` already accepted as IPv6. */
function ipv6Groups(text: string): number[] {
  let body = text
  const tailGroups: number[] = []
  const lastColon = body.lastIndexOf(':')
  const last = body.slice(lastColon + 1)
  if (last.includes('.')) {
    const o = last.split('.').map(Number)
    tailGroups.push(((o[0] ?? 0) << 8) | (o[1] ?? 0), ((o[2] ?? 0) << 8) | (o[3] ?? 0))
    body = body.slice(0, lastColon + 1)
    if (body.endsWith(':') && !body.endsWith('::')) body = body.slice(0, -1)
  }
  const hex = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)))
  const gap = body.indexOf('::')
  if (gap < 0) return [...hex(body), ...tailGroups]
  const head = hex(body.slice(0, gap))
  const tail = [...hex(body.slice(gap + 2)), ...tailGroups]
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail]
}

/** Rust's `Ipv6Addr` display: lower-case hex, the first longest run (≥ 2) of zero groups as `::`. */
function formatIpv6(g: number[]): string {
  if (g.slice(0, 6).join() === '0,0,0,0,0,65535') {
    const [a = 0, b = 0] = g.slice(6)
    return `::ffff:${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`
  }
  let bestStart = -1
  let bestLen = 0
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLen) {
      bestStart = i
      bestLen = j - i
    }
    i = j
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':')
  if (bestLen < 2) return hex(g)
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`
}

/** A plain IP address (v4 or v6), returned in canonical text form. No `/len`, no zone (`%eth0`). */
export function parseIp(text: string): Parsed<{ family: 4 | 6; ip: string }> {
  const family = text.includes('%') ? 0 : isIP(text)
  if (family === 4) return ok({ family, ip: text })
  if (family === 6) return ok({ family, ip: formatIpv6(ipv6Groups(text)) })
  if (text.includes('/')) return bad(`"${text}" is not an IP address (a plain address takes no "/len")`)
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
  if (!/^[0-9]{1,3}$/.test(prefixText) || Number(prefixText) > max) {
    return bad(`"${text}" is not a CIDR: prefix length "${prefixText}" is not 0..${max}`)
  }
  return ok(`${ip.value.ip}/${Number(prefixText)}`)
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
