/**
 * Reading YAML nodes into typed values, each failure recorded with file, entry, key and line and the
 * reading carried on, so one pass reports every problem. Type rules follow serde_yaml 0.9 as ztunnel
 * uses it (docs/reference/local-config.md §2.3, §2.4); `flat` marks the parts of a workload entry that
 * serde buffers for `#[serde(flatten)]`, where a string field must be a real YAML string.
 */
import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml'

import { MAX_NAME_LENGTH, MAX_PROBLEMS, MAX_SCALAR_LENGTH } from './bounds.js'
import type { MeshFileProblem } from './problems.js'
import { portMapOf } from '../model/shared-values.js'
import {
  describeContent,
  isNullText,
  parseBoolText,
  parseIntText,
  scalarContent,
  TAG_INT,
  TAG_NULL,
  type ScalarContent,
} from './scalars.js'
import type { Parsed } from './values.js'

/** A node as the parser gives it: `null` stands for a missing value (`{a}`), read as an empty scalar. */
export type YNode = Node | null | undefined

/** Entries and messages can quote text from the file; a huge scalar must not make a huge problem. */
function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length} characters)`
}

/**
 * Collects problems for one file: the first MAX_PROBLEMS errors and warnings are kept, all are counted.
 * Readers compare `errorCount` (not `errors.length`, which stops at the cap) to tell a clean entry.
 */
export class Sink {
  readonly errors: MeshFileProblem[] = []
  readonly warnings: MeshFileProblem[] = []
  errorCount = 0
  warningCount = 0
  /** The line of the entry being read: for problems about a node the parser gave no position (an empty `- `). */
  fallbackLine: number | undefined

  constructor(
    readonly file: string,
    private readonly text: string,
    private doc: Document.Parsed | Document | undefined,
    private readonly lines: LineCounter,
  ) {}

  /** The document aliases are resolved in; the chunked reader parses one per entry. */
  useDoc(doc: Document.Parsed | Document | undefined): void {
    this.doc = doc
  }

  /** The cap is reached: further problems are only counted. */
  get full(): boolean {
    return this.errorCount >= MAX_PROBLEMS
  }

  charAt(offset: number): string {
    return this.text.charAt(offset)
  }

  lineAt(offset: number): number {
    return this.lines.linePos(offset).line
  }

  lineOf(node: YNode): number | undefined {
    const range = node?.range
    return range ? this.lineAt(range[0]) : undefined
  }

  /** Follows `*alias` to its anchored node. */
  deref(node: YNode): YNode {
    if (node && isAlias(node) && this.doc) return node.resolve(this.doc) ?? null
    return node
  }

  add(kind: 'error' | 'warning', entry: string, key: string, message: string, node?: YNode): void {
    this.addAtLine(kind, entry, key, message, this.lineOf(node) ?? this.fallbackLine)
  }

  addAtLine(kind: 'error' | 'warning', entry: string, key: string, message: string, line: number | undefined): void {
    const p: MeshFileProblem = {
      file: this.file,
      entry: clip(entry, 300),
      key: clip(key, 300),
      message: clip(message, 2000),
    }
    if (line !== undefined) p.line = line
    if (kind === 'error') {
      this.errorCount++
      if (this.errors.length < MAX_PROBLEMS) this.errors.push(p)
    } else {
      this.warningCount++
      if (this.warnings.length < MAX_PROBLEMS) this.warnings.push(p)
    }
  }
}

/** `a.b` for identifier-like parts, `a["ns/host"]` otherwise. */
export function joinKey(base: string, part: string): string {
  if (/^[A-Za-z0-9_]+$/.test(part)) return base === '' ? part : `${base}.${part}`
  return `${base}[${JSON.stringify(part)}]`
}

/** A place in the file: entry, dotted key, and whether serde's flatten typing applies. */
export class At {
  constructor(
    readonly sink: Sink,
    readonly entry: string,
    readonly key: string,
    readonly flat: boolean,
    /** The node reported when a problem names no node of its own. */
    readonly node: YNode = undefined,
  ) {}

  field(name: string, node?: YNode): At {
    return new At(this.sink, this.entry, joinKey(this.key, name), this.flat, node ?? this.node)
  }

  index(i: number, node?: YNode): At {
    return new At(this.sink, this.entry, `${this.key}[${i}]`, this.flat, node ?? this.node)
  }

  direct(): At {
    return new At(this.sink, this.entry, this.key, false, this.node)
  }

  error(message: string, node?: YNode): void {
    this.sink.add('error', this.entry, this.key, message, node ?? this.node)
  }

  warn(message: string, node?: YNode): void {
    this.sink.add('warning', this.entry, this.key, message, node ?? this.node)
  }

  /** The last segment of the key, for hints such as `write zone: "2"`. */
  get leaf(): string {
    const m = /([A-Za-z0-9_]+)$/.exec(this.key)
    return m?.[1] ?? this.key
  }
}

interface ScalarView {
  text: string
  style: string | undefined
  tag: string | undefined
  content: ScalarContent
}

function scalarView(node: YNode): ScalarView | undefined {
  if (node === null || node === undefined)
    return { text: '', style: 'PLAIN', tag: undefined, content: { kind: 'null' } }
  if (!isScalar(node)) return undefined
  const text = node.value === null || node.value === undefined ? '' : String(node.value)
  const tag = node.tag ?? undefined
  return { text, style: node.type, tag, content: scalarContent(text, node.type, tag) }
}

const CORE_TAGS = new Set(['str', 'int', 'bool', 'null', 'float', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`))
export const MATCHER_TAGS: readonly string[] = ['!Exact', '!Prefix', '!Suffix', '!Presence']

/** `!!python/object:x` rather than the expanded `tag:yaml.org,2002:python/object:x`. */
export function tagText(tag: string): string {
  return tag.startsWith('tag:yaml.org,2002:') ? `!!${tag.slice('tag:yaml.org,2002:'.length)}` : tag
}

/**
 * Tags: serde_yaml knows the core ones (`!!str`, `!!int`...); the string matcher tags are read by
 * policy.ts itself. Any other tag would be ignored by the failsafe parse and the value silently taken
 * as plain text, so it is refused by name.
 */
export function tagOk(at: At, node: YNode): boolean {
  const tag = node && (isScalar(node) || isMap(node) || isSeq(node)) ? node.tag : undefined
  if (tag === undefined || tag === null || tag === '!' || CORE_TAGS.has(tag)) return true
  const shown = tagText(tag)
  if (MATCHER_TAGS.includes(tag)) {
    at.error(
      `the YAML tag ${shown} belongs on policy string matchers (principals, namespaces...); remove it here`,
      node,
    )
  } else {
    at.error(
      `unknown YAML tag ${clip(shown, 100)}; remove it (a mesh file uses no tags but the core ones such as !!str ` +
        `and !Exact, !Prefix, !Suffix, !Presence on policy string matchers)`,
      node,
    )
  }
  return false
}

/** A scalar longer than MAX_SCALAR_LENGTH is refused before its text reaches messages or parsers. */
export function sizeOk(at: At, node: YNode, text: string): boolean {
  if (text.length <= MAX_SCALAR_LENGTH) return true
  at.error(`a scalar of ${text.length} characters; the limit is ${MAX_SCALAR_LENGTH} (64 KiB)`, node)
  return false
}

function scalarOk(at: At, node: YNode, v: ScalarView): boolean {
  return tagOk(at, node) && sizeOk(at, node, v.text)
}

function kindOf(node: YNode): string {
  if (node && isMap(node)) return 'a mapping'
  if (node && isSeq(node)) return 'a sequence'
  return 'a scalar'
}

/** The text of scalar `key` in mapping `raw`, for labels and duplicate checks of entries that may be broken. */
export function rawText(sink: Sink, raw: YNode, key: string): string | undefined {
  const node = sink.deref(raw)
  if (!node || !isMap(node)) return undefined
  const v = sink.deref(node.get(key, true) as YNode)
  return v && isScalar(v) && v.value !== null && v.value !== undefined ? String(v.value) : undefined
}

/** Option fields: absent or YAML null (`~`, `null`, empty) means None. */
export function isNone(sink: Sink, raw: YNode): boolean {
  const node = sink.deref(raw)
  if (node === null || node === undefined) return true
  if (!isScalar(node)) return false
  const v = scalarView(node)
  if (!v || (v.style !== 'PLAIN' && v.style !== undefined)) return false
  return (v.tag === undefined || v.tag === TAG_NULL) && isNullText(v.text)
}

/** An empty plain scalar, which serde_yaml reads as an empty list or map outside flattened structs. */
function isEmptyPlain(node: YNode): boolean {
  if (node === null || node === undefined) return true
  return (
    isScalar(node) && (node.type === 'PLAIN' || node.type === undefined) && !node.tag && String(node.value ?? '') === ''
  )
}

/**
 * A string field. Outside a flattened workload serde_yaml takes the text of any scalar (`1` → "1");
 * inside one the value must be a YAML string, so `1`, `true` and an empty value are refused (§2.4).
 */
export function readString(at: At, raw: YNode): string | undefined {
  const node = at.sink.deref(raw)
  const v = scalarView(node)
  if (!v) {
    at.error(`expected a string, found ${kindOf(node)}`, node)
    return undefined
  }
  if (!scalarOk(at, node, v)) return undefined
  if (!at.flat) return v.text
  if (v.content.kind === 'string') return v.content.value
  let hint: string
  if (v.content.kind === 'null') {
    hint = v.text === '' ? `an empty value is null, not ""; write ${at.leaf}: ""` : `quote it: ${at.leaf}: "${v.text}"`
  } else if (v.content.kind === 'tagged') {
    hint = 'remove the tag'
  } else {
    hint = `quote it: ${at.leaf}: "${v.text}"`
  }
  at.error(
    `invalid type: ${describeContent(v.content, v.text)}, expected a string; ${hint} ` +
      `(workload entries are flattened in ztunnel, so string fields must be YAML strings, reference §2.4)`,
    node,
  )
  return undefined
}

/** An unsigned integer of `bits` bits: a plain scalar in serde_yaml's integer syntax. */
export function readUint(at: At, raw: YNode, bits: 16 | 32, what = 'value'): number | undefined {
  const node = at.sink.deref(raw)
  const v = scalarView(node)
  const type = bits === 16 ? 'u16' : 'u32'
  const max = bits === 16 ? 65535n : 4294967295n
  if (!v) {
    at.error(`expected ${type}, found ${kindOf(node)}`, node)
    return undefined
  }
  if (!scalarOk(at, node, v)) return undefined
  const plain = v.style === 'PLAIN' || v.style === undefined || (v.style === 'BLOCK_LITERAL' && v.tag === TAG_INT)
  const n = plain ? parseIntText(v.text) : undefined
  if (n === undefined) {
    if (!plain && parseIntText(v.text) !== undefined) {
      at.error(`the ${what} "${v.text}" is quoted, so it is a string; write it without quotes (expected ${type})`, node)
    } else {
      at.error(`invalid type: ${describeContent(v.content, v.text)}, expected ${type}`, node)
    }
    return undefined
  }
  if (n < 0n || n > max) {
    at.error(`invalid value: integer \`${v.text}\`, expected ${type} (0..${max})`, node)
    return undefined
  }
  return Number(n)
}

export function readBool(at: At, raw: YNode): boolean | undefined {
  const node = at.sink.deref(raw)
  const v = scalarView(node)
  if (!v) {
    at.error(`expected true or false, found ${kindOf(node)}`, node)
    return undefined
  }
  if (!scalarOk(at, node, v)) return undefined
  const plain = v.style === 'PLAIN' || v.style === undefined
  const b = plain ? parseBoolText(v.text) : undefined
  if (b === undefined) {
    const quoted = !plain && parseBoolText(v.text) !== undefined ? '; write it without quotes' : ''
    at.error(`invalid type: ${describeContent(v.content, v.text)}, expected true or false${quoted}`, node)
    return undefined
  }
  return b
}

/** Protobuf and other near-miss spellings that deserve a precise hint. */
const PROTO_SPELLINGS: Record<string, string> = {
  IPV4_ONLY: 'IPv4',
  IPV6_ONLY: 'IPv6',
  DUAL: 'Dual',
  UNSPECIFIED_MODE: 'Standard',
  UNSPECIFIED_POLICY: 'OnlyHealthy',
  DOUBLEHBONE: '',
  NONE_TUNNEL: 'TCP',
}

/** A unit enum written as its Rust variant name, case-sensitive (§2.1). */
export function readEnum<T extends string>(at: At, raw: YNode, allowed: readonly T[]): T | undefined {
  const node = at.sink.deref(raw)
  const v = scalarView(node)
  if (!v) {
    at.error(`expected one of ${allowed.join(', ')}, found ${kindOf(node)}`, node)
    return undefined
  }
  if (!scalarOk(at, node, v)) return undefined
  let text: string
  if (at.flat) {
    if (v.content.kind !== 'string') {
      at.error(`invalid type: ${describeContent(v.content, v.text)}, expected one of ${allowed.join(', ')}`, node)
      return undefined
    }
    text = v.content.value
  } else {
    text = v.text
  }
  if ((allowed as readonly string[]).includes(text)) return text as T
  const squash = (s: string): string => s.toLowerCase().replace(/_/g, '')
  const near = allowed.find((a) => squash(a) === squash(text)) ?? PROTO_SPELLINGS[text]
  const hint =
    near !== undefined && near !== '' && (allowed as readonly string[]).includes(near)
      ? `; write ${near} (values are the Rust variant names, case-sensitive; protobuf spellings are not accepted)`
      : ''
  at.error(`unknown value "${text}", expected one of ${allowed.join(', ')}${hint}`, node)
  return undefined
}

/** A YAML sequence; outside flattened parts an empty value counts as `[]` (serde_yaml 0.9). */
export function readSeq(at: At, raw: YNode, hint = ''): YNode[] | undefined {
  const node = at.sink.deref(raw)
  if (!tagOk(at, node)) return undefined
  if (node && isSeq(node)) return node.items as YNode[]
  if (!at.flat && isEmptyPlain(node)) return []
  const found = isEmptyPlain(node) ? 'an empty value (null); write []' : `found ${kindOf(node)}`
  at.error(`expected a list, ${found}${hint}`, node)
  return undefined
}

export interface Entry {
  keyNode: YNode
  value: YNode
}

/** A YAML mapping's pairs; outside flattened parts an empty value counts as `{}`. */
export function readMap(at: At, raw: YNode, hint = ''): Entry[] | undefined {
  const node = at.sink.deref(raw)
  if (!tagOk(at, node)) return undefined
  if (node && isMap(node)) {
    return node.items.map((p) => ({ keyNode: at.sink.deref(p.key as YNode), value: p.value as YNode }))
  }
  if (!at.flat && isEmptyPlain(node)) return []
  const found = isEmptyPlain(node) ? 'an empty value (null); write {}' : `found ${kindOf(node)}`
  at.error(`expected a mapping, ${found}${hint}`, node)
  return undefined
}

/** The text of a mapping key that names a field or an entry. */
export function keyText(at: At, e: Entry): string | undefined {
  const v = scalarView(e.keyNode)
  if (!v || e.keyNode === null || e.keyNode === undefined) {
    at.error(`a key must be a scalar, found ${kindOf(e.keyNode)}`, e.keyNode)
    return undefined
  }
  if (!scalarOk(at, e.keyNode, v)) return undefined
  return v.text
}

export interface StructSpec {
  fields: readonly string[]
  required?: readonly string[]
  /**
   * `reject`: ztunnel rejects unknown keys too. `ignoredUpstream`: ztunnel silently ignores them, we
   * refuse them anyway because a misspelt key there silently changes meaning (§8 item 9).
   */
  unknown: 'reject' | 'ignoredUpstream'
  /** Extra hints for known wrong keys, e.g. proto names. */
  hints?: Record<string, string>
  /** Extra text for a missing required key. */
  missingHints?: Record<string, string>
}

export type Fields = Map<string, Entry>

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) (d[0] as number[])[j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i] as number[]
      const prev = d[i - 1] as number[]
      row[j] = Math.min(
        (prev[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      )
    }
  }
  return (d[a.length] as number[])[b.length] as number
}

export function closest(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase()
  const same = known.find((k) => k.toLowerCase() === lower)
  if (same) return same
  const stem = known.find(
    (k) => k.length >= 3 && (lower.startsWith(k.toLowerCase()) || k.toLowerCase().startsWith(lower)),
  )
  if (stem && lower.length >= 3) return stem
  let best: string | undefined
  let bestD = 3
  for (const k of known) {
    const d = editDistance(lower, k.toLowerCase())
    if (d < bestD) {
      best = k
      bestD = d
    }
  }
  return best
}

/**
 * A struct: a mapping whose keys are field names. Duplicate, unknown and missing required keys are
 * reported; the fields present are returned (also when some were wrong, so reading goes on).
 */
export function readStruct(at: At, raw: YNode, spec: StructSpec): Fields | undefined {
  const node = at.sink.deref(raw)
  const entries = readMap(at, node)
  if (!entries) return undefined
  const fields: Fields = new Map()
  for (const e of entries) {
    const name = keyText(at, e)
    if (name === undefined) continue
    const here = at.field(name, e.keyNode)
    if (fields.has(name)) {
      here.error(`duplicate key \`${name}\``, e.keyNode)
      continue
    }
    if (!spec.fields.includes(name)) {
      const hint =
        spec.hints?.[name] ?? (closest(name, spec.fields) ? `did you mean \`${closest(name, spec.fields)}\`?` : '')
      const known = `expected one of ${spec.fields.join(', ')}`
      const upstream =
        spec.unknown === 'ignoredUpstream'
          ? ' (ztunnel would silently ignore it, so whatever it was meant to say would be lost)'
          : ''
      here.error(`unknown key \`${name}\`${upstream}${hint ? `; ${hint}` : ''} (${known})`, e.keyNode)
      continue
    }
    fields.set(name, e)
  }
  for (const name of spec.required ?? []) {
    if (!fields.has(name)) {
      const extra = spec.missingHints?.[name]
      at.field(name, node).error(`missing required key \`${name}\`${extra ? `; ${extra}` : ''}`, node)
    }
  }
  return fields
}

/**
 * A port map `servicePort: targetPort`: keys and values plain integers (§2.3). Port 0 is no port a
 * client can connect to, so a 0 key is refused. A 0 target means "each endpoint's own mapping" in a
 * service's `ports` (`zeroTarget: 'endpointMapping'`); in a workload's or endpoint's map it would send
 * traffic to port 0, so it is refused there.
 */
export function readPortMap(
  at: At,
  raw: YNode,
  zeroTarget: 'endpointMapping' | 'refused' = 'refused',
): Record<number, number> | undefined {
  const entries = readMap(at.direct(), raw)
  if (!entries) return undefined
  // Collected as pairs and built once: an object with small integer keys built key by key takes ~1.2 KB
  // (model/shared-values.ts), and a big file has a port map per service and per workload's service.
  const pairs: [number, number][] = []
  const seen = new Set<number>()
  let good = true
  for (const e of entries) {
    const keyAt = at.direct().field(scalarView(e.keyNode)?.text ?? '?', e.keyNode)
    const port = readUint(keyAt, e.keyNode, 16, 'port key')
    const target = readUint(keyAt, e.value, 16, 'target port')
    if (port === undefined || target === undefined) {
      good = false
      continue
    }
    if (port === 0) {
      keyAt.error('port 0 is not a port a client can connect to; list real service ports (1..65535)', e.keyNode)
      good = false
      continue
    }
    if (target === 0 && zeroTarget === 'refused') {
      keyAt.error(
        'target port 0 would send traffic to port 0; write the port the workload listens on ' +
          "(targetPort 0, meaning each endpoint's own mapping, is only for a service's `ports`)",
        e.value ?? e.keyNode,
      )
      good = false
      continue
    }
    if (seen.has(port)) {
      keyAt.error(`port ${port} is listed twice`, e.keyNode)
      good = false
      continue
    }
    seen.add(port)
    pairs.push([port, target])
  }
  return good ? portMapOf(pairs) : undefined
}

/** Reads a string, then parses it; the parser's message becomes the problem. */
export function readParsed<T>(at: At, raw: YNode, parse: (s: string) => Parsed<T>): T | undefined {
  const text = readString(at, raw)
  if (text === undefined) return undefined
  const r = parse(text)
  if (!r.ok) {
    at.error(r.message, at.sink.deref(raw))
    return undefined
  }
  return r.value
}

/** A list of strings, each parsed. */
export function readParsedList<T>(at: At, raw: YNode, parse: (s: string) => Parsed<T>): T[] | undefined {
  const items = readSeq(at, raw)
  if (!items) return undefined
  const out: T[] = []
  let good = true
  items.forEach((item, i) => {
    const v = readParsed(at.index(i, at.sink.deref(item)), item, parse)
    if (v === undefined) good = false
    else out.push(v)
  })
  return good ? out : undefined
}

/** A name, namespace or hostname: a string of at most MAX_NAME_LENGTH characters (Kubernetes). */
export function readName(at: At, raw: YNode): string | undefined {
  const s = readString(at, raw)
  if (s === undefined || s.length <= MAX_NAME_LENGTH) return s
  at.error(
    `${s.length} characters; names, namespaces and hostnames are at most ${MAX_NAME_LENGTH} (the Kubernetes limit)`,
    at.sink.deref(raw),
  )
  return undefined
}

export function readStringList(at: At, raw: YNode): string[] | undefined {
  return readParsedList(at, raw, (s) => ({ ok: true, value: s }))
}
