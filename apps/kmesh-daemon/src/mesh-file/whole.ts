/** Reading a mesh file composed as one YAML document: any layout, anchors and aliases, up to a size bound. */
import { isScalar, parseAllDocuments, type Document, type LineCounter } from 'yaml'

import { MAX_NESTING } from './bounds.js'
import {
  blankFile,
  blankSection,
  ConfigBuilder,
  READ_ORDER,
  TOP_LEVEL,
  type MeshFileResult,
  type ReaderOptions,
} from './entries.js'
import { MeshFileError } from './problems.js'
import { At, readSeq, readStruct, Sink, type YNode } from './reader.js'
import { isNullText, TAG_NULL } from './scalars.js'
import { isStackOverflow, YAML_OPTIONS } from './yaml-options.js'

export function nestingError(file: string, line: number | undefined): MeshFileError {
  const p = {
    file,
    entry: 'YAML syntax',
    key: '',
    message: `nesting deeper than ${MAX_NESTING} levels; a mesh file needs about 10`,
  }
  return new MeshFileError([line === undefined ? p : { ...p, line }])
}

/** `~`, `null`, an empty value: null to serde_yaml. */
export function isNullNode(node: YNode): boolean {
  if (node === null || node === undefined) return true
  if (!isScalar(node)) return false
  const plain = node.type === 'PLAIN' || node.type === undefined
  if (node.tag === TAG_NULL) return true
  return plain && !node.tag && isNullText(String(node.value ?? ''))
}

export function parseWhole(
  text: string,
  file: string,
  lines: LineCounter,
  options: ReaderOptions = {},
): MeshFileResult {
  let docs: Document.Parsed[]
  try {
    docs = parseAllDocuments(text, YAML_OPTIONS) as Document.Parsed[]
  } catch (err) {
    if (err instanceof RangeError) throw nestingError(file, undefined)
    throw err
  }
  const first = docs[0] as Document.Parsed | undefined
  const sink = new Sink(file, text, first, lines)

  for (const doc of docs) {
    for (const e of doc.errors) {
      if (isStackOverflow(e.message)) throw nestingError(file, sink.lineAt(e.pos[0]))
      sink.addAtLine('error', 'YAML syntax', '', e.message.split('\n')[0] ?? e.message, sink.lineAt(e.pos[0]))
    }
  }
  if (sink.errorCount > 0) throw new MeshFileError(sink.errors, { total: sink.errorCount })

  if (docs.length > 1) {
    const second = docs[1] as Document.Parsed
    sink.addAtLine(
      'error',
      'top level',
      '',
      `the file holds ${docs.length} YAML documents; a mesh file is exactly one (ztunnel: deserializing from ` +
        `YAML containing more than one document is not supported)`,
      sink.lineOf(second.contents ?? undefined) ?? sink.lineAt(second.range[0]),
    )
    throw new MeshFileError(sink.errors)
  }

  if (!first || isNullNode(first.contents)) {
    blankFile(sink, first ? (sink.lineOf(first.contents ?? undefined) ?? sink.lineAt(first.range[0])) : 1)
    throw new MeshFileError(sink.errors)
  }

  const top = new At(sink, 'top level', '', false, first.contents ?? undefined)
  const f = readStruct(top, first.contents ?? null, {
    fields: TOP_LEVEL,
    unknown: 'reject',
    hints: {
      authorizationPolicies: 'the top-level key is `policies`',
      workload: 'write `workloads`',
      service: 'write `services`',
    },
  })
  const builder = new ConfigBuilder(sink, options)
  for (const key of f ? READ_ORDER : []) {
    const e = f?.get(key)
    if (!e) continue
    if (isNullNode(sink.deref(e.value))) {
      blankSection(sink, key, sink.lineOf(e.keyNode))
      continue
    }
    const items = readSeq(top.field(key, e.keyNode), e.value)
    let offset = 0
    let end = sink.deref(e.value)?.range?.[0] ?? 0
    for (const [i, item] of (items ?? []).entries()) {
      const range = sink.deref(item)?.range
      offset = range?.[0] ?? offset
      if (builder.shouldStop(offset)) break
      // An empty item has no position: its `- ` is the next one after the previous item.
      const dash = /-(?=[ \r\n]|$)/g
      dash.lastIndex = end
      const m = range ? undefined : dash.exec(text)
      builder.item(key, i, item, m ? sink.lineAt(m.index) : undefined)
      if (range) end = range[1]
      else if (m) end = m.index + 1
    }
  }
  return builder.finish()
}
