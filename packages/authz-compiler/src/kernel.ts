/**
 * @kmesh-ts/authz-compiler/kernel — puts compiled sets into the live maps (needs libbpf through @kmesh-ts/bpf-maps).
 *
 * A swap never shows half a set: the new set is written under the generation the program does not read, then the
 * one value in km_authz_state is flipped (a single 8-byte array update, atomic for the program), then the old
 * generation's entries are deleted. Until the flip the old set is enforced whole; after it, the new one. A failed
 * write leaves the old generation active and removes what was written.
 */
import type { BpfMap, Collection } from '@kmesh-ts/bpf-maps'
import {
  authzAddrKey,
  authzIdentKey,
  authzMapSpecs,
  authzPortKey,
  authzSrcKey,
  authzState,
  authzStats,
  authzTotals,
  type AuthzTotals,
  u32Value,
} from '@kmesh-ts/bpf-maps/codecs'
import { AUTHZ_MAX_NODES } from '@kmesh-ts/kernel-abi'
import type { CompiledAuthz, RootsUpdate } from './compile.js'
import {
  type AuthzMapRole,
  encodeGeneration,
  encodeRoots,
  encodeSources,
  encodeTable,
  type PackedRecords,
} from './encode.js'

export type AuthzMapSet = Record<keyof typeof authzMapSpecs, BpfMap>

/** Counters of one policy slot, summed over CPUs. */
export interface SlotCounters {
  allow: number
  deny: number
  dryRunDeny: number
}

const KEYED_ROLES = ['root', 'sourceIdentity', 'port', 'source', 'identity'] as const
type KeyedRole = (typeof KEYED_ROLES)[number]
/** Keys of one role written or deleted in place (by their bytes as latin1 text). */
type KeyEdits = { added: Map<string, Buffer>; removed: Set<string> }
const buf = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength)

/** Which generation a key of a keyed map belongs to (the gen field, or the node id's range). */
function generationOfKey(role: (typeof KEYED_ROLES)[number], key: Buffer): number {
  if (role === 'root' || role === 'sourceIdentity') return authzAddrKey.decode(key).gen
  const node =
    role === 'port'
      ? authzPortKey.decode(key).node
      : role === 'source'
        ? authzSrcKey.decode(key).node
        : authzIdentKey.decode(key).node
  return node > AUTHZ_MAX_NODES ? 1 : 0
}

export interface InstallResult {
  gen: number
  records: number
  ms: number
}

/** A source address and its identity id, as the compiled set numbers identities. */
export interface SourceRecord {
  address: Uint8Array
  identity: number
}

/** What AuthzMaps.update changes in the active generation. */
export interface InPlaceChange {
  /** What updateRoots changed in the set. */
  roots?: RootsUpdate | undefined
  /** Source addresses whose identity is set, and those that have none any more. */
  sources?: { put: readonly SourceRecord[]; remove: readonly Uint8Array[] } | undefined
}

export class AuthzMaps {
  /** Keys written for the active generation (undefined: not known, e.g. left by an earlier process). */
  #activeKeys: Record<AuthzMapRole, PackedRecords> | undefined
  #activeGen = 0
  /**
   * What in-place updates changed in the active generation's keys, per role, beside the installed ones
   * (#activeKeys): keys added (by their bytes as latin1 text; one may also be an installed key it overwrote) and
   * installed keys removed. Small: a change in place touches a few keys, and the next swap starts afresh.
   */
  #edits: Partial<Record<KeyedRole, KeyEdits>> = {}

  constructor(readonly maps: AuthzMapSet) {}

  static fromCollection(c: Collection): AuthzMaps {
    const maps = Object.fromEntries(
      Object.entries(authzMapSpecs).map(([role, spec]) => [role, c.map(spec.name)]),
    ) as AuthzMapSet
    return new AuthzMaps(maps)
  }

  get activeGeneration(): number {
    const v = this.maps.state.get(buf(encodeU32(0)))
    return v ? authzState.decode(v).gen : 0
  }

  /** Writes `set` under the inactive generation, flips to it, then deletes the previous generation's entries. */
  install(set: CompiledAuthz): InstallResult {
    const started = performance.now()
    const old = this.activeGeneration
    const gen = 1 - old
    const packed = encodeGeneration(set, gen)
    // Anything left in the inactive generation (an interrupted swap, another process) goes first.
    this.#deleteGeneration(gen, undefined)
    const written: AuthzMapRole[] = []
    try {
      for (const role of ['node', ...KEYED_ROLES] as const) {
        const r = packed[role]
        if (r.count > 0) this.maps[role].putBatch(buf(r.keys), buf(r.values), r.count)
        written.push(role)
      }
    } catch (err) {
      this.#deleteGeneration(gen, packed)
      throw err
    }
    const state = new Uint8Array(authzState.size)
    authzState.encode({ gen }, state)
    this.maps.state.put(buf(encodeU32(0)), buf(state))
    // The new generation is the active one from the flip on, whatever happens to the old one's entries.
    const oldKeys = this.#activeKeys
    const oldEdits = this.#edits
    this.#activeKeys = packed
    this.#activeGen = gen
    this.#edits = {}
    try {
      this.#deleteGeneration(old, oldKeys, oldEdits)
    } catch {
      // Keys known for it that are not there (a write that failed part-way before): walk it instead.
      this.#deleteGeneration(old, undefined)
    }
    const records = Object.values(packed).reduce((n, r) => n + r.count, 0)
    return { gen, records, ms: performance.now() - started }
  }

  /**
   * Changes the active generation in place, with no swap, for what the installed set already decides: first the
   * decision nodes and edges updateRoots added (no root reaches them yet), then each root set or removed, then
   * each source address's identity set or removed. Every root and every source is one 8-byte value, so a SYN
   * meets the old diagram or the new one, the old identity or the new one, never half of either. Only after an
   * `install` by this instance (the active generation's keys must be known, so the next swap deletes them all).
   */
  update(set: CompiledAuthz, change: InPlaceChange): InstallResult {
    const started = performance.now()
    if (!this.#activeKeys) throw new Error('AuthzMaps.update: no set was installed by this instance')
    const gen = this.#activeGen
    let records = 0
    const write = (role: AuthzMapRole, r: PackedRecords) => {
      if (r.count === 0) return
      this.maps[role].putBatch(buf(r.keys), buf(r.values), r.count)
      if (role !== 'node') this.#track(role as KeyedRole, r, true)
      records += r.count
    }
    const remove = (role: KeyedRole, keys: Buffer[]) => {
      // each key noted as soon as it is gone, so a failure part-way leaves the notes true
      for (const key of keys) {
        this.maps[role].delete(key)
        this.#track(role, { keys: key, values: new Uint8Array(0), count: 1 }, false)
        records++
      }
    }
    const addrKey = (address: Uint8Array) => {
      const key = Buffer.alloc(authzAddrKey.size)
      authzAddrKey.encode({ gen, address }, key)
      return key
    }
    if (change.roots) {
      const table = encodeTable(set.table, gen, change.roots.from)
      for (const role of ['node', 'port', 'source', 'identity'] as const) write(role, table[role])
      write('root', encodeRoots(change.roots.roots, gen))
      remove('root', change.roots.removed.map(addrKey))
    }
    if (change.sources) {
      write('sourceIdentity', encodeSources(change.sources.put, gen))
      remove('sourceIdentity', change.sources.remove.map(addrKey))
    }
    return { gen, records, ms: performance.now() - started }
  }

  /** Notes keys written or deleted in place (so the next swap deletes exactly the keys the generation has). */
  #track(role: KeyedRole, r: PackedRecords, added: boolean): void {
    let edits = this.#edits[role]
    if (!edits) this.#edits[role] = edits = { added: new Map(), removed: new Set() }
    const size = r.count === 0 ? 0 : r.keys.length / r.count
    const keys = Buffer.from(r.keys.buffer, r.keys.byteOffset, r.keys.byteLength)
    for (let i = 0; i < r.count; i++) {
      const key = Buffer.from(keys.subarray(i * size, (i + 1) * size))
      const text = key.toString('latin1')
      // A removed key stays noted even when it is written again: the installed copy of it is gone either way, and
      // a key written again is counted once, from `added`.
      if (added) edits.added.set(text, key)
      else {
        edits.added.delete(text)
        edits.removed.add(text)
      }
    }
  }

  /**
   * The keys a generation holds: those installed, less those removed in place, plus those added in place that
   * were not installed already.
   */
  static #keysAfterEdits(installed: PackedRecords, edits: KeyEdits): { keys: Buffer; count: number } {
    const size = installed.count === 0 ? 0 : installed.keys.length / installed.count
    const all = Buffer.from(installed.keys.buffer, installed.keys.byteOffset, installed.keys.byteLength)
    const kept: Buffer[] = []
    const seen = new Set<string>()
    for (let i = 0; i < installed.count; i++) {
      const key = all.subarray(i * size, (i + 1) * size)
      const text = key.toString('latin1')
      if (edits.removed.has(text)) continue
      kept.push(key)
      if (edits.added.size > 0) seen.add(text)
    }
    for (const [text, key] of edits.added) if (!seen.has(text)) kept.push(key)
    return { keys: Buffer.concat(kept), count: kept.length }
  }

  /**
   * Deletes generation `gen`'s keyed entries: the known keys in one batch each (as changed in place, when they
   * were), or by walking every key.
   */
  #deleteGeneration(
    gen: number,
    known: Record<AuthzMapRole, PackedRecords> | undefined,
    edits: Partial<Record<KeyedRole, KeyEdits>> = {},
  ): void {
    for (const role of KEYED_ROLES) {
      const map = this.maps[role]
      const edited = edits[role]
      if (known && edited) {
        const { keys, count } = AuthzMaps.#keysAfterEdits(known[role], edited)
        if (count > 0) map.deleteBatch(keys, count)
        continue
      }
      if (known) {
        const r = known[role]
        if (r.count > 0) map.deleteBatch(buf(r.keys), r.count)
        continue
      }
      const stale: Buffer[] = []
      for (const key of map.keys()) if (generationOfKey(role, key) === gen) stale.push(key)
      for (const key of stale) map.delete(key)
    }
  }

  /** A policy slot's counters summed over CPUs. */
  slotCounters(slot: number): SlotCounters {
    const perCpu = this.maps.stats.getPerCpu(buf(encodeU32(slot))) ?? []
    const out = { allow: 0, deny: 0, dryRunDeny: 0 }
    for (const v of perCpu) {
      const s = authzStats.decode(v)
      out.allow += Number(s.allow)
      out.deny += Number(s.deny)
      out.dryRunDeny += Number(s.dryRunDeny)
    }
    return out
  }

  /** Zeroes a slot's counters on every CPU (a slot handed to another policy starts from zero). */
  resetSlot(slot: number): void {
    this.maps.stats.putPerCpu(buf(encodeU32(slot)), Buffer.alloc(authzStats.size))
  }

  /** What the program did with every packet, summed over CPUs. */
  totals(): Record<keyof AuthzTotals, number> {
    const perCpu = this.maps.totals.getPerCpu(buf(encodeU32(0))) ?? []
    const out = { packets: 0, synsChecked: 0, unparsed: 0, deniedRst: 0, deniedDrop: 0, broken: 0 }
    for (const v of perCpu) {
      const t = authzTotals.decode(v)
      for (const k of Object.keys(out) as Array<keyof AuthzTotals>) out[k] += Number(t[k])
    }
    return out
  }
}

function encodeU32(v: number): Uint8Array {
  const b = new Uint8Array(4)
  u32Value.encode(v, b)
  return b
}
