/** An Explanation as a readable table. */
import { lbPolicyName } from '@kmesh-ts/kernel-abi'
import type { Explanation } from '@kmesh-ts/lb-model'

export function formatExplanation(e: Explanation, names: Pick<ReadonlyMap<number, string>, 'get'>): string {
  const name = (id: number | undefined): string =>
    id === undefined ? '-' : names.get(id) ? `${names.get(id)} (${id})` : String(id)
  const lines: string[] = []
  const dest = e.destination.includes(':') ? `[${e.destination}]:${e.port}` : `${e.destination}:${e.port}`
  if (!e.upstream) lines.push(`${dest}: no frontend; connect() is left untouched`)
  else if (e.upstream.kind === 'service') {
    const counts =
      (e.counts ?? [])
        .map((c, p) => (c ? `p${p}=${c}` : ''))
        .filter(Boolean)
        .join(' ') || 'no endpoints'
    lines.push(
      `${dest} → service ${name(e.upstream.id)}, policy ${lbPolicyName(e.lbPolicy ?? -1) ?? `invalid (${e.lbPolicy})`}, endpoints ${counts}`,
    )
  } else
    lines.push(`${dest} → ${e.upstream.kind === 'workload' ? 'workload' : 'missing upstream'} ${name(e.upstream.id)}`)
  lines.push('')
  const rows: string[][] = [['probability', 'outcome', 'backend', 'prio', 'slots']]
  for (const o of e.outcomes) {
    const what =
      o.kind === 'rewrite'
        ? `→ ${o.address!.includes(':') ? `[${o.address}]` : o.address}:${o.port}${o.viaWaypoint ? ' (waypoint)' : ''}`
        : o.kind === 'leave'
          ? `untouched (${o.reason})`
          : `${o.errno} (${o.reason})`
    rows.push([
      `${(o.probability * 100).toFixed(4)}%`,
      what,
      name(o.backendUid),
      o.priority === undefined ? '-' : String(o.priority),
      o.indexes.length ? String(o.indexes.length) : '-',
    ])
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  for (const r of rows)
    lines.push(
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
  if (e.excluded.length) {
    lines.push('', 'not candidates:')
    for (const x of e.excluded) lines.push(`  ${name(x.backendUid)}: ${x.reason}`)
  }
  for (const n of e.notes) lines.push(`note: ${n}`)
  return `${lines.join('\n')}\n`
}
