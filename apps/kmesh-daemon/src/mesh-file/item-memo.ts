/**
 * Re-reading an edited mesh file without parsing it all again (issue 13: one edit in a 20 MB file re-parsed the
 * whole file). After a clean read (no problem, no warning) the memo keeps the file's text and, for each `- ` item
 * of each section, the resource it became, keyed by the item's exact text. The next read of the file splits it
 * into items (blocks.ts), takes every item whose text is unchanged from the memo — the very same resource object,
 * which also lets the processor skip comparing it — parses only the new or edited items (a small file of just
 * those, parse.ts), and runs the checks across entries over the whole result (cross-check.ts).
 *
 * It answers only when that is certainly what a full read would give: a clean result. Anything else — a layout
 * the item split refuses, more than MAX_REPARSED_ITEMS new items, an edited item that does not read cleanly on its
 * own, any problem or warning from the checks across entries — returns undefined, and the caller reads the file in
 * full as before, so every message, line and refusal is the full reader's.
 */
import { LineCounter } from 'yaml'

import { planBlocks, type SectionName } from './blocks.js'
import { crossCheck, type EntryKey, type ReadConfig, type ReadEntry } from './cross-check.js'
import { EntryLines } from './entry-lines.js'
import type { MeshFileResult } from './entries.js'
import { notEnforced } from './not-enforced.js'
import { parseMeshText } from './parse.js'
import { Sink } from './reader.js'
import type { MeshConfig, Policy, Service, Workload } from '../model/mesh.js'

/** More new or edited items than this: the full reader (in its worker, with its bounds) reads the file. */
export const MAX_REPARSED_ITEMS = 2000

type Resource = Workload | Service | Policy
const SECTIONS: readonly SectionName[] = ['workloads', 'services', 'policies']
const NO_LINES = new EntryLines(undefined, new Map())

/** Section name → item text → the resource that item is. */
type Items = Record<SectionName, Map<string, Resource>>

const keyOf: Record<SectionName, (r: Resource) => string> = {
  workloads: (r) => (r as Workload).uid,
  services: (r) => `${(r as Service).namespace}/${(r as Service).hostname}`,
  policies: (r) => `${(r as Policy).namespace}/${(r as Policy).name}`,
}

export class ItemMemo {
  private constructor(private readonly items: Items) {}

  /**
   * The memo of a clean full read of `text`, or undefined when the read had warnings or the file is not split
   * into items one resource each (then the next read is a full one again).
   */
  static of(text: string, result: MeshFileResult): ItemMemo | undefined {
    if (result.warnings.length > 0 || result.warningsTotal !== undefined) return undefined
    const texts = itemTexts(text)
    if (!texts) return undefined
    const items = emptyItems()
    for (const section of SECTIONS) {
      const values: Resource[] = result.config[section]
      const list = texts[section]
      if (list.length !== values.length) return undefined
      for (let i = 0; i < list.length; i++) items[section].set(list[i]!, values[i]!)
    }
    return new ItemMemo(items)
  }

  /**
   * `text` (the file's new content) read with the memo: the result and the memo for the next read, or undefined
   * when only a full read can say (see the module comment).
   */
  reread(text: string, file: string): { result: MeshFileResult; memo: ItemMemo; parsedItems: number } | undefined {
    const texts = itemTexts(text)
    if (!texts) return undefined
    const next = emptyItems()
    // Per section, the resources in file order; `undefined` holes are the items to parse.
    const order = emptyLists<Resource | undefined>()
    const fresh = emptyLists<string>()
    for (const section of SECTIONS) {
      for (const item of texts[section]) {
        const known = this.items[section].get(item)
        order[section].push(known)
        if (known) next[section].set(item, known)
        else fresh[section].push(item)
      }
    }
    const parsedItems = SECTIONS.reduce((n, s) => n + fresh[s].length, 0)
    const parsed = parseItems(fresh, parsedItems, file)
    if (!parsed) return undefined
    const config: MeshConfig = { workloads: [], services: [], policies: [] }
    for (const section of SECTIONS) {
      let k = 0
      const out: Resource[] = config[section]
      for (const r of order[section]) {
        if (r) out.push(r)
        else {
          const value = parsed[section][k]!
          next[section].set(fresh[section][k]!, value)
          out.push(value)
          k++
        }
      }
    }
    if (!checksClean(config, file)) return undefined
    return {
      result: { config, warnings: [], notEnforced: notEnforced(config) },
      memo: new ItemMemo(next),
      parsedItems,
    }
  }
}

/** Each section's item texts in file order, or undefined if the file is not split into items (or repeats one). */
function itemTexts(text: string): Record<SectionName, string[]> | undefined {
  const plan = planBlocks(text)
  // A file without sections, a section given twice or a `key:` with nothing below it are errors the full reader
  // reports.
  if (!plan.ok || plan.sections.length === 0) return undefined
  const out = emptyLists<string>()
  const seen = new Set<SectionName>()
  for (const section of plan.sections) {
    if (seen.has(section.key)) return undefined
    if (!section.inlineEmpty && section.starts.length === 0) return undefined
    seen.add(section.key)
    for (let i = 0; i < section.starts.length; i++)
      out[section.key].push(text.slice(section.starts[i], section.ends[i]))
  }
  return out
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
function checksClean(config: MeshConfig, file: string): boolean {
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

function emptyItems(): Items {
  return { workloads: new Map(), services: new Map(), policies: new Map() }
}

function emptyLists<T>(): Record<SectionName, T[]> {
  return { workloads: [], services: [], policies: [] }
}
