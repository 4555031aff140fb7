/**
 * From text (or bytes) to a MeshFileResult: the bounds that hold before any YAML is parsed, then the
 * chunked reader when the layout allows it, else the whole-document reader up to its size bound.
 */
import { LineCounter } from 'yaml'

import { planBlocks } from './blocks.js'
import { MAX_NESTING, MAX_WHOLE_PARSE_BYTES, sizeText } from './bounds.js'
import { FALLBACK, parseChunked } from './chunked.js'
import { decodeMeshBytes } from './decode.js'
import type { MeshFileResult, ReaderOptions } from './entries.js'
import { findDeepNesting } from './nesting.js'
import { MeshFileError } from './problems.js'
import { nestingError, parseWhole } from './whole.js'

export type Route = 'chunked' | 'whole'

function lineCounter(text: string): LineCounter {
  const lines = new LineCounter()
  lines.addNewLine(0)
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lines.addNewLine(i + 1)
  return lines
}

function lineOf(lines: LineCounter, offset: number): number {
  return lines.linePos(offset).line
}

/**
 * Parses, and says which reader gave the answer. `whole` forces the whole-document reader (for tests
 * that check both readers agree); `auto` is what parseMeshFile does.
 */
export function parseMeshText(
  input: string | Uint8Array,
  file: string,
  mode: 'auto' | 'whole' = 'auto',
  options: ReaderOptions = {},
): { route: Route; result?: MeshFileResult; error?: MeshFileError } {
  let route: Route = 'whole'
  try {
    const text = typeof input === 'string' ? input : decodeMeshBytes(input, file)
    const lines = lineCounter(text)
    const deep = findDeepNesting(text, MAX_NESTING)
    if (deep !== undefined) throw nestingError(file, lineOf(lines, deep))
    const plan = mode === 'auto' ? planBlocks(text) : undefined
    if (plan?.ok) {
      route = 'chunked'
      const r = parseChunked(text, file, lines, plan, options)
      if (r !== FALLBACK) return { route, result: r }
      route = 'whole'
    }
    if (text.length > MAX_WHOLE_PARSE_BYTES) {
      throw new MeshFileError([
        {
          file,
          entry: 'file',
          key: '',
          line: plan && !plan.ok ? Number(/^line (\d+)/.exec(plan.reason)?.[1] ?? 1) : 1,
          message:
            `the file is ${sizeText(text.length)}; above ${sizeText(MAX_WHOLE_PARSE_BYTES)} a mesh file is read entry by entry, ` +
            `which needs block style without anchors or aliases: only \`workloads:\`, \`services:\`, \`policies:\` ` +
            `at the left margin, each with its \`- \` items below it` +
            (plan && !plan.ok ? ` (found ${plan.reason.replace(/^line \d+: /, '')})` : ''),
        },
      ])
    }
    return { route, result: parseWhole(text, file, lines, options) }
  } catch (err) {
    if (err instanceof MeshFileError) return { route, error: err }
    throw err
  }
}
