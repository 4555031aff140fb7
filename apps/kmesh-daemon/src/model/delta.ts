/**
 * A change to the mesh, and the one place that computes it from two whole meshes. Cluster mode receives deltas
 * from istiod; local mode has whole files, so it asks for the delta between what is held and the new file — and
 * the same computation names what was added, changed and removed for the log line.
 */
import { serviceKeyOf } from './keys.js'
import type { MeshConfig, Service, Workload } from './mesh.js'

export interface MeshDelta {
  upsertWorkloads?: readonly Workload[]
  /** workload uids */
  removeWorkloads?: readonly string[]
  upsertServices?: readonly Service[]
  /** service keys `namespace/hostname` */
  removeServices?: readonly string[]
}

/** Names (workload uids, service keys) by what happened to them. */
export interface KindChanges {
  added: string[]
  changed: string[]
  removed: string[]
}

export interface ResourceChanges {
  services: KindChanges
  workloads: KindChanges
}

/** The mesh as held: resources by key. */
export interface HeldMesh {
  workloads: ReadonlyMap<string, Workload>
  services: ReadonlyMap<string, Service>
}

/**
 * What an edit of a mesh file took out and put in (mesh-file/item-memo.ts knows it from the items it re-read): a
 * changed resource is in both lists, under its old and its new object.
 */
export interface ResourceEdit {
  workloads: { removed: readonly Workload[]; added: readonly Workload[] }
  services: { removed: readonly Service[]; added: readonly Service[] }
}

/**
 * The delta of `edit` against `held`, as deltaBetween would compute it for the whole edited mesh, without going
 * through the whole mesh; undefined when `edit` was not made against `held` (a removed resource that is not the
 * object held, an added one whose key is held and not removed): then the caller diffs the whole mesh.
 */
export function deltaOfEdit(
  held: HeldMesh,
  edit: ResourceEdit,
): { delta: MeshDelta; changes: ResourceChanges } | undefined {
  const workloads = editKind(held.workloads, edit.workloads.removed, edit.workloads.added, (w) => w.uid)
  const services = editKind(held.services, edit.services.removed, edit.services.added, serviceKeyOf)
  if (!workloads || !services) return undefined
  return meshDeltaOf(workloads, services)
}

type KindDelta<T> = { upserts: T[]; changes: KindChanges }

/** The mesh delta and the change names of its two kinds. */
function meshDeltaOf(
  workloads: KindDelta<Workload>,
  services: KindDelta<Service>,
): { delta: MeshDelta; changes: ResourceChanges } {
  return {
    delta: {
      upsertWorkloads: workloads.upserts,
      removeWorkloads: workloads.changes.removed,
      upsertServices: services.upserts,
      removeServices: services.changes.removed,
    },
    changes: { workloads: workloads.changes, services: services.changes },
  }
}

function editKind<T>(
  held: ReadonlyMap<string, T>,
  removed: readonly T[],
  added: readonly T[],
  keyOf: (r: T) => string,
): KindDelta<T> | undefined {
  const before = new Map<string, T>()
  for (const r of removed) {
    const key = keyOf(r)
    if (held.get(key) !== r || before.has(key)) return undefined
    before.set(key, r)
  }
  const upserts: T[] = []
  const changes: KindChanges = { added: [], changed: [], removed: [] }
  const seen = new Set<string>()
  for (const next of added) {
    const key = keyOf(next)
    if (seen.has(key)) return undefined
    seen.add(key)
    const prev = before.get(key)
    if (prev === undefined) {
      if (held.has(key)) return undefined
      changes.added.push(key)
    } else if (JSON.stringify(prev) !== JSON.stringify(next)) changes.changed.push(key)
    else continue
    upserts.push(next)
  }
  for (const key of before.keys()) if (!seen.has(key)) changes.removed.push(key)
  return { upserts, changes }
}

/**
 * The delta that turns `held` into `wanted`, and what it adds, changes and removes. Resources are compared by
 * content: both adapters build them with the same field order, so equal content serializes equally.
 */
export function deltaBetween(held: HeldMesh, wanted: MeshConfig): { delta: MeshDelta; changes: ResourceChanges } {
  const workloads = diffKind(held.workloads, new Map(wanted.workloads.map((w) => [w.uid, w])))
  const services = diffKind(held.services, new Map(wanted.services.map((s) => [serviceKeyOf(s), s])))
  return meshDeltaOf(workloads, services)
}

/** `+added ~changed -removed` per kind, for a log line. */
export function countChanges(c: ResourceChanges): { services: string; workloads: string } {
  const f = (k: KindChanges): string => `+${k.added.length} ~${k.changed.length} -${k.removed.length}`
  return { services: f(c.services), workloads: f(c.workloads) }
}

function diffKind<T>(held: ReadonlyMap<string, T>, wanted: ReadonlyMap<string, T>): KindDelta<T> {
  const upserts: T[] = []
  const changes: KindChanges = { added: [], changed: [], removed: [] }
  for (const [key, next] of wanted) {
    const prev = held.get(key)
    if (prev === next) continue // the very object held (a mesh file's unchanged item, mesh-file/item-memo.ts)
    if (prev === undefined) changes.added.push(key)
    else if (JSON.stringify(prev) !== JSON.stringify(next)) changes.changed.push(key)
    else continue
    upserts.push(next)
  }
  for (const key of held.keys()) if (!wanted.has(key)) changes.removed.push(key)
  return { upserts, changes }
}
