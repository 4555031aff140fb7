/**
 * Applies planned writes to the kernel maps in batches, keeps the mirror equal to what the kernel accepted,
 * and on any failure puts the previous state back, so a bad change never leaves a half-written service
 * (architecture.md: userspace state is committed only after the kernel accepted the write).
 */
import { emptyImage, LB_MAPS, type LbMapName, type MapImage, type RecordChanges } from './map-image.js'
import { changesTo, planWrites, planWritesSteps, summarize, type PlanSummary, type WriteStep } from './plan.js'
import { drain, endsSlice, type Steps } from '../util/slices.js'

/** The part of a loaded BPF map the writer needs (BpfMap from @kmesh-ts/bpf-maps has it). */
export interface RawMap {
  readonly spec: { readonly name: string; readonly maxEntries: number }
  putBatch(keys: Buffer, values: Buffer, count: number): void
  deleteBatch(keys: Buffer, count: number): void
  get(key: Buffer): Buffer | undefined
  entries(): IterableIterator<[Buffer, Buffer]>
}

export type LbMaps = Record<LbMapName, RawMap>

/** Records `from..to` of a step, written to the kernel, not yet in the mirror. */
interface Written {
  step: WriteStep
  from: number
  to: number
}

/** Records per batch syscall: large enough to amortise the syscall, small enough to keep the event loop responsive. */
const CHUNK = 8192

export class CapacityError extends Error {
  /**
   * `needed` is the peak while the change is written (old and new entries side by side), `after` what the map
   * holds once it is done: when only the peak is over the limit the message says so, and how to split the change.
   * `limit` says which limit: the map's size (a writer that cannot grow maps) or the ceiling a map may grow to.
   */
  constructor(
    readonly mapName: string,
    readonly needed: number,
    readonly maxEntries: number,
    readonly after = needed,
    readonly limit: 'size' | 'ceiling' = 'size',
  ) {
    const onlyDuring = after <= maxEntries
    const flag = limit === 'ceiling' ? '--map-size-max' : '--map-size'
    super(
      `map ${mapName} would need ${needed} entries ${onlyDuring ? `while the change is written (old and new entries side by side; ${after} after it)` : ''}`.trimEnd() +
        ` but ${limit === 'ceiling' ? 'may grow to' : 'holds'} at most ${maxEntries}; nothing was written. ` +
        (onlyDuring
          ? 'The mesh fits before and after but not during: apply it as two edits (first remove, then add), or raise the limit with '
          : 'Raise it with ') +
        `${flag} ${mapName}=N.`,
    )
    this.name = 'CapacityError'
  }
}

export class ApplyError extends Error {
  constructor(
    message: string,
    override readonly cause: unknown,
    readonly reverted: boolean,
  ) {
    super(message)
    this.name = 'ApplyError'
  }
}

export class MapWriter {
  private image: MapImage
  /** Batch syscalls issued so far (puts and deletes, reverts included): what a change costs the kernel. */
  syscalls = 0

  /**
   * `grow`, when given, is asked for bigger maps when a change does not fit (the dataplane swaps them in under the
   * running programs and returns them, or throws CapacityError at its ceiling); without it a change that does not
   * fit is refused.
   */
  constructor(
    private maps: LbMaps,
    mirror: MapImage,
    private readonly grow?: (needed: Partial<Record<LbMapName, number>>) => LbMaps,
  ) {
    this.image = mirror
  }

  /** Reads what the kernel maps hold now (after a restart with kept pins, this is the state in force). */
  static readMirror(maps: LbMaps): MapImage {
    const image = emptyImage()
    for (const name of LB_MAPS) for (const [key, value] of maps[name].entries()) image[name].put(key, value)
    return image
  }

  get mirror(): MapImage {
    return this.image
  }

  /** Takes the maps to `target`. Throws CapacityError before writing anything, or ApplyError after reverting. */
  apply(target: MapImage): PlanSummary {
    return this.applyChanges(changesTo(this.image, target))
  }

  /**
   * Writes the records of `changes` that differ from what the kernel holds, in the safe order. Throws
   * CapacityError before writing anything, or ApplyError after putting every touched key back.
   */
  applyChanges(changes: RecordChanges): PlanSummary {
    return drain(this.applyChangesSteps(changes))
  }

  /** applyChanges(), yielding between batch syscalls (the maps stay consistent at every yield: writes are ordered). */
  *applyChangesSteps(changes: RecordChanges): Steps<PlanSummary> {
    const steps = yield* planWritesSteps(this.image, changes)
    yield* this.checkCapacitySteps(steps)
    // What the touched keys held before, to put back if the kernel refuses a write half way (keys the mirror
    // did not hold are deleted on revert: the steps name them).
    const before = emptyImage()
    let n = 0
    for (const step of steps) {
      const mirror = this.image[step.map]
      if (mirror.size === 0) continue
      for (const slot of step.slots) {
        if (endsSlice(++n)) yield
        const old = mirror.findKeyOf(step.source, slot)
        if (old >= 0) before[step.map].putFrom(mirror, old)
      }
    }
    const written: Written[] = []
    let ran = false
    try {
      for (const step of steps) yield* this.runSteps(step, written)
      ran = true
    } catch (err) {
      const reverted = this.revertTouched(steps, before)
      throw new ApplyError(
        `writing the maps failed: ${(err as Error).message}; ${reverted ? 'the previous state was restored' : 'restoring the previous state failed too: the maps may be inconsistent, restart the daemon'}`,
        err,
        reverted,
      )
    } finally {
      // Abandoned between batches (the caller stopped driving it): the mirror still takes what the kernel took.
      // (A failed batch caught the mirror up before it threw.)
      if (!ran && written.length > 0) drain(this.catchUpSteps(written))
    }
    // The kernel took every write: the mirror follows. A complete image is what the maps hold now, as it is.
    if (changes.complete) this.image = changes.put
    else yield* this.catchUpSteps(written)
    return summarize(steps)
  }

  /**
   * While a change is applied the maps briefly hold old and new entries together: both must fit. Maps too small
   * are grown first when the writer may grow them (the contents are copied, nothing of the change is written yet).
   */
  private *checkCapacitySteps(steps: WriteStep[]): Steps<void> {
    const short: Partial<Record<LbMapName, number>> = {}
    let first: CapacityError | undefined
    let n = 0
    for (const name of LB_MAPS) {
      let needed = this.image[name].size
      let deleted = 0
      for (const step of steps) {
        if (step.map !== name) continue
        if (step.op === 'put')
          for (const slot of step.slots) {
            if (endsSlice(++n)) yield
            if (this.image[name].findKeyOf(step.source, slot) < 0) needed++
          }
        else deleted += step.slots.length
      }
      const { maxEntries, name: mapName } = this.maps[name].spec
      if (needed > maxEntries) {
        short[name] = needed
        first ??= new CapacityError(mapName, needed, maxEntries, needed - deleted)
      }
    }
    if (!first) return
    if (!this.grow) throw first
    this.maps = this.grow(short)
  }

  private run(step: WriteStep): void {
    const written: Written[] = []
    drain(this.runSteps(step, written))
    drain(this.catchUpSteps(written))
  }

  /**
   * Writes one step in batches and notes each batch the kernel took in `written`; the mirror is brought up to date
   * by the caller (catchUpSteps, or by adopting a complete image), not record by record here. If a batch fails,
   * the mirror is brought up to date with what was written and with what the failed batch left before it throws.
   */
  private *runSteps(step: WriteStep, written: Written[]): Steps<void> {
    const map = this.maps[step.map]
    const { source, slots } = step
    for (let i = 0; i < slots.length; i += CHUNK) {
      const end = Math.min(slots.length, i + CHUNK)
      const count = end - i
      // The batch's keys (and values) copied side by side, as the batch syscalls take them.
      const keys = Buffer.allocUnsafe(count * source.keySize)
      for (let j = 0; j < count; j++) source.copyKey(slots[i + j]!, keys, j * source.keySize)
      try {
        this.syscalls++
        if (step.op === 'put') {
          const values = Buffer.allocUnsafe(count * source.valueSize)
          for (let j = 0; j < count; j++) source.copyValue(slots[i + j]!, values, j * source.valueSize)
          map.putBatch(keys, values, count)
        } else map.deleteBatch(keys, count)
      } catch (err) {
        drain(this.catchUpSteps(written))
        this.resync(step.map, keys, count)
        throw err
      }
      written.push({ step, from: i, to: end })
      if (end < slots.length) yield
    }
  }

  /**
   * The mirror takes what the kernel took. Puts come before deletes and never share a key with them, and a delete
   * step's slots are the mirror's own (live until deleted here), so applying them in order is exact.
   */
  private *catchUpSteps(written: Written[]): Steps<void> {
    let n = 0
    for (const { step, from, to } of written) {
      const mirror = this.image[step.map]
      for (let j = from; j < to; j++) {
        if (endsSlice(++n)) yield
        const slot = step.slots[j]!
        if (step.op === 'put') mirror.putFrom(step.source, slot)
        else mirror.removeSlot(slot) // a delete step's slots are the mirror's own
      }
    }
    written.length = 0
  }

  /** After a failed batch, part of it may have landed: read those keys back so the mirror is the truth. */
  private resync(name: LbMapName, keys: Buffer, count: number): void {
    const mirror = this.image[name]
    for (let j = 0; j < count; j++) {
      const key = keys.subarray(j * mirror.keySize, (j + 1) * mirror.keySize)
      const value = this.maps[name].get(key)
      if (value) mirror.put(key, value)
      else mirror.remove(key)
    }
  }

  /**
   * Puts the keys `steps` touched back to what they held before (keys absent before are deleted), through the same
   * planner, so the revert goes in the safe order too.
   */
  private revertTouched(steps: WriteStep[], before: MapImage): boolean {
    try {
      const absentBefore = emptyImage()
      // Only puts can touch a key the maps did not hold: a delete step names keys the mirror held (all in `before`),
      // and its slots are the mirror's, freed by now.
      for (const step of steps) {
        if (step.op !== 'put') continue
        for (const slot of step.slots) {
          if (before[step.map].findKeyOf(step.source, slot) < 0) absentBefore[step.map].putFrom(step.source, slot)
        }
      }
      for (const step of planWrites(this.image, { put: before, delete: absentBefore })) this.run(step)
      return true
    } catch {
      return false
    }
  }
}
