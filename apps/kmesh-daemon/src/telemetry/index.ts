/**
 * Connection telemetry from the kernel: the sockops program (@kmesh-ts/bpf-progs src/sockops.c) attached to the
 * managed cgroup through a bpf_link pinned at <pinRoot>/links/sockops, its records drained from the km_telemetry
 * ring buffer without blocking the event loop, enriched from the mesh model and handed to the sinks. Records the
 * ring buffer had no room for are counted by the kernel (km_tel_lost, per CPU) and reported to the sinks' lost().
 *
 * The object shares km_manage (the gate: only enrolled network namespaces are reported) and km_sockstorage (the VIP
 * a rewritten connect dialled) with the connect object through their pins, so it loads after the dataplane, with the
 * capacities the dataplane's maps have now. Once attached, only the program's link and the two telemetry maps are
 * kept: the load-balancing maps the object also names are released, so maps grown online are not held twice.
 */
import { unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { BpfMap, Collection, RingBuffer } from '@kmesh-ts/bpf-maps'
import { connRecord, readU64 } from '@kmesh-ts/bpf-maps/codecs'
import { mapNames } from '@kmesh-ts/kernel-abi'
import { objectMaps, objectPath, programs } from '@kmesh-ts/bpf-progs'
import type { BpfLink } from '@kmesh-ts/bpf-maps'
import type { Logger } from '../log.js'
import { monotonicToEpochOffsetMs, toConnectionRecord, type MeshLookup } from './enrich.js'
import { attachPinnedCgroupLink, removePinnedLink } from './pinned-link.js'
import { noopSink, type TelemetrySink, type TelemetryStats } from './types.js'

export type { ConnectionRecord, Endpoint, TelemetrySink, TelemetryStats } from './types.js'
export { noopSink } from './types.js'
export type { MeshLookup } from './enrich.js'

export interface TelemetryOptions {
  pinRoot: string
  /** The managed cgroup (the dataplane's). */
  cgroupPath: string
  /** max_entries of the shared maps as pinned now (Dataplane.capacities()): the object reuses those pins. */
  mapSizes: Record<string, number>
  sink?: TelemetrySink | undefined
  /** Resolves addresses to workloads and services (the workload processor). */
  mesh?: MeshLookup | undefined
  /** The sockops object (default @kmesh-ts/bpf-progs' sockops.o). */
  objectPath?: string | undefined
  /** How often the lost counter is read (ms, default 1000). */
  lostPollMs?: number | undefined
  log: Logger
}

export const SOCKOPS_LINK = 'sockops'

export class Telemetry {
  #sinks: TelemetrySink[]
  #records = 0
  #lost = 0
  #lostSeen = 0n
  #epochOffsetMs = monotonicToEpochOffsetMs()
  #lostTimer: NodeJS.Timeout
  #closed = false
  private readonly ring: RingBuffer

  private constructor(
    private readonly options: TelemetryOptions,
    private readonly link: BpfLink,
    private readonly ringMap: BpfMap,
    private readonly lostMap: BpfMap,
  ) {
    this.#sinks = [options.sink ?? noopSink]
    this.ring = new RingBuffer(ringMap, (bytes) => this.#deliver(bytes))
    // Counted before this start (a previous daemon's, or while none ran) is not this daemon's loss to report.
    this.#lostSeen = this.#kernelLost()
    this.#lostTimer = setInterval(() => this.#readLost(), options.lostPollMs ?? 1000)
    this.#lostTimer.unref()
  }

  /** Loads the sockops object over the dataplane's pins, attaches it to the cgroup, and starts draining. */
  static start(options: TelemetryOptions): Telemetry {
    const { pinRoot, cgroupPath, log } = options
    const path = options.objectPath ?? objectPath('sockops')
    const names = new Set<string>(objectMaps.sockops)
    const maxEntries = Object.fromEntries(Object.entries(options.mapSizes).filter(([name]) => names.has(name)))
    const collection = Collection.load({ objectPath: path, pinRoot, maxEntries, reusePinned: true })
    let link: BpfLink | undefined
    let ringMap: BpfMap | undefined
    let lostMap: BpfMap | undefined
    try {
      const program = collection.program(programs.sockopsTelemetry.name)
      const attached = attachPinnedCgroupLink(program, cgroupPath, join(pinRoot, 'links', SOCKOPS_LINK))
      link = attached.link
      ringMap = BpfMap.openPinned(collection.pinPaths.get(mapNames.telemetry)!, { name: mapNames.telemetry })
      lostMap = BpfMap.openPinned(collection.pinPaths.get(mapNames.telemetryLost)!, { name: mapNames.telemetryLost })
      const telemetry = new Telemetry(options, link, ringMap, lostMap)
      telemetry.ring.start((err) =>
        log.warn({ err: (err as Error).message }, 'telemetry: a record could not be handled'),
      )
      log.info(
        {
          link: join(pinRoot, 'links', SOCKOPS_LINK),
          tookOver: attached.tookOver,
          ringBufferBytes: telemetry.ring.sizeBytes,
        },
        'connection telemetry attached',
      )
      return telemetry
    } catch (err) {
      ringMap?.close()
      lostMap?.close()
      if (link && !link.pinPath) link.close()
      throw err
    } finally {
      collection.close()
    }
  }

  /** Removes a sockops link a previous daemon left pinned (telemetry turned off). */
  static removeLeftover(pinRoot: string, log: Logger): void {
    if (removePinnedLink(join(pinRoot, 'links', SOCKOPS_LINK)))
      log.info({ pinRoot }, 'telemetry off: the sockops link a previous daemon left was detached')
  }

  /** Adds a consumer of records; returns its removal. */
  addSink(sink: TelemetrySink): () => void {
    this.#sinks = [...this.#sinks.filter((s) => s !== noopSink), sink]
    return () => {
      this.#sinks = this.#sinks.filter((s) => s !== sink)
    }
  }

  stats(): TelemetryStats {
    if (!this.#closed) this.#readLost()
    return { records: this.#records, lost: this.#lost, ringBufferBytes: this.ring.sizeBytes }
  }

  /** Drains what the ring buffer holds now (tests, and a last drain before close). Returns the records handled. */
  drain(): number {
    let total = 0
    for (let n = this.ring.drain(); n > 0; n = this.ring.drain()) total += n
    return total
  }

  /**
   * keepPinned: the program stays attached (records queue in the ring buffer, losses are counted, for the next
   * daemon). Otherwise the link is detached and the telemetry maps unpinned.
   */
  close({ keepPinned = false }: { keepPinned?: boolean } = {}): void {
    if (this.#closed) return
    try {
      this.drain()
      this.#readLost()
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message }, 'telemetry: the last drain failed')
    }
    this.#closed = true
    clearInterval(this.#lostTimer)
    this.ring.close()
    if (!keepPinned) {
      this.link.unpin()
      this.link.detach()
    }
    this.link.close()
    this.ringMap.close()
    this.lostMap.close()
    if (!keepPinned) removePins(this.options.pinRoot)
  }

  #deliver(bytes: Uint8Array): void {
    const record = toConnectionRecord(connRecord.decode(bytes), this.#epochOffsetMs, this.options.mesh)
    this.#records++
    for (const sink of this.#sinks) sink.record(record)
  }

  #kernelLost(): bigint {
    const key = Buffer.alloc(4)
    let sum = 0n
    for (const v of this.lostMap.getPerCpu(key) ?? []) sum += readU64(v, 0)
    return sum
  }

  #readLost(): void {
    const now = this.#kernelLost()
    const n = Number(now - this.#lostSeen)
    this.#lostSeen = now
    if (n <= 0) return
    this.#lost += n
    for (const sink of this.#sinks) sink.lost(n)
  }
}

/** The telemetry maps' pins (the shared maps' pins are the dataplane's to remove). */
function removePins(pinRoot: string): void {
  for (const name of [mapNames.telemetry, mapNames.telemetryLost]) {
    try {
      unlinkSync(join(pinRoot, 'maps', name))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
}
