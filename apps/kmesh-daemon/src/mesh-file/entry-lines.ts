/**
 * The lines of an entry's keys, taken while the entry's YAML nodes are at hand, so the checks across
 * entries (cross-check.ts) can point at a line after the nodes are dropped: the chunked reader keeps
 * no YAML tree of the whole file.
 */
import { isMap, isScalar } from 'yaml'

import type { Sink, YNode } from './reader.js'

/** Mappings whose own keys cross-check.ts points at (`services["ns/x"]`, `endpoints.<uid>`, ...). */
const SECOND_LEVEL: ReadonlySet<string> = new Set(['services', 'endpoints', 'waypoint', 'networkGateway'])

export class EntryLines {
  constructor(
    private readonly entryLine: number | undefined,
    private readonly keys: ReadonlyMap<string, number>,
  ) {}

  /** The line of the deepest key found along `path`, else of the entry itself. */
  at(...path: string[]): number | undefined {
    for (let n = path.length; n > 0; n--) {
      const line = this.keys.get(path.slice(0, n).join('\0'))
      if (line !== undefined) return line
    }
    return this.entryLine
  }
}

export function entryLines(sink: Sink, raw: YNode): EntryLines {
  const node = sink.deref(raw)
  const keys = new Map<string, number>()
  const walk = (map: YNode, prefix: string, deeper: boolean): void => {
    if (!map || !isMap(map)) return
    for (const pair of map.items) {
      const key = sink.deref(pair.key as YNode)
      if (!key || !isScalar(key)) continue
      const name = `${prefix}${String(key.value)}`
      const line = sink.lineOf(key)
      // The first of duplicate keys is the one pointed at (as ztunnel's reading order is irrelevant here).
      if (line !== undefined && !keys.has(name)) keys.set(name, line)
      if (deeper && SECOND_LEVEL.has(String(key.value))) walk(sink.deref(pair.value as YNode), `${name}\0`, false)
    }
  }
  walk(node, '', true)
  return new EntryLines(sink.lineOf(node), keys)
}
