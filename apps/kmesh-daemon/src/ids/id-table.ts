import { appendFileSync, closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { drain, endsSlice, type Steps } from '../util/slices.js'

/** One line of the journal: an allocation or a release. */
export type JournalLine = ['+', string, number] | ['-', string]

/** How a snapshot the table writes begins; one `\n  "name": id` line per name follows. */
export const SNAPSHOT_HEAD = '{\n "version": 1,\n "ids": {'

/** A file's text, or undefined when it does not exist. */
export function readIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/**
 * The entries of a journal file in order (none when it does not exist). A last line cut short by a crash is left
 * out (that allocation never reached the maps); any other line that is not JSON is an error naming the line.
 */
export function journalEntries(journal: string): JournalLine[] {
  const lines = (readIfPresent(journal) ?? '').split('\n')
  const out: JournalLine[] = []
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]) continue
    try {
      out.push(JSON.parse(lines[i]!) as JournalLine)
    } catch {
      if (i === lines.length - 1) break
      throw new Error(
        `id journal ${journal}: line ${i + 1} is not valid JSON; move the file away to start with fresh ids`,
      )
    }
  }
  return out
}

/**
 * The kinds of names the daemon allocates: `wl:<uid>` and `svc:<namespace/hostname>` (model/keys.ts). Any other
 * name is its own kind `''`. The table is indexed by kind and key, so the hot path (a first push asks for 110k
 * ids several times each) looks up the uid or service key string the model already holds, whose hash V8 keeps,
 * instead of building and hashing a new prefixed string on every call.
 */
export type IdKind = 'wl' | 'svc' | ''

function splitName(name: string): [IdKind, string] {
  if (name.startsWith('wl:')) return ['wl', name.slice(3)]
  if (name.startsWith('svc:')) return ['svc', name.slice(4)]
  return ['', name]
}

const nameOfKey = (kind: IdKind, key: string): string => (kind === '' ? key : `${kind}:${key}`)

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
  private readonly byKey: Record<IdKind, Map<string, number>> = { wl: new Map(), svc: new Map(), '': new Map() }
  /** id -> name (`wl:uid`, …), in allocation order (the snapshot's order) */
  private readonly byId = new Map<number, string>()
  private pending: JournalLine[] = []
  private journalLines = 0

  constructor(private readonly file?: string) {
    if (!file) return
    this.loadSnapshot(file)
    this.replayJournal(`${file}.log`)
  }

  private loadSnapshot(file: string): void {
    const text = readIfPresent(file)
    if (text === undefined) return
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
      this.remember(name, id)
    }
  }

  private replayJournal(journal: string): void {
    for (const entry of journalEntries(journal)) {
      this.journalLines++
      if (entry[0] === '+') {
        const [, name, id] = entry
        this.remember(name, id)
      } else {
        const [kind, key] = splitName(entry[1])
        const id = this.byKey[kind].get(key)
        this.byKey[kind].delete(key)
        if (id !== undefined) this.byId.delete(id)
      }
    }
  }

  private remember(name: string, id: number): void {
    const [kind, key] = splitName(name)
    const old = this.byKey[kind].get(key)
    if (old !== undefined) this.byId.delete(old)
    this.byKey[kind].set(key, id)
    this.byId.set(id, name)
  }

  /** Every name and its id. */
  *entries(): IterableIterator<[string, number]> {
    for (const [id, name] of this.byId) yield [name, id]
  }

  /** The id of a name, allocating (and remembering) one if it has none yet. */
  idOf(name: string): number {
    const [kind, key] = splitName(name)
    return this.idOfKey(kind, key)
  }

  /** idOf(`kind:key`) without building the name (the name is built once, when the id is allocated). */
  idOfKey(kind: IdKind, key: string): number {
    const known = this.byKey[kind].get(key)
    if (known !== undefined) return known
    const name = nameOfKey(kind, key)
    let id = fnv1a32(name) || 1
    while (this.byId.has(id)) id = (id + 1) >>> 0 || 1
    this.byKey[kind].set(key, id)
    this.byId.set(id, name)
    if (this.file) this.pending.push(['+', name, id]) // journal only what will be persisted
    return id
  }

  peek(name: string): number | undefined {
    const [kind, key] = splitName(name)
    return this.byKey[kind].get(key)
  }

  peekKey(kind: IdKind, key: string): number | undefined {
    return this.byKey[kind].get(key)
  }

  nameOf(id: number): string | undefined {
    return this.byId.get(id)
  }

  /** Forgets one name (its resource is gone from the maps), so its id can be reused later. */
  release(name: string): void {
    const [kind, key] = splitName(name)
    this.releaseKey(kind, key)
  }

  releaseKey(kind: IdKind, key: string): void {
    const id = this.byKey[kind].get(key)
    if (id === undefined) return
    this.byKey[kind].delete(key)
    this.byId.delete(id)
    if (this.file) this.pending.push(['-', nameOfKey(kind, key)])
  }

  /** Forgets names no longer in use, so their ids can be reused later. */
  retainOnly(names: ReadonlySet<string>): void {
    this.retainWhere((kind, key) => names.has(nameOfKey(kind, key)))
  }

  /** retainOnly by kind and key: `inUse` answers without building names. */
  retainWhere(inUse: (kind: IdKind, key: string) => boolean): void {
    for (const kind of ['wl', 'svc', ''] as const)
      for (const key of [...this.byKey[kind].keys()]) if (!inUse(kind, key)) this.releaseKey(kind, key)
  }

  get size(): number {
    return this.byId.size
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
    if (this.journalLines + this.pending.length > Math.max(1024, this.byId.size / 2)) {
      // Written a slice at a time (a first push names 100k resources: one write of the whole text held the event
      // loop ~0.1 s), to a temporary file renamed over the snapshot only once it is whole.
      const tmp = `${this.file}.tmp-${process.pid}`
      const fd = openSync(tmp, 'w')
      let whole = false
      try {
        let text = SNAPSHOT_HEAD
        let first = true
        for (const [id, name] of this.byId) {
          text += `${first ? '' : ','}\n  ${JSON.stringify(name)}: ${id}`
          first = false
          if (endsSlice(++n)) {
            writeAll(fd, text)
            text = ''
            yield
          }
        }
        writeAll(fd, `${text}\n }\n}`)
        whole = true
      } finally {
        closeSync(fd)
        if (!whole) rmSync(tmp, { force: true })
      }
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
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c >= 0x80) {
      for (const byte of Buffer.from(text.slice(i), 'utf8')) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0
      break
    }
    hash = Math.imul(hash ^ c, 0x01000193) >>> 0
  }
  return hash >>> 0
}

/** Writes all of `text` (writeSync may write part of it). */
function writeAll(fd: number, text: string): void {
  const bytes = Buffer.from(text)
  for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at)
}
