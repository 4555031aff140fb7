/**
 * Local mode: a mesh file (ztunnel's local config format) drives the maps. Each (re)load parses and validates
 * the whole file, and applies only the difference; a bad file or a failed write leaves the
 * last good state in force.
 *
 * A file is applied only once it is whole: after a change the file is polled until its size, mtime and inode
 * stayed the same for `settleMs` (a writer pausing between chunks for less than that is not read half-way), and
 * at the latest `maxWaitMs` after the first unapplied change, so a stream of edits still gets applied. Writing
 * the file with an atomic rename is the supported way; then no reader ever sees a partial file.
 */
import { watch, type FSWatcher } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'
import {
  decodeMeshBytes,
  ItemMemo,
  MeshFileError,
  parseMeshBytesIsolated,
  readMeshBytes,
  type MeshFileProblem,
  type MeshFileResult,
} from '../mesh-file/index.js'
import { compactWrites, roundMs, type WorkloadProcessor } from '../processor/processor.js'
import { AuthzCompileError, type AuthzProcessor, type PreparedAuthz } from '../processor/authz.js'
import { policyToWire } from '../processor/authz-wire.js'
import { countChanges, type ResourceChanges, type ResourceEdit } from '../model/index.js'
import type { Logger } from '../log.js'
import { DEFAULTS } from '../options.js'

export interface LocalMeshOptions {
  file: string
  processor: WorkloadProcessor
  /** Compiles and installs the file's policies (absent: policies are kept in the file only). */
  authz?: AuthzProcessor | undefined
  log: Logger
  /** Quiet time a changed file must keep before it is read (default DEFAULTS.reloadSettleMs). */
  settleMs?: number
  /** Longest time from the first unapplied change to a reload, under continuous edits (default DEFAULTS.reloadMaxWaitMs). */
  maxWaitMs?: number
  /** Files larger than this are refused unread. */
  maxBytes?: number
  /** Reads and parses the file (default: read on this thread, parsed in a worker with a heap limit and a deadline). */
  read?: (file: string, opts: { maxBytes?: number | undefined; signal: AbortSignal }) => Promise<MeshFileResult>
  /** Told the outcome of every reload, applied or refused (the metrics count them). */
  onResult?: ((result: ReloadResult) => void) | undefined
}

export interface ReloadResult {
  ok: boolean
  /** What changed, by resource, e.g. { services: { added: [...], removed: [...], changed: [...] } } */
  changes?: ResourceChanges
  error?: Error
}

export type { ResourceChanges }

/** Problems logged one per line at most; the rest are counted in one line and listed in the admin dump. */
export const LOGGED_PROBLEMS = 100

/** What the admin endpoint shows of the mesh file. */
export interface MeshFileStatus {
  file: string
  lastApplied?: { at: string; services: string; workloads: string }
  lastRefusal?: { at: string; reason: string; total: number; problems: MeshFileProblem[] }
}

export class LocalMesh {
  /** Whether a file was applied since start (the first one is logged in full). */
  private applied = false
  private watcher: FSWatcher | undefined
  private poll: NodeJS.Timeout | undefined
  /** Set while a change waits to be applied: when it was first seen and the file's signature since. */
  private pending: { since: number; signature: string; stableSince: number } | undefined
  private closed = false
  /** Aborts a parse in flight when the daemon stops (a huge file must not hold the stop up). */
  private readonly stopping = new AbortController()
  private reloading: Promise<ReloadResult> = Promise.resolve({ ok: true })
  private readonly state: MeshFileStatus
  /** The items of the file last applied and their resources: an edit re-reads only the items it changed. */
  private memo: ItemMemo | undefined

  constructor(private readonly options: LocalMeshOptions) {
    this.state = { file: options.file }
  }

  /** Serialised: a reload triggered while another runs waits for it. */
  reload(): Promise<ReloadResult> {
    this.reloading = this.reloading
      .then(() => this.reloadNow())
      .then((result) => {
        this.options.onResult?.(result)
        return result
      })
    return this.reloading
  }

  status(): MeshFileStatus {
    return this.state
  }

  private async reloadNow(): Promise<ReloadResult> {
    const { file, processor, log } = this.options
    const started = performance.now()
    let parsed: MeshFileResult
    let read: Awaited<ReturnType<LocalMesh['readFile']>>
    try {
      read = await this.readFile()
      parsed = read.parsed
    } catch (err) {
      if (this.closed) return { ok: false, error: new Error('the daemon is stopping; the mesh file was not applied') }
      this.refused(err as Error)
      return { ok: false, error: err as Error }
    }
    if (this.closed) return { ok: false, error: new Error('the daemon is stopping; the mesh file was not applied') }
    const readMs = performance.now() - started
    // Policies are compiled before anything is applied: a set the kernel cannot hold refuses the whole file.
    let authz: PreparedAuthz | undefined
    try {
      authz = this.options.authz?.prepare({
        policies: parsed.config.policies.map(policyToWire),
        workloads: parsed.config.workloads,
      })
    } catch (err) {
      if (!(err instanceof AuthzCompileError)) throw err
      this.options.authz?.refused(err.message)
      this.state.lastRefusal = {
        at: new Date().toISOString(),
        reason: err.message,
        total: 1,
        problems: [{ file, entry: 'policies', key: '', message: err.message }],
      }
      log.error(
        { file, err: err.message },
        this.applied ? 'mesh file refused; the last good state stays in force' : 'mesh file refused; nothing applied',
      )
      return { ok: false, error: err }
    }
    try {
      const { warnings, writes, changes, computeMs, writeMs } = processor.apply(parsed.config, read.edit)
      if (authz) {
        this.options.authz?.commit(authz)
        if (authz.set) log.info({ file, ...authz.set.counts }, 'authorization policies enforced')
      }
      const firstLoad = !this.applied
      this.applied = true
      if (firstLoad) {
        log.info(
          {
            file,
            services: parsed.config.services.length,
            workloads: parsed.config.workloads.length,
            policies: parsed.config.policies.length,
          },
          'mesh file loaded',
        )
        for (const item of parsed.notEnforced) log.warn({ file }, `not enforced yet: ${item}`)
      }
      logCapped(log, parsed.warnings, parsed.warnings.length, 'warn')
      for (const w of warnings.slice(0, LOGGED_PROBLEMS)) log.warn({ file }, w)
      const counts = countChanges(changes)
      this.state.lastApplied = { at: new Date().toISOString(), ...counts }
      // where the time went: reading and parsing the file, deriving the records, writing them (ids included)
      const ms = {
        read: roundMs(readMs),
        compute: roundMs(computeMs),
        write: roundMs(writeMs),
        total: roundMs(performance.now() - started),
      }
      log.info({ file, ...counts, writes: compactWrites(writes), reread: read.reread, ms }, 'mesh applied')
      // What the next edit needs, once the maps are written: this file's items and their resources.
      if (read.memo) this.memo = read.memo
      else if (read.text !== undefined) this.memo = ItemMemo.of(read.text, parsed)
      else this.memo = undefined
      return { ok: true, changes }
    } catch (err) {
      this.state.lastRefusal = { at: new Date().toISOString(), reason: (err as Error).message, total: 0, problems: [] }
      log.error(
        { file, err: (err as Error).message },
        this.applied ? 'applying the mesh failed; the last good state stays in force' : 'applying the mesh failed',
      )
      return { ok: false, error: err as Error }
    }
  }

  /**
   * Reads and parses the file: after an applied file, only its new or edited items are parsed (ItemMemo) when that
   * gives a clean result; else the whole file, in a worker. `reread` says which (the items parsed, or 'all').
   */
  private async readFile(): Promise<{
    parsed: MeshFileResult
    reread: number | 'all'
    /** the file's text, to remember its items once applied (a full read) */
    text?: string | undefined
    /** the memo for the next read (an item-wise read) */
    memo?: ItemMemo | undefined
    /** what changed against the file applied last, when the item-wise read knows it */
    edit?: ResourceEdit | undefined
  }> {
    const { file, maxBytes } = this.options
    const signal = this.stopping.signal
    if (this.options.read) return { parsed: await this.options.read(file, { maxBytes, signal }), reread: 'all' }
    const bytes = await readMeshBytes(file, { maxBytes })
    let text: string | undefined
    try {
      text = decodeMeshBytes(bytes, file)
    } catch {
      // not UTF-8: the full reader says where
    }
    if (text !== undefined && this.memo) {
      const again = this.memo.reread(text, file)
      if (again) return { parsed: again.result, reread: again.parsedItems, memo: again.memo, edit: again.edit }
    }
    return { parsed: await parseMeshBytesIsolated(bytes, file, { signal }), reread: 'all', text }
  }

  private refused(err: Error): void {
    const { file, log } = this.options
    const at = new Date().toISOString()
    if (err instanceof MeshFileError) {
      const total = err.total
      logCapped(log, err.problems, total, 'error')
      this.state.lastRefusal = { at, reason: 'the file has problems', total, problems: err.problems }
      log.error(
        { file, problems: total },
        this.applied ? 'mesh file refused; the last good state stays in force' : 'mesh file refused; nothing applied',
      )
    } else {
      this.state.lastRefusal = { at, reason: err.message, total: 0, problems: [] }
      log.error(
        { file, err: err.message },
        this.applied ? 'cannot read the mesh file; the last good state stays in force' : 'cannot read the mesh file',
      )
    }
  }

  /**
   * Watches the file (through its directory, so editors that replace the file are seen) and reloads once a change
   * has settled. `..data` is how Kubernetes swaps a mounted ConfigMap: the file's own name never shows up then.
   */
  watch(): void {
    const path = resolve(this.options.file)
    this.watcher = watch(dirname(path), (_event, name) => {
      if (name !== basename(path) && name !== '..data') return
      this.changed()
    })
    this.watcher.on('error', (err) =>
      this.options.log.error(
        { file: path, err: err.message },
        'watching the mesh file failed; edits are no longer applied',
      ),
    )
  }

  private changed(): void {
    if (this.closed) return
    const now = Date.now()
    if (!this.pending) this.pending = { since: now, signature: '', stableSince: now }
    if (!this.poll) this.schedulePoll()
  }

  private schedulePoll(): void {
    const settle = this.options.settleMs ?? DEFAULTS.reloadSettleMs
    this.poll = setTimeout(() => void this.check(), Math.max(10, Math.min(100, settle / 4)))
  }

  /** One poll: apply once the signature held for settleMs, or once maxWaitMs passed since the first change. */
  private async check(): Promise<void> {
    this.poll = undefined
    const pending = this.pending
    if (this.closed || !pending) return
    const now = Date.now()
    const signature = await signatureOf(this.options.file)
    if (signature !== pending.signature) {
      pending.signature = signature
      pending.stableSince = now
    }
    const settled = now - pending.stableSince >= (this.options.settleMs ?? DEFAULTS.reloadSettleMs)
    const overdue = now - pending.since >= (this.options.maxWaitMs ?? DEFAULTS.reloadMaxWaitMs)
    if (!settled && !overdue) return this.schedulePoll()
    this.pending = undefined
    if (overdue && !settled)
      this.options.log.warn(
        { file: this.options.file, waitedMs: now - pending.since },
        'the mesh file keeps changing; reading it now (--reload-max-wait). Write it with an atomic rename so it is never read half-written',
      )
    await this.reload()
    // A change seen while reading starts its own wait (changed() set pending again); keep polling for it.
    if (this.pending && !this.poll && !this.closed) this.schedulePoll()
  }

  /** Stops watching; resolves once a reload in flight has finished (it will not write after this). */
  close(): Promise<unknown> {
    this.closed = true
    this.stopping.abort(new Error('the daemon is stopping'))
    clearTimeout(this.poll)
    this.watcher?.close()
    return this.reloading
  }
}

/** Size, mtime (ns) and inode: what changes when a file is written in place or replaced. */
async function signatureOf(file: string): Promise<string> {
  try {
    const s = await stat(file, { bigint: true })
    return `${s.size}:${s.mtimeNs}:${s.ino}:${s.ctimeNs}`
  } catch (err) {
    return `error:${(err as NodeJS.ErrnoException).code ?? ''}`
  }
}

/** The first LOGGED_PROBLEMS problems one per line, then one line for the rest. */
function logCapped(log: Logger, problems: MeshFileProblem[], total: number, level: 'error' | 'warn'): void {
  for (const p of problems.slice(0, LOGGED_PROBLEMS))
    log[level]({ file: p.file, line: p.line, entry: p.entry, key: p.key }, p.message)
  if (total > LOGGED_PROBLEMS) {
    log[level](
      { file: problems[0]?.file, more: total - LOGGED_PROBLEMS },
      `and ${total - LOGGED_PROBLEMS} more ${level === 'error' ? 'problems' : 'warnings'} (the first ${problems.length} are listed at the admin endpoint's /debug/config_dump)`,
    )
  }
}
