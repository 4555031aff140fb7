/**
 * The workload processor: mesh changes in, kernel maps out. Local mode (a mesh file, diffed against what is
 * held) and cluster mode (istiod's deltas) both come here. The engine derives only the records a change
 * touches; the writer writes those that differ from the kernel, in the safe order; the engine's state is
 * committed only after the kernel accepted every write, and rolled back otherwise, so the last good state
 * stays in force. Ids are persisted before the maps reference them.
 */
import { MeshEngine } from './engine.js'
import { drain, driveYielding, type Steps } from '../util/slices.js'
import type { PlanSummary } from '../dataplane/plan.js'
import { ApplyError, type MapWriter } from '../dataplane/map-writer.js'
import type { IdTable } from '../ids/id-table.js'
import type { MeshConfig, MeshDelta, ResourceChanges, ResourceEdit } from '../model/index.js'

/** How an Applied's writes are logged (sources log them without reaching into the dataplane). */
export { compactWrites } from '../dataplane/plan.js'

/** Milliseconds to the microsecond, for the `ms` split the sources log beside an Applied. */
export const roundMs = (ms: number): number => Math.round(ms * 1000) / 1000

export interface Applied {
  warnings: string[]
  writes: PlanSummary
  /** true when the change was recomputed from scratch (first load, the ranking client or a waypoint moved) */
  full: boolean
  /** map batch syscalls the change took */
  syscalls: number
  /** milliseconds spent deriving the records (engine) and writing them (writer, ids included) */
  computeMs: number
  writeMs: number
}

export interface ProcessorOptions {
  /** Writes record changes to the kernel maps (the dataplane's). */
  writer: MapWriter
  /** Stable ids of workloads and services, persisted before the maps reference them. */
  ids: IdTable
  /** The node this daemon runs on: its first workload is the client whose locality ranks endpoints. */
  nodeName?: string | undefined
  /** The node's network (`''`: none): which VIPs are frontends and which endpoints backends (network.ts). */
  network?: string | undefined
}

export class WorkloadProcessor {
  private readonly engine: MeshEngine

  private readonly writer: MapWriter
  private readonly ids: IdTable

  constructor(options: ProcessorOptions) {
    this.writer = options.writer
    this.ids = options.ids
    this.engine = new MeshEngine({ ids: options.ids, nodeName: options.nodeName, network: options.network })
  }

  /** The mesh held now, read-only: workloads by uid, services by `namespace/hostname`. */
  get held(): MeshEngine['held'] {
    return this.engine.held
  }

  /** Who claims an address (services by VIP, workloads by address), read-only: telemetry labels. */
  lookupIp(ip: string): ReturnType<MeshEngine['lookupIp']> {
    return this.engine.lookupIp(ip)
  }

  /**
   * Takes the maps to a whole mesh (local mode); says which resources were added, changed and removed. `edit`,
   * when the source knows it (an edited mesh file re-read item by item), is what changed against the mesh held.
   */
  apply(config: MeshConfig, edit?: ResourceEdit): Applied & { changes: ResourceChanges } {
    const { delta, changes } = this.engine.deltaTo(config, edit)
    return { ...this.applyDelta(delta), changes }
  }

  /** Applies a delta (cluster mode). Throws CapacityError (nothing written) or ApplyError (reverted). */
  applyDelta(delta: MeshDelta): Applied {
    return drain(this.applySteps(delta))
  }

  /**
   * The same, with a macrotask every slice of work (a few thousand resources or one batch syscall), so that on a
   * big push timers, the admin endpoint and the xDS stream keep their turns. Nothing else uses the engine in
   * between: the xDS client hands over one response at a time. The maps are consistent at every yield (writes
   * are ordered), but the engine's state is committed only at the end.
   */
  async applyDeltaYielding(delta: MeshDelta): Promise<Applied> {
    return driveYielding(this.applySteps(delta))
  }

  /** Derive, then write; yields every slice of work. computeMs/writeMs count work, not the time yielded. */
  private *applySteps(delta: MeshDelta): Steps<Applied> {
    let computeMs = 0
    let writeMs = 0
    const timed = function* <T>(steps: Steps<T>, add: (ms: number) => void): Steps<T> {
      let started = performance.now()
      for (;;) {
        const r = steps.next()
        add(performance.now() - started)
        if (r.done) return r.value
        yield
        started = performance.now()
      }
    }
    const pending = yield* timed(this.engine.changeSteps(delta, this.writer.mirror), (ms) => (computeMs += ms))
    const syscallsBefore = this.writer.syscalls
    let writes: PlanSummary
    try {
      yield* this.ids.saveSteps()
      writes = yield* timed(this.writer.applyChangesSteps(pending.changes), (ms) => (writeMs += ms))
    } catch (err) {
      pending.rollback()
      // The kernel kept part of the change: only a full recompute against the mirror can clean it up.
      if (err instanceof ApplyError && !err.reverted) this.engine.markUnsynced()
      throw err
    }
    pending.commit()
    yield* this.ids.saveSteps()
    return {
      warnings: pending.warnings,
      writes,
      full: pending.full,
      syscalls: this.writer.syscalls - syscallsBefore,
      computeMs,
      writeMs,
    }
  }
}
