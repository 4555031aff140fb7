/**
 * Local mode: a mesh file (ztunnel's local config format) drives the maps. Each (re)load parses and validates
 * the whole file, and applies only the difference; a bad file or a failed write leaves the
 * last good state in force.
 */
import { watch, type FSWatcher } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import { MeshFileError, readMeshFile } from './mesh-file/index.js'
import { compactWrites, type WorkloadProcessor } from './processor/processor.js'
import type { Logger } from './log.js'

export interface LocalMeshOptions {
  file: string
  processor: WorkloadProcessor
  log: Logger
}

export interface ReloadResult {
  ok: boolean
  /** What changed, by resource, e.g. { services: { added: [...], removed: [...], changed: [...] } } */
  changes?: ResourceChanges
  error?: Error
}

export interface ResourceChanges {
  services: Delta
  workloads: Delta
}
interface Delta { added: string[]; removed: string[]; changed: string[] }

export class LocalMesh {
  private last: { fingerprints: Map<string, string> } | undefined
  private watcher: FSWatcher | undefined
  private debounce: NodeJS.Timeout | undefined
  private closed = false
  private reloading: Promise<ReloadResult> = Promise.resolve({ ok: true })

  constructor(private readonly options: LocalMeshOptions) {}

  /** Serialised: a reload triggered while another runs waits for it. */
  reload(): Promise<ReloadResult> {
    this.reloading = this.reloading.then(() => this.reloadNow())
    return this.reloading
  }

  private async reloadNow(): Promise<ReloadResult> {
    const { file, processor, log } = this.options
    let parsed
    try {
      parsed = await readMeshFile(file)
    } catch (err) {
      if (err instanceof MeshFileError) {
        for (const p of err.problems) log.error({ file: p.file, line: p.line, entry: p.entry, key: p.key }, p.message)
        log.error({ file, problems: err.problems.length }, this.last ? 'mesh file refused; the last good state stays in force' : 'mesh file refused; nothing applied')
      } else {
        log.error({ file, err: (err as Error).message }, this.last ? 'cannot read the mesh file; the last good state stays in force' : 'cannot read the mesh file')
      }
      return { ok: false, error: err as Error }
    }
    if (this.closed) return { ok: false, error: new Error('the daemon is stopping; the mesh file was not applied') }
    try {
      const { warnings, writes } = processor.apply(parsed.config)
      const fingerprints = fingerprintsOf(parsed.config)
      const changes = diffResources(this.last?.fingerprints, fingerprints)
      const firstLoad = !this.last
      this.last = { fingerprints }
      if (firstLoad) {
        log.info({ file, services: parsed.config.services.length, workloads: parsed.config.workloads.length, policies: parsed.config.policies.length }, 'mesh file loaded')
        for (const item of parsed.notEnforced) log.warn({ file }, `not enforced yet: ${item}`)
      }
      for (const w of parsed.warnings) log.warn({ file: w.file, line: w.line, entry: w.entry, key: w.key }, w.message)
      for (const w of warnings) log.warn({ file }, w)
      log.info({ file, ...changeCounts(changes), writes: compactWrites(writes) }, 'mesh applied')
      return { ok: true, changes }
    } catch (err) {
      log.error({ file, err: (err as Error).message }, this.last ? 'applying the mesh failed; the last good state stays in force' : 'applying the mesh failed')
      return { ok: false, error: err as Error }
    }
  }

  /** Watches the file (through its directory, so editors that replace the file are seen) and reloads on change. */
  watch(debounceMs = 150): void {
    const path = resolve(this.options.file)
    // `..data` is how Kubernetes swaps a mounted ConfigMap: the file's own name never shows up then.
    this.watcher = watch(dirname(path), (_event, name) => {
      if (name !== basename(path) && name !== '..data') return
      clearTimeout(this.debounce)
      this.debounce = setTimeout(() => void this.reload(), debounceMs)
    })
    this.watcher.on('error', (err) => this.options.log.error({ file: path, err: err.message }, 'watching the mesh file failed; edits are no longer applied'))
  }

  /** Stops watching; resolves once a reload in flight has finished (it will not write after this). */
  close(): Promise<unknown> {
    this.closed = true
    clearTimeout(this.debounce)
    this.watcher?.close()
    return this.reloading
  }
}

function fingerprintsOf(config: { services: { namespace: string; hostname: string }[]; workloads: { uid: string }[] }): Map<string, string> {
  const out = new Map<string, string>()
  for (const s of config.services) out.set(`service ${s.namespace}/${s.hostname}`, JSON.stringify(s))
  for (const w of config.workloads) out.set(`workload ${w.uid}`, JSON.stringify(w))
  return out
}

function diffResources(before: Map<string, string> | undefined, after: Map<string, string>): ResourceChanges {
  const out: ResourceChanges = { services: { added: [], removed: [], changed: [] }, workloads: { added: [], removed: [], changed: [] } }
  const bucket = (k: string): Delta => (k.startsWith('service ') ? out.services : out.workloads)
  const name = (k: string): string => k.slice(k.indexOf(' ') + 1)
  for (const [k, v] of after) {
    const old = before?.get(k)
    if (old === undefined) bucket(k).added.push(name(k))
    else if (old !== v) bucket(k).changed.push(name(k))
  }
  for (const k of before?.keys() ?? []) if (!after.has(k)) bucket(k).removed.push(name(k))
  return out
}

function changeCounts(c: ResourceChanges): Record<string, string> {
  const f = (d: Delta): string => `+${d.added.length} ~${d.changed.length} -${d.removed.length}`
  return { services: f(c.services), workloads: f(c.workloads) }
}
