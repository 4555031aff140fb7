/**
 * Re-reading an edited mesh file without parsing or checking it all again (issue 13: one edit in a 20 MB file
 * re-read the whole file). After a clean read (no problem, no warning) the memo keeps the file's text, where each
 * `- ` item of each section starts and ends (blocks.ts), the resource each item became, and an index of what the
 * checks across entries count (clean-index.ts).
 *
 * The next read compares the new text with the old one from both ends: an edit inside the items of one section
 * changes only the span of items around it. Those items are split again (blocks.ts, on the span alone), items
 * whose text is unchanged keep their resource — the very same object, which also lets the processor skip
 * comparing it — the new or edited ones are parsed as a small file of their own (parse.ts), and the index
 * answers whether the file still passes the checks across entries, or runs them (cross-check.ts) where it cannot
 * say. An edit the span does not cover (a section added, items moved across sections) splits the whole file and
 * matches items by their text, then runs the checks over the whole result.
 *
 * It answers only when that is certainly what a full read would give: a clean result. Anything else — a layout
 * the item split refuses, more than MAX_REPARSED_ITEMS new items, an edited item that does not read cleanly on its
 * own, any problem or warning from the checks across entries — returns undefined, and the caller reads the file in
 * full as before, so every message, line and refusal is the full reader's.
 */
import { LineCounter } from 'yaml'

import { planBlocks, type SectionName } from './blocks.js'
import { CleanIndex, type EntryDelta } from './clean-index.js'
import { crossCheck, type EntryKey, type ReadConfig, type ReadEntry } from './cross-check.js'
import { EntryLines } from './entry-lines.js'
import type { MeshFileResult } from './entries.js'
import { notEnforced } from './not-enforced.js'
import { parseMeshText } from './parse.js'
import { Sink } from './reader.js'
import { policyKeyOf, serviceKeyOf } from '../model/keys.js'
import type { MeshConfig, Policy, Service, Workload } from '../model/mesh.js'

/** More new or edited items than this: the full reader (in its worker, with its bounds) reads the file. */
export const MAX_REPARSED_ITEMS = 2000

type Resource = Workload | Service | Policy
const SECTIONS: readonly SectionName[] = ['workloads', 'services', 'policies']
const NO_LINES = new EntryLines(undefined, new Map())

/** Where a section's items are in the text (blocks.ts); the memo's config holds their resources in the same order. */
interface SectionItems {
  key: SectionName
  starts: number[]
  ends: number[]
}

const keyOf: Record<SectionName, (r: Resource) => string> = {
  workloads: (r) => (r as Workload).uid,
  services: (r) => serviceKeyOf(r as Service),
  policies: (r) => policyKeyOf(r as Policy),
}

/** How the memo answered: nothing changed, a span of one section's items, or the whole file split into items. */
export type RereadHow = 'unchanged' | 'span' | 'items'
type Reread = {
  result: MeshFileResult
  memo: ItemMemo
  parsedItems: number
  how: RereadHow
  /** what the edit took out and put in, against the memo's file (not known when the whole file was split) */
  edit?: EntryDelta | undefined
}

export class ItemMemo {
  private constructor(
    private readonly text: string,
    /** the file's sections in file order */
    private readonly sections: readonly SectionItems[],
    /** per section, the resources of its items in file order (never changed: memos share its lists) */
    private readonly config: MeshConfig,
    /** shared along a chain of memos; it describes the file of the memo it names as its owner */
    private readonly index: IndexHolder,
  ) {
    index.owner = this
  }

  /**
   * The memo of a clean full read of `text`, or undefined when the read had warnings or the file is not split
   * into items one resource each (then the next read is a full one again).
   */
  static of(text: string, result: MeshFileResult): ItemMemo | undefined {
    if (result.warnings.length > 0 || result.warningsTotal !== undefined) return undefined
    const sections = itemLayout(text)
    if (!sections) return undefined
    for (const section of sections) if (section.starts.length !== result.config[section.key].length) return undefined
    for (const key of SECTIONS) {
      if (!sections.some((s) => s.key === key) && result.config[key].length > 0) return undefined
    }
    const config = copyConfig(result.config)
    return new ItemMemo(text, sections, config, { index: indexOf(config), owner: undefined })
  }

  /**
   * `text` (the file's new content) read with the memo: the result and the memo for the next read, or undefined
   * when only a full read can say (see the module comment).
   */
  reread(text: string, file: string): Reread | undefined {
    // A memo whose successor's result was not applied (the caller kept this one): its index moved on.
    if (this.index.owner !== this) {
      this.index.index = indexOf(this.config)
      this.index.owner = this
    }
    const edit = editSpan(this.text, text, this.sections)
    if (edit === 'unchanged') return this.answer(text, this.sections, this.config, 0, 'unchanged', emptyDelta())
    if (edit) return this.rereadSpan(text, file, edit)
    return this.rereadAll(text, file)
  }

  /** The edit lies within the items of one section: re-split, re-parse and re-check only those. */
  private rereadSpan(text: string, file: string, edit: Span): Reread | undefined {
    const { section, first, last, items } = edit
    const old = this.config[section.key] as Resource[]
    // The span's old items by their text, to keep the ones the edit left as they were.
    const kept = new Map<string, Resource[]>()
    for (let i = first; i <= last; i++) {
      const item = this.text.slice(section.starts[i], section.ends[i])
      const list = kept.get(item)
      if (list) list.push(old[i]!)
      else kept.set(item, [old[i]!])
    }
    const order: (Resource | undefined)[] = []
    const fresh = emptyLists<string>()
    const reused = new Set<Resource>()
    for (const item of items.texts) {
      const known = kept.get(item)?.pop()
      order.push(known)
      if (known) reused.add(known)
      else fresh[section.key].push(item)
    }
    const parsedItems = fresh[section.key].length
    const parsed = parseItems(fresh, parsedItems, file)
    if (!parsed) return undefined
    let k = 0
    const spanResources = order.map((r) => r ?? parsed[section.key][k++]!)
    const config: MeshConfig = {
      ...this.config,
      [section.key]: [...old.slice(0, first), ...spanResources, ...old.slice(last + 1)],
    }
    const delta = emptyDelta()
    const removed: Resource[] = delta[section.key].removed as Resource[]
    for (let i = first; i <= last; i++) if (!reused.has(old[i]!)) removed.push(old[i]!)
    ;(delta[section.key].added as Resource[]).push(...parsed[section.key])
    const index = this.index.index
    const verdict = index.apply(delta)
    if (verdict === 'dirty' || (verdict === 'unsure' && !checksClean(config, file))) {
      index.revert(delta)
      return undefined
    }
    return this.answer(text, shiftedLayout(this.sections, edit), config, parsedItems, 'span', delta)
  }

  /** Any other edit: the whole file split into items, matched to the old ones by their text, checked whole. */
  private rereadAll(text: string, file: string): Reread | undefined {
    const sections = itemLayout(text)
    if (!sections) return undefined
    // An item's resource is kept only in its own section: the same text reads as another kind elsewhere.
    const known: Record<SectionName, Map<string, Resource>> = {
      workloads: new Map(),
      services: new Map(),
      policies: new Map(),
    }
    for (const section of this.sections) {
      const values = this.config[section.key] as Resource[]
      for (let i = 0; i < section.starts.length; i++)
        known[section.key].set(this.text.slice(section.starts[i], section.ends[i]), values[i]!)
    }
    // Per section, the resources in file order; `undefined` holes are the items to parse.
    const order = emptyLists<Resource | undefined>()
    const fresh = emptyLists<string>()
    for (const section of sections) {
      for (let i = 0; i < section.starts.length; i++) {
        const item = text.slice(section.starts[i], section.ends[i])
        const r = known[section.key].get(item)
        order[section.key].push(r)
        if (!r) fresh[section.key].push(item)
      }
    }
    const parsedItems = SECTIONS.reduce((n, s) => n + fresh[s].length, 0)
    const parsed = parseItems(fresh, parsedItems, file)
    if (!parsed) return undefined
    const config: MeshConfig = { workloads: [], services: [], policies: [] }
    for (const key of SECTIONS) {
      let k = 0
      const out: Resource[] = config[key]
      for (const r of order[key]) out.push(r ?? parsed[key][k++]!)
    }
    if (!checksClean(config, file)) return undefined
    this.index.index = indexOf(config)
    return this.answer(text, sections, config, parsedItems, 'items')
  }

  private answer(
    text: string,
    sections: readonly SectionItems[],
    config: MeshConfig,
    parsedItems: number,
    how: RereadHow,
    edit?: EntryDelta,
  ): Reread {
    return {
      how,
      edit,
      result: { config: copyConfig(config), warnings: [], notEnforced: notEnforced(config) },
      memo: new ItemMemo(text, sections, config, this.index),
      parsedItems,
    }
  }
}

interface IndexHolder {
  index: CleanIndex
  owner: ItemMemo | undefined
}

const indexOf = (c: MeshConfig): CleanIndex => new CleanIndex(c.workloads, c.services, c.policies)

/** The edited span: items `first`..`last` of `section` in the old text are the new text's `items`. */
interface Span {
  section: SectionItems
  first: number
  last: number
  /** how much longer the new text is */
  delta: number
  /** the span's items in the new text: offsets and texts */
  items: { starts: number[]; ends: number[]; texts: string[] }
}

/** Longest common prefix (`fromEnd`: suffix) of two strings, at most `limit` long, compared a block at a time. */
function common(a: string, b: string, limit: number, fromEnd: boolean): number {
  const BLOCK = 4096
  const at = (s: string, n: number, len: number): string =>
    fromEnd ? s.slice(s.length - n - len, s.length - n) : s.slice(n, n + len)
  let n = 0
  while (n + BLOCK <= limit && at(a, n, BLOCK) === at(b, n, BLOCK)) n += BLOCK
  const ca = (s: string, i: number): number => s.charCodeAt(fromEnd ? s.length - 1 - i : i)
  while (n < limit && ca(a, n) === ca(b, n)) n++
  return n
}

/**
 * Where `text` differs from `old`, as a span of items of one section in both (edges included: an edit at an
 * item's edge may extend or split it), or 'unchanged', or undefined when the edit is not inside one section's
 * items or the span does not split into items as it would within the whole file.
 */
function editSpan(old: string, text: string, sections: readonly SectionItems[]): Span | 'unchanged' | undefined {
  const limit = Math.min(old.length, text.length)
  const prefix = common(old, text, limit, false)
  if (prefix === old.length && old.length === text.length) return 'unchanged'
  const suffix = common(old, text, limit - prefix, true)
  const oldEnd = old.length - suffix
  const section = sections.find(
    (s) => s.starts.length > 0 && s.starts[0]! <= prefix && oldEnd <= s.ends[s.ends.length - 1]!,
  )
  if (!section) return undefined
  const first = firstIndex(section.ends, (end) => end >= prefix)
  const last = firstIndex(section.starts, (start) => start > oldEnd) - 1
  const delta = text.length - old.length
  const from = section.starts[first]!
  const to = section.ends[last]! + delta
  // The span ends where the old one did: the start of a line (an item, a section or the end of the file).
  if (to !== text.length && text.charCodeAt(to - 1) !== 10) return undefined
  const head = `${section.key}:\n`
  const plan = planBlocks(head + text.slice(from, to))
  if (!plan.ok || plan.sections.length !== 1) return undefined
  const items = plan.sections[0]!
  if (items.inlineEmpty || items.starts.length === 0) return undefined
  // Anything before the span's first item would belong to the item before the span; its indentation must be the
  // section's, which the items before the span set.
  if (first > 0 && items.starts[0] !== head.length) return undefined
  if (indentAt(text, from + items.starts[0]! - head.length) !== indentAt(old, section.starts[0]!)) return undefined
  const shift = from - head.length
  const starts = items.starts.map((s) => s + shift)
  const ends = items.ends.map((e) => e + shift)
  return {
    section,
    first,
    last,
    delta,
    items: { starts, ends, texts: starts.map((s, i) => text.slice(s, ends[i])) },
  }
}

function indentAt(text: string, at: number): number {
  let i = at
  while (text.charCodeAt(i) === 32) i++
  return i - at
}

/** The first index whose value satisfies `ok` (monotone: false then true), or the length. */
function firstIndex(values: readonly number[], ok: (v: number) => boolean): number {
  let lo = 0
  let hi = values.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (ok(values[mid]!)) hi = mid
    else lo = mid + 1
  }
  return lo
}

/** The old layout with the span's items replaced and everything after it moved by the edit's length. */
function shiftedLayout(sections: readonly SectionItems[], edit: Span): SectionItems[] {
  const at = sections.indexOf(edit.section)
  const moved = (list: readonly number[], from: number): number[] => {
    const out = list.slice(from)
    for (let i = 0; i < out.length; i++) out[i]! += edit.delta
    return out
  }
  return sections.map((s, i) => {
    if (i < at) return s
    if (i > at) return { key: s.key, starts: moved(s.starts, 0), ends: moved(s.ends, 0) }
    return {
      key: s.key,
      starts: [...s.starts.slice(0, edit.first), ...edit.items.starts, ...moved(s.starts, edit.last + 1)],
      ends: [...s.ends.slice(0, edit.first), ...edit.items.ends, ...moved(s.ends, edit.last + 1)],
    }
  })
}

/** Each section's items in file order, or undefined if the file is not split into items (or repeats a section). */
function itemLayout(text: string): SectionItems[] | undefined {
  const plan = planBlocks(text)
  // A file without sections, a section given twice or a `key:` with nothing below it are errors the full reader
  // reports.
  if (!plan.ok || plan.sections.length === 0) return undefined
  const seen = new Set<SectionName>()
  const out: SectionItems[] = []
  for (const section of plan.sections) {
    if (seen.has(section.key)) return undefined
    if (!section.inlineEmpty && section.starts.length === 0) return undefined
    seen.add(section.key)
    out.push({ key: section.key, starts: section.starts, ends: section.ends })
  }
  return out
}

function copyConfig(c: MeshConfig): MeshConfig {
  return { workloads: c.workloads.slice(), services: c.services.slice(), policies: c.policies.slice() }
}

function emptyDelta(): EntryDelta {
  return {
    workloads: { removed: [], added: [] },
    services: { removed: [], added: [] },
    policies: { removed: [], added: [] },
  }
}

/**
 * The new or edited items, read as a small file of their own: their resources per section in the same order, or
 * undefined if there are too many (`count` of them) or one does not read cleanly (a problem or a warning).
 */
function parseItems(
  fresh: Record<SectionName, string[]>,
  count: number,
  file: string,
): Record<SectionName, Resource[]> | undefined {
  if (count > MAX_REPARSED_ITEMS) return undefined
  if (count === 0) return { workloads: [], services: [], policies: [] }
  const parts: string[] = []
  for (const section of SECTIONS) {
    if (fresh[section].length === 0) continue
    parts.push(`${section}:\n`)
    for (const item of fresh[section]) parts.push(item.endsWith('\n') ? item : `${item}\n`)
  }
  // Read as the full reader reads each entry, without its checks across entries: the items are not the whole file
  // (they name services and workloads that are not among them); checksClean runs those over the whole result.
  const { result } = parseMeshText(parts.join(''), file, 'auto', { crossCheck: false })
  if (!result || result.warnings.length > 0) return undefined
  for (const section of SECTIONS) if (result.config[section].length !== fresh[section].length) return undefined
  return result.config
}

/** The checks across entries over the whole config; true when they find nothing at all. */
export function checksClean(config: MeshConfig, file: string): boolean {
  const rc: ReadConfig = {
    workloads: entries(config.workloads, 'workloads'),
    services: entries(config.services, 'services'),
    policies: entries(config.policies, 'policies'),
    keys: {
      workloads: keys(config.workloads, 'workloads'),
      services: keys(config.services, 'services'),
      policies: keys(config.policies, 'policies'),
    },
  }
  const sink = new Sink(file, '', undefined, new LineCounter())
  crossCheck(sink, rc)
  return sink.errorCount === 0 && sink.warningCount === 0
}

function entries<T extends Resource>(values: T[], section: SectionName): ReadEntry<T>[] {
  return values.map((value, index) => ({ value, index, entry: `${section}[${index}]`, lines: NO_LINES }))
}

function keys(values: Resource[], section: SectionName): EntryKey[] {
  return values.map((r, index) => ({ key: keyOf[section](r), entry: `${section}[${index}]`, lines: NO_LINES }))
}

function emptyLists<T>(): Record<SectionName, T[]> {
  return { workloads: [], services: [], policies: [] }
}
