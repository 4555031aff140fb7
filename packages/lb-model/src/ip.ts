/**
 * Addresses the way the kernel's maps hold them (reference/kmesh-dataplane.md §2.2): 16 bytes, an IPv4 address
 * in bytes 0..3 (network order) with bytes 4..15 zero, an IPv6 address in all 16. Keys compare all 16 bytes, so
 * this package compares addresses as these bytes, never as text. Written here (no dependency) so the model can
 * run anywhere, a browser included.
 */

export type Family = 'ipv4' | 'ipv6'

/** 16 bytes in the kernel layout. */
export type IpBytes = Uint8Array

function parseV4(text: string): number[] | undefined {
  const parts = text.split('.')
  if (parts.length !== 4) return undefined
  const out: number[] = []
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined
    const n = Number(p)
    if (n > 255) return undefined
    out.push(n)
  }
  return out
}

function parseV6(text: string): number[] | undefined {
  let s = text
  let v4Tail: number[] = []
  const lastColon = s.lastIndexOf(':')
  if (s.slice(lastColon + 1).includes('.')) {
    // "::ffff:1.2.3.4": the dotted quad is the last two words.
    const quad = parseV4(s.slice(lastColon + 1))
    if (!quad) return undefined
    v4Tail = quad
    s = s.slice(0, lastColon + 1)
    if (!s.endsWith('::')) s = s.slice(0, -1)
  }
  const halves = s.split('::')
  if (halves.length > 2) return undefined
  const groupsOf = (h: string): number[] | undefined => {
    if (h === '') return []
    const out: number[] = []
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined
      out.push(parseInt(g, 16))
    }
    return out
  }
  const head = groupsOf(halves[0] ?? '')
  const rest = halves.length === 2 ? groupsOf(halves[1] ?? '') : []
  if (!head || !rest) return undefined
  const words = 8 - v4Tail.length / 2
  const given = head.length + rest.length
  if (halves.length === 1 ? given !== words : given >= words) return undefined
  const bytes: number[] = []
  for (const w of [...head, ...Array<number>(words - given).fill(0), ...rest]) bytes.push(w >> 8, w & 0xff)
  return [...bytes, ...v4Tail]
}

/** The family an address text is written in: dotted quad is IPv4, anything with a colon is IPv6. */
export function familyOf(text: string): Family {
  return text.includes(':') ? 'ipv6' : 'ipv4'
}

/** An address text as the 16 bytes a map key or value holds. Throws TypeError naming the text when it is not an IP. */
export function ipToBytes(text: string): IpBytes {
  const out = new Uint8Array(16)
  const parsed = familyOf(text) === 'ipv4' ? parseV4(text) : parseV6(text.replace(/^\[|\]$/g, ''))
  if (!parsed) throw new TypeError(`not an IP address: ${JSON.stringify(text)}`)
  out.set(parsed, 0)
  return out
}

/** Hex of 16 bytes: the identity of a key. */
export function bytesKey(b: IpBytes): string {
  let s = ''
  for (const x of b) s += x.toString(16).padStart(2, '0')
  return s
}

export const isZeroIp = (b: IpBytes): boolean => b.every((x) => x === 0)

/** ::ffff:a.b.c.d: words 0..1 zero, word 2 = 0x0000ffff. */
export function isV4Mapped(b: IpBytes): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false
  return b[10] === 0xff && b[11] === 0xff
}

/** Text for bytes as a socket of `family` would use them: IPv4 reads bytes 0..3, IPv6 all 16 (RFC 5952 form). */
export function bytesToText(b: IpBytes, family: Family): string {
  if (family === 'ipv4') return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`
  if (isV4Mapped(b)) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] ?? 0) << 8) | (b[i + 1] ?? 0))
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
