/**
 * The ordered writes that take the maps from one image to another without a concurrent connect() ever
 * following a dangling id (architecture.md, "Rules that keep the data path correct"): puts go
 * backend -> endpoint -> service -> frontend, deletes go frontend -> service -> endpoint -> backend.
 * Endpoint slots beyond a shrinking count are deleted only after the service's count shrank, and slots for a
 * growing count are written before the count grows.
 */
import { LB_MAPS, type LbMapName, type MapImage, type MapRecord } from './map-image.js'

export interface WriteStep {
  map: LbMapName
  op: 'put' | 'delete'
  records: MapRecord[]
}

export function planWrites(from: MapImage, to: MapImage): WriteStep[] {
  const steps: WriteStep[] = []
  for (const map of LB_MAPS) {
    const records = [...to[map].entries()].filter(([k, r]) => !from[map].get(k)?.value.equals(r.value)).map(([, r]) => r)
    if (records.length) steps.push({ map, op: 'put', records })
  }
  for (const map of [...LB_MAPS].reverse()) {
    const records = [...from[map].entries()].filter(([k]) => !to[map].has(k)).map(([, r]) => r)
    if (records.length) steps.push({ map, op: 'delete', records })
  }
  return steps
}

export interface PlanSummary { put: Record<LbMapName, number>; delete: Record<LbMapName, number> }

export function summarize(steps: WriteStep[]): PlanSummary {
  const zero = (): Record<LbMapName, number> => ({ backend: 0, endpoint: 0, service: 0, frontend: 0 })
  const out: PlanSummary = { put: zero(), delete: zero() }
  for (const s of steps) out[s.op][s.map] += s.records.length
  return out
}
