/**
 * The kernel side of one daemon: the connect object loaded with its maps pinned under the pin root, the
 * connect4/connect6 programs attached to the managed cgroup through pinned bpf_links, the tail-call slots
 * filled, the cgroup's network namespace enrolled, and a MapWriter over the four load-balancing maps.
 *
 * Pins: <pinRoot>/maps/<map name> (reused across restarts when the spec matches, migrated when it changed),
 * <pinRoot>/links/connect4|connect6 and <pinRoot>/schema. With keepPinned the daemon exits leaving links and maps
 * in place, so traffic keeps flowing and the next start takes over from the kernel's state: the pinned links are
 * switched to its programs with BPF_LINK_UPDATE (takeover.ts).
 */
import { existsSync, mkdirSync, readdirSync, rmSync, rmdirSync } from 'node:fs'
import { join } from 'node:path'
import {
  BpfLink,
  Collection,
  cgroupId,
  ensureBpffs,
  linkInfo,
  progArraySet,
  SpecMismatchError,
  type BpfMap,
} from '@kmesh-ts/bpf-maps'
import { mapSpecs } from '@kmesh-ts/bpf-maps/codecs'
import { objectPath, programs, tailCalls } from '@kmesh-ts/bpf-progs'
import { CapacityError, MapWriter, type LbMaps } from './map-writer.js'
import type { LbMapName } from './map-image.js'
import { controlConnect } from './enrol.js'
import { checkSchema, copyMigratedMaps, removeSchema, writeSchema } from './takeover.js'
import type { Logger } from '../log.js'

export interface DataplaneOptions {
  pinRoot: string
  cgroupPath: string
  /** ELF map name -> max entries, for maps whose capacity the operator sets. */
  mapSizes?: Record<string, number>
  /** Network namespace to enrol (default: the daemon's own). */
  netnsPath?: string
  /** false: enrol no network namespace at start (node mode enrols pods one by one; host processes stay untouched). */
  enrolAtStart?: boolean
  /** Per map name: the most entries a map may grow to online (default DEFAULT_MAP_CEILING). */
  mapSizeMax?: Record<string, number> | undefined
  /** The connect object to load (default: @kmesh-ts/bpf-progs' cgroup_sock.o): a custom build, or a test's. */
  objectPath?: string | undefined
  log: Logger
}

export class Dataplane {
  readonly writer: MapWriter
  /** The attachments, with the program each runs (switched together when the maps grow). */
  private links: Array<{ program: string; link: BpfLink }> = []
  private collection: Collection
  #maps: LbMaps & { manage: BpfMap }
  /** max_entries per map name now (a floor from --map-size; the maps grow past it up to the ceiling). */
  private readonly sizes: Record<string, number>

  private constructor(
    private readonly options: DataplaneOptions,
    collection: Collection,
    sizes: Record<string, number>,
  ) {
    this.collection = collection
    this.sizes = sizes
    this.#maps = lbMapsOf(collection)
    this.writer = new MapWriter(this.#maps, MapWriter.readMirror(this.#maps), (needed) => this.grow(needed))
  }

  /** The load-balancing maps and km_manage in use now (they change when the maps grow). */
  get maps(): LbMaps & { manage: BpfMap } {
    return this.#maps
  }

  /** Current capacity per map name. */
  capacities(): Record<string, number> {
    return { ...this.sizes }
  }

  /**
   * Maps that grow online: a change needs more entries than a map holds. Each short map gets a new capacity (twice
   * what is needed, at most the ceiling), a new collection is loaded whose short maps are fresh (migrated: the
   * records are copied), the pinned links are switched to its programs with BPF_LINK_UPDATE, the new maps take the
   * pins' paths, and the old collection is released. No connect is without a program; no program sees a map
   * half-copied (nothing writes while this runs). Beyond the ceiling: CapacityError naming the flag.
   */
  private grow(needed: Partial<Record<LbMapName, number>>): LbMaps {
    const { log, pinRoot } = this.options
    const next: Record<string, number> = { ...this.sizes }
    for (const [role, n] of Object.entries(needed) as Array<[LbMapName, number]>) {
      const name = mapSpecs[role].name
      const ceiling = this.options.mapSizeMax?.[name] ?? DEFAULT_MAP_CEILING
      if (n > ceiling) throw new CapacityError(name, n, ceiling, n, 'ceiling')
      next[name] = Math.min(ceiling, Math.max(n * 2, (this.sizes[name] ?? 0) * 2))
    }
    const started = performance.now()
    const grown = loadConnectObject(pinRoot, next, this.options.objectPath ?? objectPath('cgroup_sock'))
    try {
      copyMigratedMaps(grown, log)
      for (const hook of ['connect4', 'connect6'] as const)
        progArraySet(grown.map(tailCalls[hook].map), tailCalls[hook].index, grown.program(programs[hook].name))
      for (const { program, link } of this.links) link.update(grown.program(program))
    } catch (err) {
      // The links may already run some new programs: they keep working (same records); the pins stay the old maps'.
      grown.close()
      throw err
    }
    grown.commitMigrations()
    const old = this.collection
    this.collection = grown
    this.#maps = lbMapsOf(grown)
    Object.assign(this.sizes, next)
    old.close()
    log.info(
      {
        sizes: Object.fromEntries(
          Object.keys(needed).map((r) => [mapSpecs[r as LbMapName].name, next[mapSpecs[r as LbMapName].name]]),
        ),
        ms: Math.round(performance.now() - started),
      },
      'maps grown online: records copied, programs switched',
    )
    return this.#maps
  }

  static async start(options: DataplaneOptions): Promise<Dataplane> {
    const { pinRoot, cgroupPath, log } = options
    if (!existsSync(join(cgroupPath, 'cgroup.procs')))
      throw new Error(`--cgroup ${cgroupPath} is not a cgroup v2 directory (no cgroup.procs)`)
    ensureBpffs()
    mkdirSync(join(pinRoot, 'links'), { recursive: true })
    const maxEntries: Record<string, number> = {}
    for (const spec of Object.values(mapSpecs))
      maxEntries[spec.name] = options.mapSizes?.[spec.name] ?? spec.defaultMaxEntries
    // Pins of a newer schema are refused before anything is touched (takeover.ts).
    const schema = checkSchema(pinRoot)
    const collection = loadConnectObject(pinRoot, maxEntries, options.objectPath ?? objectPath('cgroup_sock'))
    try {
      copyMigratedMaps(collection, log)
    } catch (err) {
      collection.close()
      throw err
    }
    const dataplane = new Dataplane(options, collection, maxEntries)
    // Pins a previous daemon kept (--keep-pinned) carry live traffic: a failed start must leave them in force.
    const tookOver = existsSync(join(pinRoot, 'links', 'connect4'))
    try {
      dataplane.attach()
      // The links run the new programs now: the migrated maps take the old pins' paths, the pins get our schema.
      collection.commitMigrations()
      writeSchema(pinRoot)
      if (options.enrolAtStart !== false) await dataplane.enrol()
    } catch (err) {
      dataplane.close({ keepPinned: tookOver })
      throw err
    }
    log.info(
      { pinRoot, cgroup: cgroupPath, mirror: dataplane.mirrorCounts(), tookOver, pinnedSchema: schema ?? null },
      'data path ready',
    )
    return dataplane
  }

  mirrorCounts(): Record<string, number> {
    const m = this.writer.mirror
    return { backend: m.backend.size, endpoint: m.endpoint.size, service: m.service.size, frontend: m.frontend.size }
  }

  /**
   * Attaches the freshly loaded programs. Where a previous daemon left a pinned link on this cgroup, the link is
   * switched to the new program with BPF_LINK_UPDATE: one atomic swap, no instant without a hook and none with
   * two. A link pinned for another cgroup is replaced: the new link is attached first, then the old one dropped.
   */
  private attach(): void {
    const { cgroupPath, pinRoot } = this.options
    for (const hook of ['connect4', 'connect6', 'getpeername4', 'getpeername6'] as const) {
      // getpeername answers the VIP dialled, not the backend; a custom or older connect object may not have it.
      if (!this.collection.programs.has(programs[hook].name)) continue
      const program = this.collection.program(programs[hook].name)
      // The program is its own tail-call target: a waypoint VIP is load-balanced on a second pass (reference §1.2).
      if (hook === 'connect4' || hook === 'connect6')
        progArraySet(this.collection.map(tailCalls[hook].map), tailCalls[hook].index, program)
      const pinPath = join(pinRoot, 'links', hook)
      const previous = existsSync(pinPath) ? BpfLink.openPinned(pinPath) : undefined
      if (previous && linkInfo(previous).cgroupId === cgroupId(cgroupPath)) {
        previous.update(program)
        this.links.push({ program: program.name, link: previous })
        continue
      }
      const link = program.attachCgroup(cgroupPath)
      this.links.push({ program: program.name, link })
      if (previous) {
        previous.unpin()
        previous.detach()
        previous.close()
      }
      link.pin(pinPath)
    }
  }

  /** Enrols the cgroup's network namespace and checks that the kernel recorded it. */
  async enrol(): Promise<void> {
    const before = this.maps.manage.count()
    const result = await controlConnect(
      { cgroupPath: this.options.cgroupPath, netnsPath: this.options.netnsPath },
      'enrol',
    )
    if (result !== 'ECONNREFUSED' || this.maps.manage.count() < Math.max(before, 1)) {
      throw new Error(
        `enrolling cgroup ${this.options.cgroupPath} failed: the control connect returned ${result || 'nothing'} and km_manage holds ${this.maps.manage.count()} entries; is the connect4 program attached?`,
      )
    }
  }

  /**
   * keepPinned: leave programs attached and maps pinned (traffic keeps flowing; the next start reuses them).
   * Otherwise detach, unpin and remove the pin root.
   */
  close({ keepPinned }: { keepPinned: boolean }): void {
    for (const { link } of this.links) {
      if (!keepPinned) {
        link.unpin()
        link.detach()
      }
      link.close()
    }
    this.links = []
    if (!keepPinned) {
      this.collection.unpinMaps()
      removeSchema(this.options.pinRoot)
    }
    this.collection.close()
    if (!keepPinned) removeEmptyPinRoot(this.options.pinRoot)
  }
}

/** The hard ceiling of a map that grows online, unless --map-size-max says otherwise (about 1 GB of records). */
export const DEFAULT_MAP_CEILING = 8 * 1024 * 1024

function lbMapsOf(collection: Collection): LbMaps & { manage: BpfMap } {
  return {
    frontend: collection.map(mapSpecs.frontend.name),
    service: collection.map(mapSpecs.service.name),
    endpoint: collection.map(mapSpecs.endpoint.name),
    backend: collection.map(mapSpecs.backend.name),
    manage: collection.map(mapSpecs.manage.name),
  }
}

function removeEmptyPinRoot(pinRoot: string): void {
  for (const dir of [join(pinRoot, 'links'), join(pinRoot, 'maps'), pinRoot]) {
    if (!existsSync(dir)) continue
    if (readdirSync(dir).length === 0) rmdirSync(dir)
    else if (dir !== pinRoot) rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Loads the connect object over the pins a previous daemon left: same-spec pins are reused, pins whose spec changed
 * (another --map-size, a new version's capacity) are migrated (takeover.ts). Other load errors are said in the
 * daemon's terms.
 */
function loadConnectObject(pinRoot: string, maxEntries: Record<string, number>, path: string): Collection {
  try {
    return Collection.load({ objectPath: path, pinRoot, maxEntries, reusePinned: true, onSpecMismatch: 'migrate' })
  } catch (err) {
    if (!(err instanceof SpecMismatchError)) throw err
    throw new Error(`${err.message.replace(/ Remove the pin .*$/s, '')} (pin root ${pinRoot})`, { cause: err })
  }
}
