/**
 * Loads one BPF object's maps and programs together (cilium/ebpf CollectionSpec → Collection): open the ELF,
 * size the maps, point them at their pins (reusing a compatible pin, refusing an incompatible one), load, and
 * hand out fd-owning handles.
 */
import { existsSync, mkdirSync, renameSync, rmdirSync, unlinkSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { BpfError, errnoName, SpecMismatchError } from './errors.js'
import { DEFAULT_BPFFS, ensureBpffs } from './bpffs.js'
import { closeFd, dupFd, lastErrno, native, withLibbpfLog, type Ptr } from './libbpf.js'
import { BpfMap, mapInfoOf, specMismatch, type MapSpec } from './map.js'
import { BpfProgram } from './program.js'

export interface CollectionOptions {
  /** The compiled BPF ELF object (clang -target bpf -g). */
  objectPath: string
  /** Maps are pinned at <pinRoot>/maps/<name>. Default '/sys/fs/bpf/kmesh-ts'. */
  pinRoot?: string
  /** Pin the object's maps (and reuse existing pins). Default true. */
  pinMaps?: boolean
  /** max_entries per map name, overriding the object's value; every name must be a map of the object. */
  maxEntries?: Record<string, number>
  /**
   * Default true: an existing pin with the same spec is reused (its contents survive a restart); a pin with a
   * different spec is an error naming it. false: existing pins are replaced by fresh, empty maps.
   */
  reusePinned?: boolean
  /**
   * What a reused pin whose spec differs from the object's (another max_entries, key or value size) does:
   * 'error' (default) refuses with SpecMismatchError; 'migrate' creates a fresh map pinned at
   * <pinRoot>/maps-next/<name> instead, listed in `migrations`: the caller copies what it needs from the old pin,
   * swaps its programs in, then calls commitMigrations(), which renames each new pin over the old one.
   */
  onSpecMismatch?: 'error' | 'migrate'
}

/** A map of a migrating load: the pinned map it replaces and where the new one is pinned until committed. */
export interface MapMigration {
  name: string
  oldPin: string
  newPin: string
  /** What differs, in words. */
  change: string
}

export const collectionDefaults = { pinRoot: '/sys/fs/bpf/kmesh-ts', pinMaps: true, reusePinned: true } as const

function* iterate(next: (obj: Ptr, prev: Ptr | null) => Ptr | null, obj: Ptr): Generator<Ptr> {
  for (let cur = next(obj, null); cur; cur = next(obj, cur)) yield cur
}

function validate(
  opts: CollectionOptions,
): Required<Omit<CollectionOptions, 'maxEntries'>> & { maxEntries: Record<string, number> } {
  if (!opts.objectPath) throw new TypeError('CollectionOptions.objectPath is required')
  if (!existsSync(opts.objectPath))
    throw new TypeError(`CollectionOptions.objectPath: ${opts.objectPath} does not exist`)
  const maxEntries = opts.maxEntries ?? {}
  for (const [name, n] of Object.entries(maxEntries)) {
    if (!Number.isInteger(n) || n < 1 || n > 0xffffffff)
      throw new RangeError(`CollectionOptions.maxEntries.${name} must be an integer in 1..2^32-1, got ${n}`)
  }
  return {
    objectPath: opts.objectPath,
    pinRoot: opts.pinRoot ?? collectionDefaults.pinRoot,
    pinMaps: opts.pinMaps ?? collectionDefaults.pinMaps,
    reusePinned: opts.reusePinned ?? collectionDefaults.reusePinned,
    onSpecMismatch: opts.onSpecMismatch ?? 'error',
    maxEntries,
  }
}

function specOfObjectMap(map: Ptr): MapSpec {
  return {
    name: native.bpf_map__name(map) as string,
    type: native.bpf_map__type(map) as number,
    keySize: native.bpf_map__key_size(map) as number,
    valueSize: native.bpf_map__value_size(map) as number,
    maxEntries: native.bpf_map__max_entries(map) as number,
    flags: native.bpf_map__map_flags(map) as number,
  }
}

/**
 * Points a map at its pin. A compatible existing pin is reused through bpf_map__reuse_fd (same map, same id,
 * same contents); libbpf creates and pins the others at load.
 */
function preparePin(map: Ptr, spec: MapSpec, pinPath: string, reuse: boolean, migrateTo?: string): string | undefined {
  if (existsSync(pinPath)) {
    if (!reuse) {
      unlinkSync(pinPath)
    } else {
      const fd = native.bpf_obj_get(pinPath) as number
      if (fd < 0)
        throw new BpfError({
          op: 'bpf_obj_get',
          errno: fd,
          mapName: spec.name,
          message: `cannot open the existing pin ${pinPath} of map ${spec.name}: ${errnoName(fd)}`,
        })
      try {
        const mismatch = specMismatch(spec, mapInfoOf(fd, pinPath))
        if (mismatch && migrateTo) {
          mkdirSync(dirname(migrateTo), { recursive: true })
          if (existsSync(migrateTo)) unlinkSync(migrateTo) // a migration that never committed
          const rc = native.bpf_map__set_pin_path(map, migrateTo) as number
          if (rc < 0) throw new BpfError({ op: 'bpf_map__set_pin_path', errno: rc, mapName: spec.name })
          return mismatch
        }
        if (mismatch) {
          throw new SpecMismatchError(
            'Collection.load',
            `pinned map ${pinPath} cannot be reused for map ${spec.name}: ${mismatch}. ` +
              `Remove the pin (rm ${pinPath}, which drops its contents) or load with reusePinned: false.`,
            spec.name,
          )
        }
        const rc = native.bpf_map__reuse_fd(map, fd) as number
        if (rc < 0)
          throw new BpfError({
            op: 'bpf_map__reuse_fd',
            errno: rc,
            mapName: spec.name,
            message: `reusing pin ${pinPath} for map ${spec.name} failed: ${errnoName(rc)}`,
          })
      } finally {
        closeFd(fd) // bpf_map__reuse_fd keeps its own duplicate
      }
    }
  }
  const rc = native.bpf_map__set_pin_path(map, pinPath) as number
  if (rc < 0) throw new BpfError({ op: 'bpf_map__set_pin_path', errno: rc, mapName: spec.name })
  return undefined
}

/** A verifier log can run to megabytes; its end says why the program was rejected. */
function clip(log: string, max = 32 * 1024): string {
  if (log.length <= max) return log
  return `${log.slice(0, 2048)}\n… (${log.length - max} characters left out) …\n${log.slice(log.length - (max - 2048))}`
}

export class Collection implements Disposable {
  readonly objectPath: string
  readonly maps: ReadonlyMap<string, BpfMap>
  readonly programs: ReadonlyMap<string, BpfProgram>
  /** Pin path per pinned map name. */
  readonly pinPaths: ReadonlyMap<string, string>
  /** Maps created fresh because their pin had another spec (onSpecMismatch: 'migrate'), until committed. */
  migrations: MapMigration[]
  #obj: Ptr | null

  private constructor(
    objectPath: string,
    obj: Ptr,
    maps: Map<string, BpfMap>,
    programs: Map<string, BpfProgram>,
    pinPaths: Map<string, string>,
    migrations: MapMigration[],
  ) {
    this.migrations = migrations
    this.objectPath = objectPath
    this.#obj = obj
    this.maps = maps
    this.programs = programs
    this.pinPaths = pinPaths
  }

  static load(options: CollectionOptions): Collection {
    const opts = validate(options)
    return withLibbpfLog((log) => {
      const obj = native.bpf_object__open_file(opts.objectPath, null) as Ptr | null
      if (!obj) {
        const errno = lastErrno()
        throw new BpfError({
          op: 'bpf_object__open_file',
          errno,
          message: `opening BPF object ${opts.objectPath} failed: ${errnoName(errno)}`,
          hint: log(),
        })
      }
      try {
        return Collection.#loadOpened(obj, opts, log)
      } catch (err) {
        native.bpf_object__close(obj)
        throw err
      }
    })
  }

  static #loadOpened(obj: Ptr, opts: ReturnType<typeof validate>, log: () => string): Collection {
    const objMaps = [...iterate(native.bpf_object__next_map, obj)]
    const names = new Set(objMaps.map((m) => native.bpf_map__name(m) as string))
    for (const name of Object.keys(opts.maxEntries)) {
      if (!names.has(name))
        throw new TypeError(
          `CollectionOptions.maxEntries.${name}: ${opts.objectPath} has no map named ${name} (it has ${[...names].join(', ')})`,
        )
    }
    const mapDir = join(opts.pinRoot, 'maps')
    if (opts.pinMaps) {
      if (opts.pinRoot === DEFAULT_BPFFS || opts.pinRoot.startsWith(`${DEFAULT_BPFFS}/`)) ensureBpffs()
      mkdirSync(mapDir, { recursive: true })
    }
    const pinPaths = new Map<string, string>()
    const migrations: MapMigration[] = []
    const nextDir = join(opts.pinRoot, 'maps-next') // bpffs refuses names with a dot
    for (const map of objMaps) {
      const name = native.bpf_map__name(map) as string
      const max = opts.maxEntries[name]
      if (max !== undefined) {
        const rc = native.bpf_map__set_max_entries(map, max) as number
        if (rc < 0) throw new BpfError({ op: 'bpf_map__set_max_entries', errno: rc, mapName: name })
      }
      // .rodata/.bss/.data belong to one load of the object: never shared through a pin.
      if (opts.pinMaps && !native.bpf_map__is_internal(map)) {
        const pinPath = join(mapDir, name)
        const migrateTo = opts.onSpecMismatch === 'migrate' ? join(nextDir, name) : undefined
        const change = preparePin(map, specOfObjectMap(map), pinPath, opts.reusePinned, migrateTo)
        if (change !== undefined && migrateTo) migrations.push({ name, oldPin: pinPath, newPin: migrateTo, change })
        pinPaths.set(name, pinPath)
      }
    }

    const rc = native.bpf_object__load(obj) as number
    if (rc < 0) {
      throw new BpfError({
        op: 'bpf_object__load',
        errno: rc,
        message: `loading BPF object ${opts.objectPath} failed: ${errnoName(rc)}`,
        hint: `libbpf log (the verifier log of a rejected program is between BEGIN/END PROG LOAD LOG):\n${clip(log())}`,
      })
    }

    const maps = new Map<string, BpfMap>()
    const programs = new Map<string, BpfProgram>()
    try {
      for (const map of objMaps) {
        const spec = specOfObjectMap(map)
        maps.set(spec.name, new BpfMap(dupFd(native.bpf_map__fd(map) as number), spec))
      }
      for (const prog of iterate(native.bpf_object__next_program, obj)) {
        const fd = native.bpf_program__fd(prog) as number
        if (fd < 0) continue // autoload disabled
        const name = native.bpf_program__name(prog) as string
        programs.set(
          name,
          new BpfProgram(dupFd(fd), {
            name,
            sectionName: native.bpf_program__section_name(prog) as string,
            type: native.bpf_program__type(prog) as number,
            expectedAttachType: native.bpf_program__expected_attach_type(prog) as number,
          }),
        )
      }
    } catch (err) {
      for (const m of maps.values()) m.close()
      for (const p of programs.values()) p.close()
      throw err
    }
    return new Collection(opts.objectPath, obj, maps, programs, pinPaths, migrations)
  }

  map(name: string): BpfMap {
    const m = this.maps.get(name)
    if (!m)
      throw new TypeError(`${this.objectPath} has no map named ${name} (it has ${[...this.maps.keys()].join(', ')})`)
    return m
  }

  program(name: string): BpfProgram {
    const p = this.programs.get(name)
    if (!p)
      throw new TypeError(
        `${this.objectPath} has no program named ${name} (it has ${[...this.programs.keys()].join(', ')})`,
      )
    return p
  }

  /**
   * Renames each migrated map's pin over the old one (rename(2) in bpffs: the path never disappears) and forgets
   * the migrations. The old maps live on while a program or fd still uses them.
   */
  commitMigrations(): void {
    for (const m of this.migrations) renameSync(m.newPin, m.oldPin)
    const dirs = new Set(this.migrations.map((m) => dirname(m.newPin)))
    this.migrations = []
    for (const d of dirs) {
      try {
        rmdirSync(d)
      } catch {
        /* not empty or gone */
      }
    }
  }

  /** Removes this collection's map pins (the maps live on while a program or fd still uses them). */
  unpinMaps(): void {
    for (const path of this.pinPaths.values()) {
      try {
        unlinkSync(path)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      }
    }
  }

  /** Closes every handle and the bpf_object. Pinned maps and links stay in the kernel. */
  close(): void {
    for (const m of this.maps.values()) m.close()
    for (const p of this.programs.values()) p.close()
    if (this.#obj) native.bpf_object__close(this.#obj)
    this.#obj = null
  }

  [Symbol.dispose](): void {
    this.close()
  }
}
