/**
 * Reading a block-style mesh file entry by entry (layout checked by blocks.ts): each `- ` item is parsed
 * alone, its node ranges moved to file offsets so lines and problems are as in the whole document, read,
 * and its tree dropped. Memory stays near the size of the result, and reading stops at the problem cap.
 */
import { Document, isNode, isSeq, parseDocument, visit, type LineCounter } from 'yaml'

import { parseSimpleItem } from './fast-item.js'

import type { BlockPlan } from './blocks.js'
import { MAX_WHOLE_PARSE_BYTES } from './bounds.js'
import {
  blankFile,
  blankSection,
  ConfigBuilder,
  READ_ORDER,
  type MeshFileResult,
  type ReaderOptions,
} from './entries.js'
import { MeshFileError } from './problems.js'
import { Sink, type YNode } from './reader.js'
import { nestingError } from './whole.js'
import { isStackOverflow, YAML_OPTIONS } from './yaml-options.js'

/** The whole-document reader gives the exact result here (a syntax error, or an entry that did not split). */
export const FALLBACK = Symbol('read the whole document')

type Plan = Extract<BlockPlan, { ok: true }>

export function parseChunked(
  text: string,
  file: string,
  lines: LineCounter,
  plan: Plan,
  options: ReaderOptions = {},
): MeshFileResult | typeof FALLBACK {
  // The whole reader's syntax messages see the entry in context; ours only as far as the entry goes.
  const canFallBack = text.length <= MAX_WHOLE_PARSE_BYTES
  const sink = new Sink(file, text, undefined, lines)
  if (plan.sections.length === 0) {
    blankFile(sink, 1)
    throw new MeshFileError(sink.errors)
  }
  const syntax = new Sink(file, text, undefined, lines)
  const builder = new ConfigBuilder(sink, options)
  const schema = new Document(null, YAML_OPTIONS).schema

  // As the whole reader's readStruct: a repeated top-level key is refused and its list not read.
  const first = new Map<string, (typeof plan.sections)[number]>()
  for (const s of plan.sections) {
    if (first.has(s.key)) sink.addAtLine('error', 'top level', s.key, `duplicate key \`${s.key}\``, s.keyLine)
    else first.set(s.key, s)
  }
  const order = [
    ...READ_ORDER.flatMap((k) => plan.sections.filter((s) => s === first.get(k))),
    ...plan.sections.filter((s) => first.get(s.key) !== s),
  ]

  for (const section of order) {
    const read = first.get(section.key) === section
    if (read && !section.inlineEmpty && section.starts.length === 0) blankSection(sink, section.key, section.keyLine)
    for (let i = 0; i < section.starts.length; i++) {
      const start = section.starts[i] as number
      const end = section.ends[i] as number
      if (syntax.errorCount === 0 && builder.shouldStop(start)) break
      if (syntax.full) break
      // Items of the usual simple shapes are read by fast-item.ts into the same nodes; the rest by the yaml package.
      const simple = read && syntax.errorCount === 0 ? parseSimpleItem(text, start, end, schema) : undefined
      if (simple) {
        sink.useDoc(undefined)
        builder.item(section.key, i, simple.items[0] as YNode, sink.lineAt(start))
        continue
      }
      const doc = parseDocument(text.slice(start, end), YAML_OPTIONS)
      visit(doc, (_, node) => {
        if (isNode(node) && node.range)
          node.range = [node.range[0] + start, node.range[1] + start, node.range[2] + start]
      })
      const seq = doc.contents
      if (doc.errors.length > 0 || !isSeq(seq) || seq.items.length !== 1) {
        if (canFallBack) return FALLBACK
        for (const e of doc.errors) {
          if (isStackOverflow(e.message)) throw nestingError(file, syntax.lineAt(e.pos[0] + start))
          syntax.addAtLine(
            'error',
            'YAML syntax',
            '',
            e.message.split('\n')[0] ?? e.message,
            syntax.lineAt(e.pos[0] + start),
          )
        }
        if (doc.errors.length === 0) {
          syntax.addAtLine(
            'error',
            'YAML syntax',
            '',
            'this list item could not be read on its own',
            syntax.lineAt(start),
          )
        }
        continue
      }
      if (!read || syntax.errorCount > 0) continue
      sink.useDoc(doc)
      builder.item(section.key, i, seq.items[0], sink.lineAt(start))
    }
  }
  sink.useDoc(undefined)
  // As the whole reader: syntax errors alone, since the rest of the file was not read as meant.
  if (syntax.errorCount > 0)
    throw new MeshFileError(syntax.errors, { total: syntax.errorCount, totalIsLowerBound: syntax.full })
  return builder.finish()
}
