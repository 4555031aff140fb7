/**
 * The local mesh file: ztunnel's local config (`LOCAL_XDS_PATH`), read with the same meaning ztunnel
 * gives it, and stricter where ztunnel silently ignores or misreads (reference/local-config.md).
 */
import { readFile } from 'node:fs/promises'

import { LineCounter, parseAllDocuments, type Document } from 'yaml'

import { crossCheck, type EntryKey, type ReadConfig, type ReadEntry } from './cross-check.js'
import { notEnforced } from './not-enforced.js'
import { policyLabel, readPolicy } from './policy.js'
import { MeshFileError, type MeshFileProblem } from './problems.js'
import { At, rawText, readSeq, readStruct, Sink, type YNode } from './reader.js'
import { readService, serviceLabel } from './service.js'
import type { MeshConfig } from './types.js'
import { readWorkload, workloadLabel } from './workload.js'
import { YAML_TAGS } from './yaml-tags.js'

export { MeshFileError, formatProblem, type MeshFileProblem } from './problems.js'
export { MAX_SERVICE_PORTS, MAX_SERVICES_PER_WORKLOAD } from './limits.js'
export type * from './types.js'

export interface MeshFileResult {
  config: MeshConfig
  /** Accepted, but probably not what was meant (dangling references and the like). */
  warnings: MeshFileProblem[]
  /** Human-readable: fields present in the file that the data path does not act on yet. */
  notEnforced: string[]
}

const TOP_LEVEL = ['workloads', 'policies', 'services'] as const

function byLine(a: MeshFileProblem, b: MeshFileProblem): number {
  return (a.line ?? Number.MAX_SAFE_INTEGER) - (b.line ?? Number.MAX_SAFE_INTEGER)
}

/**
 * Parses the text of a mesh file. Throws a {@link MeshFileError} listing every problem; a file with
 * problems yields no config at all, so the caller keeps its previous good state.
 */
export function parseMeshFile(text: string, file: string): MeshFileResult {
  const lines = new LineCounter()
  // Failsafe schema: every scalar stays a string and scalars.ts types it as serde_yaml would.
  const docs = parseAllDocuments(text, {
    schema: 'failsafe',
    customTags: YAML_TAGS,
    uniqueKeys: false, // duplicates are reported by reader.ts with the entry and key
    merge: false,
    lineCounter: lines,
    prettyErrors: false,
  })
  const first = docs[0] as Document.Parsed | undefined
  const sink = new Sink(file, text, first, lines)
  const config: MeshConfig = { workloads: [], services: [], policies: [] }

  for (const doc of docs) {
    for (const e of doc.errors) {
      const p: MeshFileProblem = { file, entry: 'YAML syntax', key: '', message: e.message.split('\n')[0] ?? e.message }
      p.line = sink.lineAt(e.pos[0])
      sink.errors.push(p)
    }
  }
  if (sink.errors.length > 0) throw new MeshFileError(sink.errors)

  if (docs.length > 1) {
    const second = docs[1] as Document.Parsed
    sink.add(
      'error',
      'top level',
      '',
      `the file holds ${docs.length} YAML documents; a mesh file is exactly one (ztunnel: deserializing from ` +
        `YAML containing more than one document is not supported)`,
      second.contents ?? undefined,
    )
    if (sink.lineOf(second.contents ?? undefined) === undefined) {
      const last = sink.errors[sink.errors.length - 1]
      if (last) last.line = sink.lineAt(second.range[0])
    }
    throw new MeshFileError(sink.errors)
  }

  if (!first) {
    // serde_yaml reads an empty stream as an empty mapping, so ztunnel starts with nothing in it.
    sink.add('warning', 'top level', '', 'the file holds no YAML document; it is read as an empty mesh ({})')
    return { config, warnings: sink.warnings, notEnforced: [] }
  }

  const top = new At(sink, 'top level', '', false, first.contents ?? undefined)
  const f = readStruct(top, first.contents ?? null, {
    fields: TOP_LEVEL,
    unknown: 'reject',
    hints: { authorizationPolicies: 'the top-level key is `policies`', workload: 'write `workloads`', service: 'write `services`' },
  })
  const rc: ReadConfig = {
    workloads: [],
    services: [],
    policies: [],
    keys: { workloads: [], services: [], policies: [] },
  }
  const pairKey = (node: YNode, a: string, b: string): string | undefined => {
    const x = rawText(sink, node, a)
    const y = rawText(sink, node, b)
    return x === undefined || y === undefined ? undefined : `${x}/${y}`
  }
  if (f) {
    const list = <T>(
      key: (typeof TOP_LEVEL)[number],
      read: (sink: Sink, i: number, node: YNode) => T | undefined,
      label: (sink: Sink, i: number, node: YNode) => string,
      into: ReadEntry<T>[],
      keyOf: (node: YNode) => string | undefined,
      keys: EntryKey[],
    ): void => {
      const e = f.get(key)
      if (!e) return
      const items = readSeq(top.field(key, e.keyNode), e.value)
      items?.forEach((item, i) => {
        const entry = label(sink, i, item)
        const node = sink.deref(item)
        keys.push({ key: keyOf(node), entry, node })
        const value = read(sink, i, item)
        if (value !== undefined) into.push({ value, index: i, entry, node })
      })
    }
    list('workloads', readWorkload, workloadLabel, rc.workloads, (n) => rawText(sink, n, 'uid'), rc.keys.workloads)
    list('services', readService, serviceLabel, rc.services, (n) => pairKey(n, 'namespace', 'hostname'), rc.keys.services)
    list('policies', readPolicy, policyLabel, rc.policies, (n) => pairKey(n, 'namespace', 'name'), rc.keys.policies)
  }
  crossCheck(sink, rc)

  if (sink.errors.length > 0) throw new MeshFileError([...sink.errors].sort(byLine))
  config.workloads = rc.workloads.map((e) => e.value)
  config.services = rc.services.map((e) => e.value)
  config.policies = rc.policies.map((e) => e.value)
  return { config, warnings: [...sink.warnings].sort(byLine), notEnforced: notEnforced(config) }
}

/** Reads and parses a mesh file. A file that cannot be read is a {@link MeshFileError} too (errno in the message). */
export async function readMeshFile(path: string): Promise<MeshFileResult> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    throw new MeshFileError([{ file: path, entry: 'file', key: '', message: `cannot read: ${e.code ?? 'error'}: ${e.message}` }], {
      cause: err,
    })
  }
  return parseMeshFile(text, path)
}
