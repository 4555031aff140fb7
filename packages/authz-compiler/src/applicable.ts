/**
 * Which stored policies apply to a destination workload (docs/reference/istio-l4-authz.md §2.1), and in which
 * order the kernel's leaves name them: by key `<namespace>/<name>`, so "the first matching DENY" is the same one
 * every time the set is compiled.
 */
import type { Authorization } from '@kmesh-ts/xds-client'

/** The destination workload's part in policy selection. */
export interface PolicyTarget {
  uid: string
  namespace: string
  /** `<namespace>/<name>` keys istiod listed for this workload (WORKLOAD_SELECTOR policies). */
  authorizationPolicies: readonly string[]
}

const SCOPE_GLOBAL = 0
const SCOPE_NAMESPACE = 1
const SCOPE_WORKLOAD_SELECTOR = 2
const ACTION_ALLOW = 0
const ACTION_DENY = 1

export const keyOfPolicy = (p: Pick<Authorization, 'namespace' | 'name'>): string => `${p.namespace}/${p.name}`

/** The policies a node stores: by key, a later one replacing an earlier; unknown scopes or actions are not stored. */
export function policyStore(policies: Iterable<Authorization>): Map<string, Authorization> {
  const store = new Map<string, Authorization>()
  for (const p of policies) {
    const scopeKnown = p.scope === SCOPE_GLOBAL || p.scope === SCOPE_NAMESPACE || p.scope === SCOPE_WORKLOAD_SELECTOR
    const actionKnown = p.action === ACTION_ALLOW || p.action === ACTION_DENY
    if (scopeKnown && actionKnown) store.set(keyOfPolicy(p), p)
  }
  return store
}

/** The store indexed once for many workloads: GLOBAL keys and NAMESPACE keys per namespace. */
export interface PolicyIndex {
  store: Map<string, Authorization>
  globals: string[]
  byNamespace: Map<string, string[]>
}

export function indexPolicies(store: Map<string, Authorization>, rootNamespace?: string): PolicyIndex {
  const globals: string[] = []
  const byNamespace = new Map<string, string[]>()
  for (const [key, p] of store) {
    if (p.scope === SCOPE_GLOBAL && (rootNamespace === undefined || p.namespace === rootNamespace)) globals.push(key)
    else if (p.scope === SCOPE_NAMESPACE) {
      const list = byNamespace.get(p.namespace)
      if (list) list.push(key)
      else byNamespace.set(p.namespace, [key])
    }
  }
  return { store, globals, byNamespace }
}

/**
 * GLOBAL policies (only those of the root namespace when one is given), NAMESPACE policies of the workload's
 * namespace, and every key the workload lists, whatever that policy's scope; sorted by key. Listed keys that name
 * no stored policy are skipped, as ztunnel does ("skipping unknown policy"), and returned as `unknown`.
 */
export function policiesFor(index: PolicyIndex, target: PolicyTarget): { keys: string[]; unknown: string[] } {
  const keys = new Set<string>(index.globals)
  for (const key of index.byNamespace.get(target.namespace) ?? []) keys.add(key)
  const unknown: string[] = []
  for (const key of target.authorizationPolicies) {
    if (index.store.has(key)) keys.add(key)
    else unknown.push(key)
  }
  return { keys: [...keys].sort(), unknown }
}

export const isDeny = (p: Authorization): boolean => p.action === ACTION_DENY
