/**
 * The mesh as the daemon holds it, with the indexes that let one change be applied in time proportional to
 * what it touches: a workload update rewrites its backend, its frontends and the services it is (or was) an
 * endpoint of, not the whole mesh. Every derivation goes through resources.ts, the same code a full recompute
 * uses; a change that could move many records at once (the ranking client, a waypoint target) falls back to a
 * full recompute.
 *
 * change() mutates the state and returns the record-level changes against the kernel mirror; the caller
 * writes them and then calls commit(), or rollback() if the kernel refused, so the state always equals what
 * the maps hold.
 */
import { PRIO_COUNT } from '@kmesh-ts/kernel-abi'
import {
  backendKey,
  backendValue,
  endpointKey,
  frontendKey,
  frontendValue,
  serviceKey,
} from '@kmesh-ts/bpf-maps/codecs'
import type { PeerInfo } from '@kmesh-ts/lb-model'
import {
  deltaBetween,
  deltaOfEdit,
  serviceId,
  serviceKeyOf,
  workloadId,
  type MeshConfig,
  type MeshDelta,
  type ResourceChanges,
  type ResourceEdit,
  type Service,
  type Workload,
} from '../model/index.js'
import type { IdKind, IdTable } from '../ids/id-table.js'
import {
  bucketsOf,
  emptyImage,
  putRecord,
  encodeRecord,
  type LbMapName,
  type MapImage,
  type RecordChanges,
} from '../dataplane/map-image.js'
import { changesToSteps } from '../dataplane/plan.js'
import { imageSink, serviceRecords } from './records.js'
import { drain, endsSlice, type Steps } from '../util/slices.js'
import {
  backendOf,
  gatewayTarget,
  hasBackend,
  hasKeys,
  peerOf,
  serviceFrontendIps,
  serviceIntentOf,
  workloadFrontendIps,
  intentSink,
  type Intent,
  type IntentContext,
  type IntentSink,
} from './resources.js'
import { vipRank, networkRank } from './network.js'
import { Claims } from './claims.js'

export interface PendingChange {
  changes: RecordChanges
  warnings: string[]
  /** true when the change needed a full recompute */
  full: boolean
  commit(): void
  rollback(): void
}

export class MeshEngine {
  private readonly workloads = new Map<string, Workload>()
  private readonly services = new Map<string, Service>()
  /** service key -> workloads listing it in their `services` map */
  private readonly members = new Map<string, Map<string, Workload>>()
  /** workload uid -> service keys naming it in explicit `endpoints` */
  private readonly explicitRefs = new Map<string, Set<string>>()
  /** `namespace/hostname` -> uids of the workloads with that hostname (the smallest uid resolves it) */
  private readonly byHostname = new Map<string, Set<string>>()
  /** frontend address -> the services whose VIP it is, and the workloads whose address it is */
  private readonly vipClaims = new Claims()
  private readonly addressClaims = new Claims()
  /** waypoint / gateway targets (`ns/hostname` or an IP) -> number of references */
  private readonly waypointTargets = new Map<string, number>()
  /** workloads on this node (`nodeName`): the ranking client is the first of them in the order of `workloads` */
  private readonly localUids = new Set<string>()
  /** the ranking client while it is known; STALE after a change to a workload on this node */
  private client: string | undefined | typeof STALE = undefined
  private undo: (() => void)[] = []
  private warnings: string[] = []
  /** The first change is always computed in full: the maps may hold a previous daemon's records. */
  private synced = false

  private readonly ids: IdTable
  private readonly nodeName: string | undefined
  /** This node's network: which VIPs and addresses are frontends, which endpoints are backends (network.ts). */
  private readonly network: string

  constructor(options: { ids: IdTable; nodeName?: string | undefined; network?: string | undefined }) {
    this.ids = options.ids
    this.nodeName = options.nodeName
    this.network = options.network ?? ''
  }

  get size(): { workloads: number; services: number } {
    return { workloads: this.workloads.size, services: this.services.size }
  }

  /** The mesh held now, read-only (the admin dump, the live page, telemetry labels): uid and `ns/hostname` keys. */
  get held(): { workloads: ReadonlyMap<string, Workload>; services: ReadonlyMap<string, Service> } {
    return { workloads: this.workloads, services: this.services }
  }

  /**
   * Who claims an address on this node's network (read-only; telemetry labels): the services whose VIP it is and
   * the workloads whose address it is, smallest key first. `ip` in canonical text.
   */
  lookupIp(ip: string): { workloads: Workload[]; services: Service[] } {
    return {
      workloads: [...this.addressClaims.of(ip)].sort().map((uid) => this.workloads.get(uid)!),
      services: [...this.vipClaims.of(ip)].sort().map((key) => this.services.get(key)!),
    }
  }

  /** The delta that turns the held mesh into `config`, and what it adds, changes and removes (model/delta.ts). */
  deltaTo(config: MeshConfig, edit?: ResourceEdit): { delta: MeshDelta; changes: ResourceChanges } {
    const held = { workloads: this.workloads, services: this.services }
    // An edit known to be made against what is held names the delta without a pass over the whole mesh.
    const known = edit && deltaOfEdit(held, edit)
    return known ?? deltaBetween(held, config)
  }

  /** Takes a mesh as it is, without computing record changes (for a recompute from scratch). */
  load(config: MeshConfig): this {
    for (const w of config.workloads) this.setWorkload(w)
    for (const s of config.services) this.setService(s)
    this.undo = []
    return this
  }

  change(delta: MeshDelta, mirror: MapImage): PendingChange {
    return drain(this.changeSteps(delta, mirror))
  }

  /**
   * change(), yielding every SLICE resources or records. If deriving throws (or the caller abandons the
   * generator), the state is put back as it was: nothing of the delta stays without having reached the kernel.
   */
  *changeSteps(delta: MeshDelta, mirror: MapImage): Steps<PendingChange> {
    let done = false
    try {
      const pending = yield* this.deriveSteps(delta, mirror)
      done = true
      return pending
    } finally {
      if (!done) {
        for (const u of this.undo.reverse()) u()
        this.undo = []
      }
    }
  }

  /** Forgets that the maps equal the state: the next change is recomputed in full against the kernel mirror. */
  markUnsynced(): void {
    this.synced = false
  }

  private *deriveSteps(delta: MeshDelta, mirror: MapImage): Steps<PendingChange> {
    this.undo = []
    this.warnings = []
    const dirtyW = new Set<string>()
    const dirtyS = new Set<string>()
    const dirtyIps = new Set<string>()
    const clientBefore = this.clientUid()
    let full = false
    const touchesWaypoint = (keys: string[]): boolean => keys.some((k) => this.waypointTargets.has(k))

    // The first change is computed in full whatever it touches: no need to track what is dirty.
    const knownFull = !this.synced
    const workloadEvent = (uid: string, next: Workload | undefined): void => {
      const prev = this.workloads.get(uid)
      if (knownFull) {
        if (next) this.setWorkload(next)
        else if (prev) this.deleteWorkload(prev)
        return
      }
      dirtyW.add(uid)
      for (const w of [prev, next]) {
        if (!w) continue
        for (const k of Object.keys(w.services)) dirtyS.add(k)
        for (const ip of w.workloadIps) dirtyIps.add(ip)
        if (touchesWaypoint([`${w.namespace}/${w.hostname}`, ...w.workloadIps])) full = true
      }
      for (const k of this.explicitRefs.get(uid) ?? []) dirtyS.add(k)
      if (next) this.setWorkload(next)
      else if (prev) this.deleteWorkload(prev)
    }
    const serviceEvent = (key: string, next: Service | undefined): void => {
      const prev = this.services.get(key)
      if (knownFull) {
        if (next) this.setService(next)
        else if (prev) this.deleteService(prev)
        return
      }
      dirtyS.add(key)
      for (const s of [prev, next]) if (s) for (const ip of serviceFrontendIps(s, this.network)) dirtyIps.add(ip)
      // A service coming or going changes the service list in its members' backend records.
      if (!prev !== !next) for (const uid of this.members.get(key)?.keys() ?? []) dirtyW.add(uid)
      if (touchesWaypoint([key, ...[prev, next].flatMap((s) => (s ? serviceFrontendIps(s, this.network) : []))]))
        full = true
      if (next) this.setService(next)
      else if (prev) this.deleteService(prev)
    }
    let n = 0
    for (const uid of delta.removeWorkloads ?? []) {
      workloadEvent(uid, undefined)
      if (endsSlice(++n)) yield
    }
    for (const w of delta.upsertWorkloads ?? []) {
      workloadEvent(w.uid, w)
      if (endsSlice(++n)) yield
    }
    for (const key of delta.removeServices ?? []) {
      serviceEvent(key, undefined)
      if (endsSlice(++n)) yield
    }
    for (const s of delta.upsertServices ?? []) {
      serviceEvent(serviceKeyOf(s), s)
      if (endsSlice(++n)) yield
    }
    // The ranking client changed (or its locality did): every Strict/Failover service may move.
    const clientAfter = this.clientUid()
    if (clientBefore !== clientAfter || (clientAfter !== undefined && dirtyW.has(clientAfter))) full = true
    if (!this.synced) full = true

    let changes: RecordChanges
    if (full) changes = yield* this.fullChangesSteps(mirror)
    else changes = this.partialChanges(dirtyW, dirtyS, dirtyIps, mirror)
    const undo = this.undo
    this.undo = []
    const removedWorkloads = (delta.removeWorkloads ?? []).filter((uid) => !this.workloads.has(uid))
    const removedServices = (delta.removeServices ?? []).filter((k) => !this.services.has(k))
    return {
      changes,
      warnings: this.warnings,
      full,
      commit: () => {
        for (const uid of removedWorkloads) this.ids.releaseKey('wl', uid)
        for (const key of removedServices) this.ids.releaseKey('svc', key)
        // A full recompute knows every name in use: drop ids left by failed changes or a previous run.
        if (full) this.ids.retainWhere((kind, key) => this.inUse(kind, key))
        this.synced = true
      },
      rollback: () => {
        for (const u of undo.reverse()) u()
        // Undo re-inserts removed workloads at the end, which can change which one is the ranking client.
        if (this.clientUid() !== clientBefore) this.synced = false
      },
    }
  }

  /** Every record the mesh needs, computed from scratch (the reference the incremental path must equal). */
  fullIntent(): Intent {
    return drain(this.fullIntentSteps())
  }

  private *fullIntentSteps(): Steps<Intent> {
    const intent: Intent = { backends: new Map(), services: new Map(), frontends: new Map(), warnings: this.warnings }
    yield* this.deriveAllSteps(intentSink(intent))
    return intent
  }

  /** Derives every record of the mesh into `sink`, yielding every SLICE resources. */
  private *deriveAllSteps(sink: IntentSink): Steps<void> {
    const ctx = this.context()
    let n = 0
    for (const [uid, w] of this.workloads) {
      if (endsSlice(++n)) yield
      const be = backendOf(w, ctx)
      if (be) sink.backend(workloadId(this.ids, uid), be)
    }
    for (const [key, s] of this.services) {
      if (endsSlice(++n)) yield
      sink.service(serviceId(this.ids, key), serviceIntentOf(s, ctx))
    }
    for (const ip of this.vipClaims.keys()) {
      if (endsSlice(++n)) yield
      const id = this.frontendOwner(ip)
      if (id !== undefined) sink.frontend(ip, id)
    }
    for (const ip of this.addressClaims.keys()) {
      if (endsSlice(++n)) yield
      if (this.vipClaims.has(ip)) continue // done above
      const id = this.frontendOwner(ip)
      if (id !== undefined) sink.frontend(ip, id)
    }
  }

  // --- record changes -------------------------------------------------------------------------------------

  private *fullChangesSteps(mirror: MapImage): Steps<RecordChanges> {
    // Records go straight into the target image as they are derived: no intent of the whole mesh is built.
    const target = emptyImage()
    yield* this.deriveAllSteps(imageSink(target, mirror))
    return yield* changesToSteps(mirror, target)
  }

  /**
   * Whether an id-table name is in use once the state is in the maps: every service, and every workload with a
   * backend record (the ones a full recompute gives a record; a workload without one is never referred to).
   */
  private inUse(kind: IdKind, key: string): boolean {
    if (kind === 'svc') return this.services.has(key)
    const w = kind === 'wl' ? this.workloads.get(key) : undefined
    return w !== undefined && hasBackend(w, this.network)
  }

  private partialChanges(
    dirtyW: Set<string>,
    dirtyS: Set<string>,
    dirtyIps: Set<string>,
    mirror: MapImage,
  ): RecordChanges {
    const ctx = this.context()
    const put = emptyImage()
    const del = emptyImage()
    const keep = (map: LbMapName, key: Buffer, value: Buffer): void => putRecord(put, map, key, value)
    const drop = (map: LbMapName, key: Buffer): void => {
      const value = mirror[map].valueOf(key)
      if (value) del[map].put(key, value)
    }
    for (const uid of dirtyW) {
      const w = this.workloads.get(uid)
      const be = w && backendOf(w, ctx)
      const id = be ? workloadId(this.ids, uid) : this.ids.peekKey('wl', uid)
      if (id === undefined) continue
      const key = encodeRecord(backendKey, { backendUid: id })
      if (be) keep('backend', key, encodeRecord(backendValue, be))
      else drop('backend', key)
    }
    for (const key of dirtyS) {
      const s = this.services.get(key)
      const sid = s ? serviceId(this.ids, key) : this.ids.peekKey('svc', key)
      if (sid === undefined) continue
      const current = bucketsOf(mirror, sid)
      const records = s ? serviceRecords(sid, serviceIntentOf(s, ctx), current) : undefined
      if (records) for (const [map, k, v] of records) keep(map, k, v)
      // Endpoint slots the new layout no longer uses (all of them when the service is gone).
      for (let prio = 0; prio < PRIO_COUNT; prio++) {
        for (let index = (records?.counts[prio] ?? 0) + 1; index <= (current[prio]?.length ?? 0); index++)
          drop('endpoint', encodeRecord(endpointKey, { serviceId: sid, prio, backendIndex: index }))
      }
      if (!s) drop('service', encodeRecord(serviceKey, { serviceId: sid }))
    }
    for (const ip of dirtyIps) {
      const id = this.frontendOwner(ip)
      const key = encodeRecord(frontendKey, { address: ip })
      if (id !== undefined) keep('frontend', key, encodeRecord(frontendValue, { upstreamId: id }))
      else drop('frontend', key)
    }
    return { put, delete: del }
  }

  /**
   * Who an IP leads to: a service VIP wins over a workload address; then a claim on the node's own network wins
   * over one on no network (network.ts); among several services (or workloads) left the smallest key wins,
   * whatever the order they arrived in.
   */
  private frontendOwner(ip: string): number | undefined {
    const services = closest(this.vipClaims.of(ip), (k) => vipRank(this.services.get(k)!, ip, this.network))
    const workloads = closest(this.addressClaims.of(ip), (uid) =>
      networkRank(this.workloads.get(uid)!.network, this.network),
    )
    if (services.length > 0) {
      if (services.length > 1)
        this.warnings.push(`VIP ${ip} is claimed by services ${services.join(', ')}; ${services[0]} wins`)
      if (workloads.length > 0)
        this.warnings.push(
          `VIP ${ip} of service ${services[0]} is also the address of workload ${workloads[0]}; the service wins`,
        )
      return serviceId(this.ids, services[0]!)
    }
    if (workloads.length > 1)
      this.warnings.push(`address ${ip} is claimed by workloads ${workloads.join(', ')}; ${workloads[0]} wins`)
    return workloads.length > 0 ? workloadId(this.ids, workloads[0]!) : undefined
  }

  private context(): IntentContext {
    const client = this.clientPeer()
    return {
      ids: this.ids,
      network: this.network,
      client,
      service: (k) => this.services.get(k),
      workload: (uid) => this.workloads.get(uid),
      membersOf: (k) => this.members.get(k)?.values() ?? [],
      workloadByHostname: (ns, h) => {
        const uids = this.byHostname.get(`${ns}/${h}`)
        return uids && uids.size > 0 ? this.workloads.get([...uids].sort()[0]!) : undefined
      },
      warn: (m) => this.warnings.push(m),
    }
  }

  /**
   * The first workload on this node (Kmesh learns the node's locality the same way). Every change asks for it
   * (twice): it is kept, and found again (up to the first local workload in the mesh's order) only after a workload
   * on this node changed. Scanning the mesh on every change cost ~15 ms at 100k workloads on a node with none.
   */
  private clientUid(): string | undefined {
    if (this.nodeName === undefined) return undefined
    if (this.client === STALE) this.client = this.firstLocal()
    return this.client
  }

  private firstLocal(): string | undefined {
    if (this.localUids.size === 0) return undefined
    for (const uid of this.workloads.keys()) if (this.localUids.has(uid)) return uid
    return undefined
  }

  private isLocal(w: Workload): boolean {
    return this.nodeName !== undefined && w.node === this.nodeName
  }

  private clientPeer(): PeerInfo | undefined {
    if (this.nodeName === undefined) return undefined
    const uid = this.clientUid()
    // Without a workload of its own the client is on the node's network (ranks the Network scope).
    return uid !== undefined ? peerOf(this.workloads.get(uid)!) : { node: this.nodeName, network: this.network }
  }

  // --- state with indexes, every mutation undoable -----------------------------------------------------------

  private setWorkload(w: Workload): void {
    const prev = this.workloads.get(w.uid)
    const client = this.client
    if (prev) this.unindexWorkload(prev)
    this.workloads.set(w.uid, w)
    this.indexWorkload(w)
    // A new workload goes last in the mesh's order: on this node it is the client only if there was none.
    if (!prev && client !== STALE && this.isLocal(w)) this.client = client ?? w.uid
    this.undo.push(() => {
      this.unindexWorkload(w)
      if (prev) {
        this.workloads.set(w.uid, prev)
        this.indexWorkload(prev)
      } else this.workloads.delete(w.uid)
    })
  }

  private deleteWorkload(w: Workload): void {
    this.unindexWorkload(w)
    this.workloads.delete(w.uid)
    this.undo.push(() => {
      this.workloads.set(w.uid, w)
      this.indexWorkload(w)
    })
  }

  private setService(s: Service): void {
    const key = serviceKeyOf(s)
    const prev = this.services.get(key)
    if (prev) this.unindexService(prev)
    this.services.set(key, s)
    this.indexService(s)
    this.undo.push(() => {
      this.unindexService(s)
      if (prev) {
        this.services.set(key, prev)
        this.indexService(prev)
      } else this.services.delete(key)
    })
  }

  private deleteService(s: Service): void {
    const key = serviceKeyOf(s)
    this.unindexService(s)
    this.services.delete(key)
    this.undo.push(() => {
      this.services.set(key, s)
      this.indexService(s)
    })
  }

  private indexWorkload(w: Workload): void {
    if (this.isLocal(w)) {
      this.localUids.add(w.uid)
      this.client = STALE
    }
    for (const k of Object.keys(w.services)) getOrAdd(this.members, k, () => new Map()).set(w.uid, w)
    if (w.hostname) getOrAdd(this.byHostname, `${w.namespace}/${w.hostname}`, () => new Set()).add(w.uid)
    for (const ip of workloadFrontendIps(w, this.network)) this.addressClaims.add(ip, w.uid)
    for (const gw of [w.waypoint, w.networkGateway]) if (gw) count(this.waypointTargets, gatewayTarget(gw), +1)
  }

  private unindexWorkload(w: Workload): void {
    if (this.isLocal(w)) {
      this.localUids.delete(w.uid)
      this.client = STALE
    }
    for (const k of Object.keys(w.services)) {
      const m = this.members.get(k)
      m?.delete(w.uid)
      if (m?.size === 0) this.members.delete(k)
    }
    if (w.hostname) {
      const uids = this.byHostname.get(`${w.namespace}/${w.hostname}`)
      uids?.delete(w.uid)
      if (uids?.size === 0) this.byHostname.delete(`${w.namespace}/${w.hostname}`)
    }
    for (const ip of workloadFrontendIps(w, this.network)) this.addressClaims.delete(ip, w.uid)
    for (const gw of [w.waypoint, w.networkGateway]) if (gw) count(this.waypointTargets, gatewayTarget(gw), -1)
  }

  private indexService(s: Service): void {
    const key = serviceKeyOf(s)
    if (hasKeys(s.endpoints))
      for (const ep of Object.values(s.endpoints)) getOrAdd(this.explicitRefs, ep.workloadUid, () => new Set()).add(key)
    for (const ip of serviceFrontendIps(s, this.network)) this.vipClaims.add(ip, key)
    if (s.waypoint) count(this.waypointTargets, gatewayTarget(s.waypoint), +1)
  }

  private unindexService(s: Service): void {
    const key = serviceKeyOf(s)
    for (const ep of Object.values(s.endpoints)) {
      const refs = this.explicitRefs.get(ep.workloadUid)
      refs?.delete(key)
      if (refs?.size === 0) this.explicitRefs.delete(ep.workloadUid)
    }
    for (const ip of serviceFrontendIps(s, this.network)) this.vipClaims.delete(ip, key)
    if (s.waypoint) count(this.waypointTargets, gatewayTarget(s.waypoint), -1)
  }
}

/** The keys with the best (lowest) rank, sorted: the claims on an address that fit this node's network best. */
function closest(keys: readonly string[], rank: (key: string) => number | undefined): readonly string[] {
  if (keys.length <= 1) return keys // one claim (nearly every address): no ranking, no sorting
  let best = Number.POSITIVE_INFINITY
  for (const k of keys) best = Math.min(best, rank(k) ?? Number.POSITIVE_INFINITY)
  return [...keys].filter((k) => (rank(k) ?? Number.POSITIVE_INFINITY) === best).sort()
}

/** The ranking client is not known (clientUid finds it again). */
const STALE: unique symbol = Symbol('stale')

function getOrAdd<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let v = map.get(key)
  if (v === undefined) map.set(key, (v = make()))
  return v
}

function count(map: Map<string, number>, key: string, by: number): void {
  const n = (map.get(key) ?? 0) + by
  if (n > 0) map.set(key, n)
  else map.delete(key)
}
