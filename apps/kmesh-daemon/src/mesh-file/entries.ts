/**
 * Reading the entries of the three top-level lists into a config, shared by the whole-document and the
 * chunked reader so that both give the same result: same problems, same order, same lines.
 */
import { COUNT_THROUGH_BYTES } from './bounds.js'
import { CleanIndex } from './clean-index.js'
import { crossCheck, type ReadConfig } from './cross-check.js'
import { entryLines } from './entry-lines.js'
import { notEnforced } from './not-enforced.js'
import { policyLabel, readPolicy } from './policy.js'
import { MeshFileError, type MeshFileProblem } from './problems.js'
import { rawText, type Sink, type YNode } from './reader.js'
import { readService, serviceLabel } from './service.js'
import type { MeshConfig } from '../model/mesh.js'
import { readWorkload, workloadLabel } from './workload.js'
import type { SectionName } from './blocks.js'

export interface MeshFileResult {
  config: MeshConfig
  /** Accepted, but probably not what was meant (dangling references and the like). At most 1,000. */
  warnings: MeshFileProblem[]
  /** Set only when more than 1,000 warnings were found: how many in all. */
  warningsTotal?: number
  /** Human-readable: fields present in the file that the data path does not act on yet. */
  notEnforced: string[]
}

/** Top-level keys, in the order named in messages. */
export const TOP_LEVEL = ['workloads', 'policies', 'services'] as const
/** The order sections are read in (workloads first, as ztunnel inserts them). */
export const READ_ORDER: readonly SectionName[] = ['workloads', 'services', 'policies']

const EXPLICIT_EMPTY = 'an intentionally empty mesh is written explicitly: `workloads: []` and `services: []`'

/** An empty file, only comments, or a null document. */
export function blankFile(sink: Sink, line: number): void {
  sink.addAtLine(
    'error',
    'top level',
    '',
    `the file holds no mesh (it is empty, only comments, or null); ${EXPLICIT_EMPTY}`,
    line,
  )
}

/** `workloads:` with nothing under it: more likely a lost list than a wish for none. */
export function blankSection(sink: Sink, key: SectionName, line: number | undefined): void {
  sink.addAtLine(
    'error',
    'top level',
    key,
    `\`${key}:\` has no value (null); write \`${key}: []\` for none (${EXPLICIT_EMPTY})`,
    line,
  )
}

function byLine(a: MeshFileProblem, b: MeshFileProblem): number {
  return (a.line ?? Number.MAX_SAFE_INTEGER) - (b.line ?? Number.MAX_SAFE_INTEGER)
}

const pairKey = (sink: Sink, node: YNode, a: string, b: string): string | undefined => {
  const x = rawText(sink, node, a)
  const y = rawText(sink, node, b)
  return x === undefined || y === undefined ? undefined : `${x}/${y}`
}

/** How a file is read: `crossCheck: false` reads each entry on its own only (item-memo.ts checks the whole). */
export interface ReaderOptions {
  crossCheck?: boolean
}

export class ConfigBuilder {
  private readonly rc: ReadConfig = {
    workloads: [],
    services: [],
    policies: [],
    keys: { workloads: [], services: [], policies: [] },
  }
  /** Reading stopped at the problem cap; `total` is then a lower bound. */
  stopped = false

  constructor(
    readonly sink: Sink,
    private readonly options: ReaderOptions = {},
  ) {}

  /** Whether to stop before an item starting at `offset`: the cap is reached and counting on would cost too much. */
  shouldStop(offset: number): boolean {
    if (this.sink.full && offset > COUNT_THROUGH_BYTES) this.stopped = true
    return this.stopped
  }

  /** Reads item `i`; `dashLine` is the line of its `- `, for problems about an item with no position. */
  item(section: SectionName, i: number, item: YNode, dashLine: number | undefined): void {
    const sink = this.sink
    const node = sink.deref(item)
    sink.fallbackLine = sink.lineOf(node) ?? dashLine
    const lines = entryLines(sink, node)
    if (section === 'workloads') {
      const entry = workloadLabel(sink, i, item)
      this.rc.keys.workloads.push({ key: rawText(sink, node, 'uid'), entry, lines })
      const value = readWorkload(sink, i, item)
      if (value !== undefined) this.rc.workloads.push({ value, index: i, entry, lines })
    } else if (section === 'services') {
      const entry = serviceLabel(sink, i, item)
      this.rc.keys.services.push({ key: pairKey(sink, node, 'namespace', 'hostname'), entry, lines })
      const value = readService(sink, i, item)
      if (value !== undefined) this.rc.services.push({ value, index: i, entry, lines })
    } else {
      const entry = policyLabel(sink, i, item)
      this.rc.keys.policies.push({ key: pairKey(sink, node, 'namespace', 'name'), entry, lines })
      const value = readPolicy(sink, i, item)
      if (value !== undefined) this.rc.policies.push({ value, index: i, entry, lines })
    }
  }

  /**
   * True when every entry was read and the counts of clean-index.ts say the checks across entries find nothing:
   * then they need not run (an entry with a problem, or any doubt, and they run to report what they find).
   */
  private passesChecksAcrossEntries(): boolean {
    if (this.sink.errorCount > 0) return false
    const { workloads, services, policies } = this.rc
    const verdict = CleanIndex.verdictOf(
      workloads.map((e) => e.value),
      services.map((e) => e.value),
      policies.map((e) => e.value),
    )
    return verdict === 'clean'
  }

  /** The config, or a MeshFileError with the problems in file order. */
  finish(): MeshFileResult {
    const sink = this.sink
    sink.fallbackLine = undefined
    if (!this.stopped && this.options.crossCheck !== false && !this.passesChecksAcrossEntries())
      crossCheck(sink, this.rc)
    if (sink.errorCount > 0) {
      throw new MeshFileError([...sink.errors].sort(byLine), {
        total: sink.errorCount,
        totalIsLowerBound: this.stopped,
      })
    }
    const config: MeshConfig = {
      workloads: this.rc.workloads.map((e) => e.value),
      services: this.rc.services.map((e) => e.value),
      policies: this.rc.policies.map((e) => e.value),
    }
    const result: MeshFileResult = {
      config,
      warnings: [...sink.warnings].sort(byLine),
      notEnforced: notEnforced(config),
    }
    if (sink.warningCount > sink.warnings.length) result.warningsTotal = sink.warningCount
    return result
  }
}
