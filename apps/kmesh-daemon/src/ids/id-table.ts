import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

/**
 * Names (service keys, workload uids) -> u32 ids, one table for both kinds so a frontend value can never be
 * both a service id and a backend uid (reference/kmesh-dataplane.md §2.4, §3). Ids start at FNV-1a 32 of the
 * name and probe linearly on a collision, like Kmesh; unlike Kmesh's in-memory default they are persisted on
 * every change, so they survive daemon restarts while the maps stay pinned. 0 is never handed out (uid 0 is
 * reserved in km_backend).
 */
export class IdTable {
  private readonly byName = new Map<string, number>()
  private readonly byId = new Map<number, string>()
  private dirty = false

  constructor(private readonly file?: string) {
    if (!file) return
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      throw new Error(`id table ${file} is not valid JSON (${(err as Error).message}); move it away to start with fresh ids`)
    }
    for (const [name, id] of Object.entries((parsed as { ids?: Record<string, number> }).ids ?? {})) {
      if (!Number.isInteger(id) || id <= 0 || id > 0xffffffff || this.byId.has(id)) {
        throw new Error(`id table ${file}: entry ${JSON.stringify(name)} has an invalid or duplicate id ${id}`)
      }
      this.byName.set(name, id)
      this.byId.set(id, name)
    }
  }

  /** The id of a name, allocating (and remembering) one if it has none yet. */
  idOf(name: string): number {
    const known = this.byName.get(name)
    if (known !== undefined) return known
    let id = fnv1a32(name) || 1
    while (this.byId.has(id)) id = (id + 1) >>> 0 || 1
    this.byName.set(name, id)
    this.byId.set(id, name)
    this.dirty = true
    return id
  }

  peek(name: string): number | undefined {
    return this.byName.get(name)
  }

  nameOf(id: number): string | undefined {
    return this.byId.get(id)
  }

  /** Forgets one name (its resource is gone from the maps), so its id can be reused later. */
  release(name: string): void {
    const id = this.byName.get(name)
    if (id === undefined) return
    this.byName.delete(name)
    this.byId.delete(id)
    this.dirty = true
  }

  /** Forgets names no longer in use, so their ids can be reused later. */
  retainOnly(names: ReadonlySet<string>): void {
    for (const [name, id] of this.byName) {
      if (names.has(name)) continue
      this.byName.delete(name)
      this.byId.delete(id)
      this.dirty = true
    }
  }

  get size(): number {
    return this.byName.size
  }

  /** Writes the table atomically (temp file + rename) when it changed. */
  save(): void {
    if (!this.file || !this.dirty) return
    mkdirSync(dirname(this.file), { recursive: true })
    const tmp = `${this.file}.tmp-${process.pid}`
    writeFileSync(tmp, JSON.stringify({ version: 1, ids: Object.fromEntries(this.byName) }, null, 1))
    renameSync(tmp, this.file)
    this.dirty = false
  }
}

export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash >>> 0
}
