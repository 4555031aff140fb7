import { appendFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { drain, endsSlice, type Steps } from '../util/slices.js'

type JournalLine = ['+', string, number] | ['-', string]

/**
 * Names (service keys, workload uids) -> u32 ids, one table for both kinds so a frontend value can never be
 * both a service id and a backend uid (docs/reference/kmesh-dataplane.md §2.4, §3). Ids start at FNV-1a 32 of the
 * name and probe linearly on a collision, like Kmesh; unlike Kmesh's in-memory default they are persisted on
 * every change, so they survive daemon restarts while the maps stay pinned. 0 is never handed out (uid 0 is
 * reserved in km_backend).
 *
 * Persistence: a snapshot (`file`, JSON) plus a journal (`file.log`, one JSON line per allocation or release)
 * appended on each save, so one new workload costs one small append, not a rewrite of 100k names; the
 * journal is folded into a fresh snapshot once it grows past half the table.
 */
export class IdTable {
  private readonly byName = new Map<string, number>()
  private readonly byId = new Map<number, string>()
  private pending: JournalLine[] = []
  private journalLines = 0

  constructor(private readonly file?: string) {
    if (!file) return
    this.loadSnapshot(file)
    this.replayJournal(`${file}.log`)
  }

  private loadSnapshot(file: string): void {
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
      throw new Error(
        `id table ${file} is not valid JSON (${(err as Error).message}); move it away to start with fresh ids`,
      )
    }
    for (const [name, id] of Object.entries((parsed as { ids?: Record<string, number> }).ids ?? {})) {
      if (!Number.isInteger(id) || id <= 0 || id > 0xffffffff || this.byId.has(id)) {
        throw new Error(`id table ${file}: entry ${JSON.stringify(name)} has an invalid or duplicate id ${id}`)
      }
      this.byName.set(name, id)
      this.byId.set(id, name)
    }
  }

  private replayJournal(journal: string): void {
    let text: string
    try {
      text = readFileSync(journal, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    const lines = text.split('\n')
    lines.forEach((line, i) => {
      if (!line) return
      let entry: JournalLine
      try {
        entry = JSON.parse(line) as JournalLine
      } catch {
        if (i === lines.length - 1) return // a last line cut short by a crash: that allocation never reached the maps
        throw new Error(
          `id journal ${journal}: line ${i + 1} is not valid JSON; move the file away to start with fresh ids`,
        )
      }
      this.journalLines++
      if (entry[0] === '+') {
        const [, name, id] = entry
        this.byName.set(name, id)
        this.byId.set(id, name)
      } else {
        const id = this.byName.get(entry[1])
        this.byName.delete(entry[1])
        if (id !== undefined) this.byId.delete(id)
      }
    })
  }

  /** Every name and its id. */
  entries(): IterableIterator<[string, number]> {
    return this.byName.entries()
  }

  /** The id of a name, allocating (and remembering) one if it has none yet. */
  idOf(name: string): number {
    const known = this.byName.get(name)
    if (known !== undefined) return known
    let id = fnv1a32(name) || 1
    while (this.byId.has(id)) id = (id + 1) >>> 0 || 1
    this.byName.set(name, id)
    this.byId.set(id, name)
    this.pending.push(['+', name, id])
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
    this.forget(name, id)
  }

  private forget(name: string, id: number): void {
    this.byName.delete(name)
    this.byId.delete(id)
    this.pending.push(['-', name])
  }

  /** Forgets names no longer in use, so their ids can be reused later. */
  retainOnly(names: ReadonlySet<string>): void {
    for (const [name, id] of this.byName) {
      if (names.has(name)) continue
      this.forget(name, id)
    }
  }

  get size(): number {
    return this.byName.size
  }

  /** Persists what changed since the last save: a journal append, or a fresh snapshot when the journal is long. */
  save(): void {
    drain(this.saveSteps())
  }

  /**
   * save(), yielding every SLICE names while the text is built (a first push names 100k resources); the file is
   * written at the end, in one call. Nothing may change the table between the yields.
   */
  *saveSteps(): Steps<void> {
    if (!this.file || this.pending.length === 0) return
    mkdirSync(dirname(this.file), { recursive: true })
    let n = 0
    if (this.journalLines + this.pending.length > Math.max(1024, this.byName.size / 2)) {
      const entries: string[] = []
      for (const [name, id] of this.byName) {
        if (endsSlice(++n)) yield
        entries.push(`\n  ${JSON.stringify(name)}: ${id}`)
      }
      const tmp = `${this.file}.tmp-${process.pid}`
      writeFileSync(tmp, `{\n "version": 1,\n "ids": {${entries.join(',')}\n }\n}`)
      renameSync(tmp, this.file)
      rmSync(`${this.file}.log`, { force: true })
      this.journalLines = 0
    } else {
      const lines: string[] = []
      for (const l of this.pending) {
        if (endsSlice(++n)) yield
        lines.push(JSON.stringify(l))
      }
      appendFileSync(`${this.file}.log`, lines.join('\n') + '\n')
      this.journalLines += this.pending.length
    }
    this.pending = []
  }
}

/** FNV-1a 32 of the UTF-8 bytes of `text` (ASCII, the usual case, is hashed without encoding a Buffer). */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5
  const step = (byte: number): void => {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0
  }
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x80) step(c)
    else {
      for (const byte of Buffer.from(text.slice(i), 'utf8')) step(byte)
      break
    }
  }
  return hash >>> 0
}
