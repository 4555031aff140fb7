/** Names for ids, from the daemon's id table (<state-dir>/ids.json), when it is readable. */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

/** id → name without its kind prefix ("svc:ns/host" → "ns/host"); empty when the table is missing or unreadable. */
export function readIdNames(stateDir: string): Map<number, string> {
  const out = new Map<number, string>()
  try {
    const parsed = JSON.parse(readFileSync(join(stateDir, 'ids.json'), 'utf8')) as { ids?: Record<string, number> }
    for (const [name, id] of Object.entries(parsed.ids ?? {})) out.set(id, name.replace(/^(svc|wl):/, ''))
  } catch {
    // No names: ids are printed alone.
  }
  return out
}
