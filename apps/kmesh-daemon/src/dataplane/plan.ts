/**
 * The one planner: the ordered writes that take the maps from what they hold (the mirror) through a set of record
 * changes without a concurrent connect() ever following a dangling id (docs/architecture.md, "Rules that keep the
 * data path correct"): puts go backend -> endpoint -> service -> frontend, deletes go frontend -> service ->
 * endpoint -> backend, after every put. Endpoint slots beyond a shrinking count are deleted only after the
 * service's count shrank, and slots for a growing count are written before the count grows. Forward writes and
 * reverts are both planned here; the writer only executes plans.
 */
import {
  emptyImage,
  LB_MAPS,
  type LbMapName,
  type MapImage,
  type RecordChanges,
  type RecordTable,
} from './map-image.js'
import { drain, endsSlice, type Steps } from '../util/slices.js'

export interface WriteStep {
  map: LbMapName
  op: 'put' | 'delete'
  /** the table holding the records to write: the changes' puts, or the mirror for deletes (only keys are read) */
  source: RecordTable
  /** the records' slots in `source` */
  slots: number[]
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
    const source = changes.put[map]
    const step: WriteStep = { map, op: 'put', source, slots: [] }
    for (const slot of source.slots()) {
      if (endsSlice(++n)) yield
      const heldSlot = held.findKeyOf(source, slot)
      if (heldSlot >= 0 && held.valueEquals(heldSlot, source, slot)) continue
      step.slots.push(slot)
    }
    if (step.slots.length) steps.push(step)
  }
  for (const map of [...LB_MAPS].reverse()) {
    const held = mirror[map]
    const step: WriteStep = { map, op: 'delete', source: held, slots: [] }
    const gone = changes.delete[map]
    for (const slot of gone.slots()) {
      if (endsSlice(++n)) yield
      const heldSlot = held.findKeyOf(gone, slot)
      if (heldSlot < 0 || changes.put[map].findKeyOf(gone, slot) >= 0) continue
      step.slots.push(heldSlot)
    }
    if (step.slots.length) steps.push(step)
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
    for (const slot of mirror[m].slots()) {
      if (endsSlice(++n)) yield
      if (target[m].findKeyOf(mirror[m], slot) < 0) del[m].putFrom(mirror[m], slot)
    }
  return { put: target, delete: del, complete: true }
}

export interface PlanSummary {
  put: Record<LbMapName, number>
  delete: Record<LbMapName, number>
}

export function summarize(steps: WriteStep[]): PlanSummary {
  const zero = (): Record<LbMapName, number> => ({ backend: 0, endpoint: 0, service: 0, frontend: 0 })
  const out: PlanSummary = { put: zero(), delete: zero() }
  for (const s of steps) out[s.op][s.map] += s.slots.length
  return out
}

/** `backend +N/-M, …` for a log line. */
export function compactWrites(w: PlanSummary): string {
  return LB_MAPS.map((m) => `${m} +${w.put[m]}/-${w.delete[m]}`).join(', ')
}
