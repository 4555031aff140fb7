/** Names for ids, from the daemon's id table (<state-dir>/ids.json and its journal), when it is readable. */
import { join } from 'node:path'
import { journalEntries, readIfPresent, SNAPSHOT_HEAD } from '../ids/id-table.js'

/**
 * id → name without its kind prefix ("svc:ns/host" → "ns/host") for the `wanted` ids, as the id table
 * (ids/id-table.ts) would give them after reading its snapshot and replaying its journal; empty when the table is
 * missing or unreadable. Only the wanted ids are kept: a big mesh's table has a million names, and building the
 * whole table took `explain` seconds for the dozen names it prints.
 */
export function readIdNames(stateDir: string, wanted: ReadonlySet<number>): Map<number, string> {
  const nameOfId = new Map<number, string>()
  const idOfName = new Map<string, number>()
  const remember = (name: string, id: number): void => {
    const old = idOfName.get(name)
    if (old !== undefined) {
      nameOfId.delete(old)
      idOfName.delete(name)
    }
    if (!wanted.has(id)) return
    const previous = nameOfId.get(id)
    if (previous !== undefined) idOfName.delete(previous)
    nameOfId.set(id, name)
    idOfName.set(name, id)
  }
  const file = join(stateDir, 'ids.json')
  try {
    const snapshot = readIfPresent(file) ?? '{}'
    const found = wantedInSnapshot(snapshot, wanted)
    if (found) for (const [name, id] of found) remember(name, id)
    else {
      const ids = (JSON.parse(snapshot) as { ids?: Record<string, number> }).ids ?? {}
      for (const name in ids) remember(name, ids[name]!)
    }
    for (const entry of journalEntries(`${file}.log`)) {
      if (entry[0] === '+') remember(entry[1], entry[2])
      else {
        const id = idOfName.get(entry[1])
        idOfName.delete(entry[1])
        if (id !== undefined) nameOfId.delete(id)
      }
    }
  } catch {
    return new Map() // No names: ids are printed alone.
  }
  const out = new Map<number, string>()
  for (const [id, name] of nameOfId) out.set(id, name.replace(/^(svc|wl):/, ''))
  return out
}

/**
 * The entries of the wanted ids in a snapshot as the id table writes it (SNAPSHOT_HEAD, then one `\n  "name": id`
 * line per name), found by searching for `": <id>` instead of parsing a million names; undefined
 * when the text is not in that form (the caller parses it whole). A name is JSON text without a line break, so the
 * line holding a match starts at the line break before it.
 */
function wantedInSnapshot(text: string, wanted: ReadonlySet<number>): [string, number][] | undefined {
  if (!text.startsWith(SNAPSHOT_HEAD)) return undefined
  const out: [string, number][] = []
  for (const id of wanted) {
    for (const end of [',', '\n']) {
      const at = text.indexOf(`": ${id}${end}`)
      if (at < 0) continue
      const start = text.lastIndexOf('\n  "', at)
      let name: unknown
      try {
        name = JSON.parse(text.slice(start + 3, at + 1))
      } catch {
        return undefined // not a name's closing quote after all: read the file whole
      }
      if (typeof name !== 'string') return undefined
      out.push([name, id])
      break
    }
  }
  return out
}
