/**
 * The one planner: the ordered writes that take the maps from what they hold (the mirror) through a set of record
 * changes without a concurrent connect() ever following a dangling id (docs/architecture.md, "Rules that keep the
 * data path correct"): puts go backend -> endpoint -> service -> frontend, deletes go frontend -> service ->
 * endpoint -> backend, after every put. Endpoint slots beyond a shrinking count are deleted only after the
 * service's count shrank, and slots for a growing count are written before the count grows. Forward writes and
 * reverts are both planned here; the writer only executes plans.
 */
import { emptyImage, LB_MAPS, type LbMapName, type MapImage, type MapRecord, type RecordChanges } from './map-image.js'
import { drain, endsSlice, type Steps } from '../util/slices.js'

export interface WriteStep {
  map: LbMapName
  op: 'put' | 'delete'
  records: MapRecord[]
  /** hex[i] is records[i]'s key as hex (the images' key), computed once */
  hex: string[]
}

/**
 * The steps that apply `changes` to maps holding `mirror`: puts of records whose bytes differ from the mirror's,
 * deletes of keys the mirror holds and no put rewrites.
 */
export function planWrites(mirror: MapImage, changes: RecordChanges): WriteStep[] {
  return drain(planWritesSteps(mirror, changes))
}

/** planWrites, yielding every SLICE records looked at. */
export function* planWritesSteps(mirror: MapImage, changes: RecordChanges): Steps<WriteStep[]> {
  const steps: WriteStep[] = []
  let n = 0
  for (const map of LB_MAPS) {
    const held = mirror[map]
    const step: WriteStep = { map, op: 'put', records: [], hex: [] }
    for (const [k, r] of changes.put[map]) {
      if (endsSlice(++n)) yield
      if (held.get(k)?.value.equals(r.value)) continue
      step.records.push(r)
      step.hex.push(k)
    }
    if (step.records.length) steps.push(step)
  }
  for (const map of [...LB_MAPS].reverse()) {
    const held = mirror[map]
    const step: WriteStep = { map, op: 'delete', records: [], hex: [] }
    for (const k of changes.delete[map].keys()) {
      if (endsSlice(++n)) yield
      const r = held.get(k)
      if (!r || changes.put[map].has(k)) continue
      step.records.push(r)
      step.hex.push(k)
    }
    if (step.records.length) steps.push(step)
  }
  return steps
}

/** The changes that take `mirror` to exactly `target`: put all of it, delete what it lacks. */
export function changesTo(mirror: MapImage, target: MapImage): RecordChanges {
  return drain(changesToSteps(mirror, target))
}

/** changesTo, yielding every SLICE records of the mirror. */
export function* changesToSteps(mirror: MapImage, target: MapImage): Steps<RecordChanges> {
  const del = emptyImage()
  let n = 0
  for (const m of LB_MAPS)
    for (const [k, r] of mirror[m]) {
      if (endsSlice(++n)) yield
      if (!target[m].has(k)) del[m].set(k, r)
    }
  return { put: target, delete: del }
}

export interface PlanSummary {
  put: Record<LbMapName, number>
  delete: Record<LbMapName, number>
}

export function summarize(steps: WriteStep[]): PlanSummary {
  const zero = (): Record<LbMapName, number> => ({ backend: 0, endpoint: 0, service: 0, frontend: 0 })
  const out: PlanSummary = { put: zero(), delete: zero() }
  for (const s of steps) out[s.op][s.map] += s.records.length
  return out
}

/** `backend +N/-M, …` for a log line. */
export function compactWrites(w: PlanSummary): string {
  return LB_MAPS.map((m) => `${m} +${w.put[m]}/-${w.delete[m]}`).join(', ')
}
