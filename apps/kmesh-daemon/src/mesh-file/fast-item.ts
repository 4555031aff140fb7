/**
 * A fast reader for the list items big mesh files are made of (issue 13: the yaml package reads ~2 MB/s, so a
 * 20 MB file took 12 s to parse): one `- ` item whose content is a block mapping of plain or quoted keys, with
 * single-line plain or quoted scalars, flow sequences and mappings of those (`["10.0.0.1"]`, `{80: 8080}`), empty
 * values, nested block mappings and block sequences of such values. It builds the very nodes the yaml package's
 * composer builds for that text (same classes, values, styles and ranges, checked against it by
 * test/mesh-file-fast-item.test.ts), so the entry readers cannot tell the difference.
 *
 * Anything else — comments, tabs, anchors, aliases, tags, block scalars, escapes in quotes, multi-line scalars,
 * blank lines, `? ` keys, unusual spacing — makes it decline (undefined), and the caller parses the item with the
 * yaml package as before: every message, line and edge case stays that parser's.
 */
import { Pair, Scalar, YAMLMap, YAMLSeq, type Schema } from 'yaml'

type Value = Scalar | YAMLMap | YAMLSeq

/** Thrown inside the reader when the text is not of the simple shape; caught by parseSimpleItem. */
const DECLINE = Symbol('decline')

/** Characters that never occur in a simple item (each means a YAML feature this reader leaves to the yaml package). */
const FORBIDDEN = new Set(['#', '\t', '\r', '&', '*', '!', '|', '>', '%', '@', '`', '\\', '?'])
/** A plain scalar may not start with these (YAML indicators). */
const INDICATOR = new Set([
  '-',
  '?',
  ':',
  ',',
  '[',
  ']',
  '{',
  '}',
  '#',
  '&',
  '*',
  '!',
  '|',
  '>',
  "'",
  '"',
  '%',
  '@',
  '`',
])
/** Flow indicators: a plain scalar in a block holding one is left to the yaml package. */
const FLOW_INDICATOR = new Set([',', '[', ']', '{', '}'])
/** Ends a plain scalar in a flow collection. */
const FLOW_END = new Set([',', ']', '}', ':', ' ', '\n', '[', '{'])

class Reader {
  pos: number

  constructor(
    private readonly text: string,
    start: number,
    private readonly end: number,
    private readonly schema: Schema,
  ) {
    this.pos = start
  }

  private ch(at = this.pos): string {
    return at < this.end ? this.text[at]! : ''
  }

  private expect(s: string): void {
    if (!this.text.startsWith(s, this.pos) || this.pos + s.length > this.end) throw DECLINE
    this.pos += s.length
  }

  /** Spaces at the start of the line beginning at `at`, or -1 for a blank line or the end. */
  private indentAt(at: number): number {
    let i = at
    while (i < this.end && this.text[i] === ' ') i++
    if (i >= this.end || this.text[i] === '\n') return -1
    return i - at
  }

  /**
   * Whether only blank lines (spaces) and comment lines starting at the left margin are left from `at` (a line
   * start) to the item's end: what separates items, which the yaml package keeps out of the item's nodes.
   */
  private restIsBlank(at: number): boolean {
    let lineStart = true
    for (let i = at; i < this.end; i++) {
      const c = this.text[i]
      if (lineStart && c === '#') {
        const nl = this.text.indexOf('\n', i)
        if (nl < 0 || nl >= this.end) return true
        i = nl
        continue
      }
      if (c === '\n') lineStart = true
      else if (c === ' ') lineStart = false
      else return false
    }
    return true
  }

  /** The whole item: `- ` and a block mapping indented by 2, then nothing but blank lines. */
  item(start: number): YAMLSeq {
    this.expect('- ')
    const map = this.blockMap(2, this.pos)
    if (!this.restIsBlank(this.pos)) throw DECLINE
    const seq = new YAMLSeq(this.schema)
    seq.items.push(map)
    seq.range = [start, map.range![2], map.range![2]]
    return seq
  }

  /** A block mapping whose keys sit at column `indent`; the first key starts at `first` (maybe after `- `). */
  private blockMap(indent: number, first: number): YAMLMap {
    const map = new YAMLMap(this.schema)
    this.pos = first
    let nodeEnd = first
    for (;;) {
      const key = this.key()
      this.expect(':')
      let value: Value
      if (this.ch() === ' ') {
        this.pos++
        value = this.inlineValue()
        nodeEnd = this.endOfLine(value)
      } else if (this.ch() === '\n') {
        value = this.nested(indent)
        nodeEnd = value.range![2]
      } else throw DECLINE
      map.items.push(new Pair(key, value))
      // this.pos is at the start of a line (or the end)
      if (this.pos >= this.end) break
      const next = this.indentAt(this.pos)
      if (next === -1 || next === 0) {
        if (this.restIsBlank(this.pos)) break
        throw DECLINE // a blank line inside an item marks the next node (spaceBefore)
      }
      if (next < indent) break
      if (next > indent || this.text.startsWith('- ', this.pos + next)) throw DECLINE
      this.pos += next
    }
    map.range = [first, nodeEnd, nodeEnd]
    return map
  }

  /** After `key:` and a newline: a nested block mapping or sequence below, or an empty value. */
  private nested(indent: number): Value {
    const newline = this.pos
    const lineStart = newline + 1
    const next = lineStart < this.end ? this.indentAt(lineStart) : -1
    // an empty value followed by blank lines is marked (spaceBefore) by the yaml package: left to it
    if (next === -1 && lineStart < this.end) throw DECLINE
    if (next >= 0 && this.text[lineStart + next] === '#') throw DECLINE // a comment after an empty value
    const dash = next >= 0 && this.text.startsWith('- ', lineStart + next)
    if (next > indent && !dash) return this.blockMap(next, lineStart + next)
    if (next >= indent && dash) return this.blockSeq(next, lineStart)
    // An empty value: the yaml package places it at the newline.
    const empty = this.scalar('', 'PLAIN', newline, newline, newline)
    this.pos = lineStart
    return empty
  }

  /** `- value` lines at column `indent`, starting with the line at `lineStart`. */
  private blockSeq(indent: number, lineStart: number): YAMLSeq {
    const seq = new YAMLSeq(this.schema)
    const first = lineStart + indent
    let nodeEnd = first
    this.pos = first
    for (;;) {
      this.expect('- ')
      const value = this.inlineValue()
      if (value instanceof YAMLMap && !value.flow) throw DECLINE
      nodeEnd = this.endOfLine(value)
      seq.items.push(value)
      if (this.pos >= this.end) break
      const next = this.indentAt(this.pos)
      if (next === -1 || next === 0) {
        if (this.restIsBlank(this.pos)) break
        throw DECLINE
      }
      if (next !== indent || !this.text.startsWith('- ', this.pos + next)) {
        if (next > indent) throw DECLINE
        break
      }
      this.pos += next
    }
    seq.range = [first, nodeEnd, nodeEnd]
    return seq
  }

  /** After a value on its line: the newline, which belongs to the value's node end. */
  private endOfLine(value: Value): number {
    if (this.pos === this.end) return this.pos // the file's last line, without a newline
    if (this.ch() !== '\n') throw DECLINE
    this.pos++
    const r = value.range!
    value.range = [r[0], r[1], this.pos]
    return this.pos
  }

  /** A mapping key: plain (letters, digits, `_-./`) or quoted. */
  private key(): Scalar {
    const c = this.ch()
    if (c === '"' || c === "'") return this.quoted()
    const s = this.pos
    while (/[A-Za-z0-9_./-]/.test(this.ch())) this.pos++
    if (this.pos === s || c === '-') throw DECLINE
    return this.scalar(this.text.slice(s, this.pos), 'PLAIN', s, this.pos, this.pos)
  }

  /** A value on the rest of the line: quoted, flow collection or plain scalar. */
  private inlineValue(): Value {
    const c = this.ch()
    if (c === '"' || c === "'") return this.quoted()
    if (c === '[') return this.flowSeq()
    if (c === '{') return this.flowMap()
    if (c === '' || c === ' ' || c === '\n' || INDICATOR.has(c)) throw DECLINE
    const s = this.pos
    const nl = this.text.indexOf('\n', s)
    const e = nl < 0 || nl > this.end ? this.end : nl
    const raw = this.text.slice(s, e)
    if (raw.endsWith(' ') || raw.endsWith(':') || raw.includes(': ')) throw DECLINE
    for (let i = 0; i < raw.length; i++) if (FORBIDDEN.has(raw[i]!) || FLOW_INDICATOR.has(raw[i]!)) throw DECLINE
    this.pos = e
    return this.scalar(raw, 'PLAIN', s, e, e)
  }

  /** "…" without escapes, or '…' without a doubled quote, on one line. */
  private quoted(): Scalar {
    const q = this.ch()
    const s = this.pos
    const close = this.text.indexOf(q, s + 1)
    if (close < 0 || close >= this.end) throw DECLINE
    const inner = this.text.slice(s + 1, close)
    if (inner.includes('\n') || (q === '"' && inner.includes('\\')) || (q === "'" && this.ch(close + 1) === "'"))
      throw DECLINE
    this.pos = close + 1
    return this.scalar(inner, q === '"' ? 'QUOTE_DOUBLE' : 'QUOTE_SINGLE', s, this.pos, this.pos)
  }

  /** A scalar inside a flow collection: quoted, or plain without spaces or flow indicators. */
  private flowScalar(): Scalar {
    const c = this.ch()
    if (c === '"' || c === "'") return this.quoted()
    if (c === '' || INDICATOR.has(c) || FLOW_END.has(c)) throw DECLINE
    const s = this.pos
    while (this.pos < this.end && !FLOW_END.has(this.ch())) this.pos++
    const raw = this.text.slice(s, this.pos)
    for (let i = 0; i < raw.length; i++) if (FORBIDDEN.has(raw[i]!)) throw DECLINE
    return this.scalar(raw, 'PLAIN', s, this.pos, this.pos)
  }

  private flowItem(): Value {
    const c = this.ch()
    if (c === '[') return this.flowSeq()
    if (c === '{') return this.flowMap()
    return this.flowScalar()
  }

  /** `[a, "b", {…}]`: items separated by `, `, nothing else. */
  private flowSeq(): YAMLSeq {
    const seq = new YAMLSeq(this.schema)
    seq.flow = true
    const s = this.pos
    this.expect('[')
    if (this.ch() !== ']')
      for (;;) {
        seq.items.push(this.flowItem())
        if (this.ch() === ']') break
        this.expect(', ')
      }
    this.expect(']')
    seq.range = [s, this.pos, this.pos]
    return seq
  }

  /** `{k: v, "k2": [..]}`: pairs `key: value` separated by `, `, nothing else. */
  private flowMap(): YAMLMap {
    const map = new YAMLMap(this.schema)
    map.flow = true
    const s = this.pos
    this.expect('{')
    if (this.ch() !== '}')
      for (;;) {
        const key = this.flowScalar()
        this.expect(': ')
        map.items.push(new Pair(key, this.flowItem()))
        if (this.ch() === '}') break
        this.expect(', ')
      }
    this.expect('}')
    map.range = [s, this.pos, this.pos]
    return map
  }

  private scalar(value: string, type: Scalar.Type, start: number, valueEnd: number, nodeEnd: number): Scalar {
    const node = new Scalar(value)
    node.range = [start, valueEnd, nodeEnd]
    node.source = value
    node.type = type
    return node
  }
}

/**
 * The item text[start, end) (from its `- ` at the left margin to the next item) as the yaml package would compose
 * it — a sequence of one item, ranges in file offsets — or undefined when it is not of the simple shape.
 */
export function parseSimpleItem(text: string, start: number, end: number, schema: Schema): YAMLSeq | undefined {
  try {
    return new Reader(text, start, end, schema).item(start)
  } catch (e) {
    if (e === DECLINE) return undefined
    throw e
  }
}
