/** Names for ids, from the daemon's id table (<state-dir>/ids.json and its journal), when it is readable. */
import { join } from 'node:path'
import { IdTable } from '../ids/id-table.js'

/** id → name without its kind prefix ("svc:ns/host" → "ns/host"); empty when the table is missing or unreadable. */
export function readIdNames(stateDir: string): Map<number, string> {
  const out = new Map<number, string>()
  try {
    for (const [name, id] of new IdTable(join(stateDir, 'ids.json')).entries())
      out.set(id, name.replace(/^(svc|wl):/, ''))
  } catch {
    // No names: ids are printed alone.
  }
  return out
}
