/**
 * How serde_yaml 0.9 types a YAML scalar (its `visit_untagged_scalar` and friends), reproduced so that
 * we accept and refuse the same scalars as ztunnel does. The YAML parser runs with the failsafe schema
 * (every scalar a string); the typing below is ours, because serde_yaml's differs from YAML 1.2 core in
 * places: `0123` is a string, `+80` and `0b101` are integers.
 */

/** What a scalar means when no type is asked for (serde's `deserialize_any`, used by `flatten`, §2.4). */
export type ScalarContent =
  | { kind: 'null' }
  | { kind: 'bool'; value: boolean }
  | { kind: 'int'; value: bigint }
  | { kind: 'float' }
  | { kind: 'string'; value: string }
  /** A `!Tag` on the scalar: serde_yaml reads it as an enum variant. */
  | { kind: 'tagged'; tag: string }

export const TAG_BOOL = 'tag:yaml.org,2002:bool'
export const TAG_INT = 'tag:yaml.org,2002:int'
export const TAG_FLOAT = 'tag:yaml.org,2002:float'
export const TAG_NULL = 'tag:yaml.org,2002:null'

const NULLS = new Set(['', '~', 'null', 'Null', 'NULL'])
const TRUES = new Set(['true', 'True', 'TRUE'])
const FALSES = new Set(['false', 'False', 'FALSE'])

export function isNullText(text: string): boolean {
  return NULLS.has(text)
}

export function parseBoolText(text: string): boolean | undefined {
  if (TRUES.has(text)) return true
  if (FALSES.has(text)) return false
  return undefined
}

/** Leading zero(s) followed by digits is a string in YAML 1.2 (and in serde_yaml). */
function digitsButNotNumber(text: string): boolean {
  const t = text.startsWith('+') || text.startsWith('-') ? text.slice(1) : text
  return t.length > 1 && t.startsWith('0') && /^[0-9]+$/.test(t.slice(1))
}

const RADIX: Array<[string, number, RegExp]> = [
  ['0x', 16, /^[0-9a-fA-F]+$/],
  ['0o', 8, /^[0-7]+$/],
  ['0b', 2, /^[01]+$/],
]

/** The bigint of small numbers, made once (ports and counts repeat across a big file). */
const SMALL_INTS: bigint[] = []

/** serde_yaml's integer forms: decimal, `0x`, `0o`, `0b`, an optional sign; no leading zeros in decimal. */
export function parseIntText(text: string): bigint | undefined {
  // The usual case first: a short unsigned decimal without a leading zero (a port, a weight).
  const length = text.length
  if (length > 0 && length <= 9) {
    const c0 = text.charCodeAt(0)
    if ((c0 >= 49 && c0 <= 57) || (c0 === 48 && length === 1)) {
      let n = c0 - 48
      let i = 1
      for (; i < length; i++) {
        const c = text.charCodeAt(i)
        if (c < 48 || c > 57) break
        n = n * 10 + (c - 48)
      }
      if (i === length) {
        if (n > 0xffff) return BigInt(n)
        let b = SMALL_INTS[n]
        if (b === undefined) SMALL_INTS[n] = b = BigInt(n)
        return b
      }
    }
  }
  const negative = text.startsWith('-')
  const unsigned = text.startsWith('+') || negative ? text.slice(1) : text
  for (const [prefix, radix, digits] of RADIX) {
    if (!unsigned.startsWith(prefix)) continue
    const rest = unsigned.slice(prefix.length)
    if (!digits.test(rest)) return undefined
    let n = 0n
    for (const ch of rest.toLowerCase()) n = n * BigInt(radix) + BigInt(parseInt(ch, radix))
    return negative ? -n : n
  }
  if (!/^[0-9]+$/.test(unsigned) || digitsButNotNumber(text)) return undefined
  return negative ? -BigInt(unsigned) : BigInt(unsigned)
}

/** Rust's finite `f64` syntax plus YAML's `.inf`/`.nan` spellings. */
function isFloatText(text: string): boolean {
  if (/^[-+]?\.(inf|Inf|INF)$/.test(text) || /^\.(nan|NaN|NAN)$/.test(text)) return true
  return /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/.test(text)
}

/** The meaning of a plain, untagged scalar (serde_yaml `visit_untagged_scalar`). */
export function untaggedContent(text: string): ScalarContent {
  if (isNullText(text)) return { kind: 'null' }
  const b = parseBoolText(text)
  if (b !== undefined) return { kind: 'bool', value: b }
  const i = parseIntText(text)
  if (i !== undefined) return { kind: 'int', value: i }
  if (!digitsButNotNumber(text) && isFloatText(text)) return { kind: 'float' }
  return { kind: 'string', value: text }
}

/**
 * The meaning of a scalar given its text, style (`PLAIN`, `QUOTE_DOUBLE`, ...) and tag
 * (serde_yaml `deserialize_any` + `visit_scalar`).
 */
export function scalarContent(text: string, style: string | undefined, tag: string | undefined): ScalarContent {
  if (tag !== undefined && tag.startsWith('!') && tag !== '!') return { kind: 'tagged', tag }
  if (tag === TAG_BOOL) {
    const b = parseBoolText(text)
    return b === undefined ? { kind: 'string', value: text } : { kind: 'bool', value: b }
  }
  if (tag === TAG_INT) {
    const i = parseIntText(text)
    return i === undefined ? { kind: 'string', value: text } : { kind: 'int', value: i }
  }
  if (tag === TAG_FLOAT) return { kind: 'float' }
  if (tag === TAG_NULL) return { kind: 'null' }
  if (tag === undefined && (style === undefined || style === 'PLAIN')) return untaggedContent(text)
  return { kind: 'string', value: text }
}

/** For messages: `integer \`1\``, `boolean \`true\``, `null`, `a string "x"` (serde's wording). */
export function describeContent(c: ScalarContent, text: string): string {
  switch (c.kind) {
    case 'null':
      return text === '' ? 'an empty value (null)' : `null \`${text}\``
    case 'bool':
      return `boolean \`${text}\``
    case 'int':
      return `integer \`${text}\``
    case 'float':
      return `floating point \`${text}\``
    case 'string':
      return `string "${c.value}"`
    case 'tagged':
      return `a value tagged ${c.tag}`
  }
}
