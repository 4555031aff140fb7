/**
 * Applies planned writes to the kernel maps in batches, keeps the mirror equal to what the kernel accepted,
 * and on any failure puts the previous state back, so a bad change never leaves a half-written service
 * (architecture.md: userspace state is committed only after the kernel accepted the write).
 */
import { emptyImage, LB_MAPS, type LbMapName, type MapImage, type MapRecord } from '../processor/map-image.js'
import { planWrites, summarize, type PlanSummary, type WriteStep } from '../processor/plan.js'

/** Record-level changes: the records to put and the records to delete, per map (keys as hex). */
export interface RecordChanges {
  put: MapImage
  delete: MapImage
}

/** The part of a loaded BPF map the writer needs (BpfMap from @kmesh-ts/bpf-maps has it). */
export interface RawMap {
  readonly spec: { readonly name: string; readonly maxEntries: number }
  putBatch(keys: Buffer, values: Buffer, count: number): void
  deleteBatch(keys: Buffer, count: number): void
  get(key: Buffer): Buffer | undefined
  entries(): IterableIterator<[Buffer, Buffer]>
}

export type LbMaps = Record<LbMapName, RawMap>

/** Records per batch syscall: large enough to amortise the syscall, small enough to keep the event loop responsive. */
const CHUNK = 8192

export class CapacityError extends Error {
  constructor(readonly mapName: string, readonly needed: number, readonly maxEntries: number) {
    super(`map ${mapName} would need ${needed} entries but holds at most ${maxEntries}; nothing was written. ` +
      `Raise it with --map-size ${mapName}=N (the maps are re-created when the daemon restarts without kept pins).`)
    this.name = 'CapacityError'
  }
}

export class ApplyError extends Error {
  constructor(message: string, override readonly cause: unknown, readonly reverted: boolean) {
    super(message)
    this.name = 'ApplyError'
  }
}

export class MapWriter {
  private image: MapImage

  constructor(private readonly maps: LbMaps, mirror: MapImage) {
    this.image = mirror
  }

  /** Reads what the kernel maps hold now (after a restart with kept pins, this is the state in force). */
  static readMirror(maps: LbMaps): MapImage {
    const image = {} as MapImage
    for (const name of LB_MAPS) {
      image[name] = new Map()
      for (const [key, value] of maps[name].entries()) image[name].set(key.toString('hex'), { key, value })
    }
    return image
  }

  get mirror(): MapImage {
    return this.image
  }

  /** Takes the maps to `target`. Throws CapacityError before writing anything, or ApplyError after reverting. */
  apply(target: MapImage): PlanSummary {
    const del = emptyImage()
    for (const m of LB_MAPS) for (const [k, r] of this.image[m]) if (!target[m].has(k)) del[m].set(k, r)
    return this.applyChanges({ put: target, delete: del })
  }

  /**
   * Writes the records of `changes` that differ from what the kernel holds, in the safe order. Throws
   * CapacityError before writing anything, or ApplyError after putting every touched key back.
   */
  applyChanges(changes: RecordChanges): PlanSummary {
    const steps: WriteStep[] = []
    for (const map of LB_MAPS) {
      const records = [...changes.put[map].entries()].filter(([k, r]) => !this.image[map].get(k)?.value.equals(r.value)).map(([, r]) => r)
      if (records.length) steps.push({ map, op: 'put', records })
    }
    for (const map of [...LB_MAPS].reverse()) {
      const records = [...changes.delete[map].keys()].map((k) => this.image[map].get(k)).filter((r): r is MapRecord => !!r && !changes.put[map].has(r.key.toString('hex')))
      if (records.length) steps.push({ map, op: 'delete', records })
    }
    this.checkCapacity(steps)
    // What the touched keys held before, to put back if the kernel refuses a write half way.
    const before = emptyImage()
    const touched = emptyImage()
    for (const step of steps) {
      for (const r of step.records) {
        const k = r.key.toString('hex')
        touched[step.map].set(k, r)
        const old = this.image[step.map].get(k)
        if (old) before[step.map].set(k, old)
      }
    }
    try {
      for (const step of steps) this.run(step)
    } catch (err) {
      const reverted = this.revertTouched(touched, before)
      throw new ApplyError(`writing the maps failed: ${(err as Error).message}; ${reverted ? 'the previous state was restored' : 'restoring the previous state failed too: the maps may be inconsistent, restart the daemon'}`, err, reverted)
    }
    return summarize(steps)
  }

  /** While a change is applied the maps briefly hold old and new entries together: both must fit. */
  private checkCapacity(steps: WriteStep[]): void {
    for (const name of LB_MAPS) {
      let needed = this.image[name].size
      for (const step of steps) if (step.map === name && step.op === 'put') for (const r of step.records) if (!this.image[name].has(r.key.toString('hex'))) needed++
      const { maxEntries, name: mapName } = this.maps[name].spec
      if (needed > maxEntries) throw new CapacityError(mapName, needed, maxEntries)
    }
  }

  private run(step: WriteStep): void {
    const map = this.maps[step.map]
    for (let i = 0; i < step.records.length; i += CHUNK) {
      const chunk = step.records.slice(i, i + CHUNK)
      try {
        if (step.op === 'put') map.putBatch(Buffer.concat(chunk.map((r) => r.key)), Buffer.concat(chunk.map((r) => r.value)), chunk.length)
        else map.deleteBatch(Buffer.concat(chunk.map((r) => r.key)), chunk.length)
      } catch (err) {
        this.resync(step.map, chunk)
        throw err
      }
      for (const r of chunk) {
        if (step.op === 'put') this.image[step.map].set(r.key.toString('hex'), r)
        else this.image[step.map].delete(r.key.toString('hex'))
      }
    }
  }

  /** After a failed batch, part of it may have landed: read those keys back so the mirror is the truth. */
  private resync(name: LbMapName, records: MapRecord[]): void {
    for (const r of records) {
      const value = this.maps[name].get(r.key)
      if (value) this.image[name].set(r.key.toString('hex'), { key: r.key, value })
      else this.image[name].delete(r.key.toString('hex'))
    }
  }

  /** Puts the touched keys back to what they held before (absent keys are deleted), in the safe order. */
  private revertTouched(touched: MapImage, before: MapImage): boolean {
    try {
      const now = emptyImage()
      for (const m of LB_MAPS) for (const k of touched[m].keys()) { const r = this.image[m].get(k); if (r) now[m].set(k, r) }
      for (const step of planWrites(now, before)) this.run(step)
      return true
    } catch {
      return false
    }
  }
}
