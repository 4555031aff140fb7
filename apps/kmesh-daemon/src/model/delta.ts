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
 * The delta that turns `held` into `wanted`, and what it adds, changes and removes. Resources are compared by
 * content: both adapters build them with the same field order, so equal content serializes equally.
 */
export function deltaBetween(held: HeldMesh, wanted: MeshConfig): { delta: MeshDelta; changes: ResourceChanges } {
  const workloads = diffKind(held.workloads, new Map(wanted.workloads.map((w) => [w.uid, w])))
  const services = diffKind(held.services, new Map(wanted.services.map((s) => [serviceKeyOf(s), s])))
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

/** `+added ~changed -removed` per kind, for a log line. */
export function countChanges(c: ResourceChanges): { services: string; workloads: string } {
  const f = (k: KindChanges): string => `+${k.added.length} ~${k.changed.length} -${k.removed.length}`
  return { services: f(c.services), workloads: f(c.workloads) }
}

function diffKind<T>(
  held: ReadonlyMap<string, T>,
  wanted: ReadonlyMap<string, T>,
): { upserts: T[]; changes: KindChanges } {
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
