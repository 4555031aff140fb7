// Resource names and keys (docs/reference/istio-workload-api.md §1.1): a workload is named by its uid, a service by
// `namespace/hostname`, an authorization policy by `namespace/name`.

/** Kubernetes namespace: a DNS-1123 label. */
const NAMESPACE_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
/** One hostname label; `*` alone is allowed for ServiceEntry wildcard hosts, `_` for SRV-style names. */
const LABEL_RE = /^(\*|[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)$/

/** Why `ns` is not a well-formed namespace, or undefined when it is. */
export function namespaceProblem(ns: string): string | undefined {
  if (ns === '') return 'namespace is empty'
  if (ns.length > 63) return `namespace "${ns}" is longer than 63 characters`
  if (!NAMESPACE_RE.test(ns)) return `namespace "${ns}" is not a DNS-1123 label`
  return undefined
}

/** Why `host` is not a well-formed hostname, or undefined when it is. */
export function hostnameProblem(host: string): string | undefined {
  if (host === '') return 'hostname is empty'
  if (host.length > 253) return `hostname "${host.slice(0, 40)}…" is longer than 253 characters`
  for (const label of host.split('.')) {
    if (label.length === 0 || label.length > 63 || !LABEL_RE.test(label)) {
      return `hostname "${host}" has a malformed label "${label}"`
    }
  }
  return undefined
}

/** Why `key` is not a well-formed `namespace/hostname` service key, or undefined when it is. */
export function serviceKeyProblem(key: string): string | undefined {
  const slash = key.indexOf('/')
  if (slash < 0) return `service key "${key}" is not namespace/hostname`
  const ns = key.slice(0, slash)
  const host = key.slice(slash + 1)
  if (host.includes('/')) return `service key "${key}" has more than one "/"`
  const p = namespaceProblem(ns) ?? hostnameProblem(host)
  return p === undefined ? undefined : `service key "${key}": ${p}`
}

export function serviceKey(namespace: string, hostname: string): string {
  return `${namespace}/${hostname}`
}

export function policyKey(namespace: string, name: string): string {
  return `${namespace}/${name}`
}

/** What a removed Address name refers to. */
export type AddressKind = 'workload' | 'service'

/**
 * Classify a removed Address name by its shape, as ztunnel does (reference §1.1): a service key has exactly one
 * `/` with something on both sides; a workload uid (`cluster//Pod/ns/name`) has more. The client first asks its
 * own record of what it holds and uses this only for names it never held.
 */
export function addressKindByShape(name: string): AddressKind {
  const slash = name.indexOf('/')
  if (slash <= 0 || slash === name.length - 1) return 'workload'
  return name.indexOf('/', slash + 1) < 0 ? 'service' : 'workload'
}
