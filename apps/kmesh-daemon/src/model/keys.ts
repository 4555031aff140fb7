/**
 * How resources are named: the keys the model indexes by and the names the id table hands out ids for. Every
 * place that builds one of these strings calls these functions, so a prefix is spelled once.
 */

/** A service's key, `namespace/hostname` (ztunnel's and Istio's). */
export const serviceKeyOf = (s: { namespace: string; hostname: string }): string => `${s.namespace}/${s.hostname}`

/** A policy's key, `namespace/name`: what a workload's `authorizationPolicies` lists. */
export const policyKeyOf = (p: { namespace: string; name: string }): string => `${p.namespace}/${p.name}`

/** The id-table name of a service, by its key: the id in service and frontend records. */
export const serviceIdName = (key: string): string => `svc:${key}`

/** The id-table name of a service. */
export const serviceName = (s: { namespace: string; hostname: string }): string => serviceIdName(serviceKeyOf(s))

/** The id-table name of a workload: the backend uid in backend and endpoint records. */
export const workloadName = (w: { uid: string }): string => `wl:${w.uid}`

/** The ids of a service (by key) and of a workload (by uid), allocated when new. */
export const serviceId = (ids: IdsByKey, key: string): number => ids.idOfKey('svc', key)
export const workloadId = (ids: IdsByKey, uid: string): number => ids.idOfKey('wl', uid)

/** The id table as these helpers use it: by kind and key, so no name string is built per lookup (ids/id-table.ts). */
interface IdsByKey {
  idOfKey(kind: 'wl' | 'svc', key: string): number
}
