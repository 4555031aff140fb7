/**
 * Reaching the Kubernetes API: a KubeConfig (a file, or the pod's service account) and API errors described in one
 * line (`HTTP 409 AlreadyExists: …`). Shared by the KmeshNodeInfo source (ipsec/) and the pod reconciler (node/).
 */
import { KubeConfig } from '@kubernetes/client-node'

/** A KubeConfig from a file, or the in-cluster service account. */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const kc = new KubeConfig()
  if (file !== undefined) {
    kc.loadFromFile(file)
    if (!kc.getCurrentCluster()) throw new Error(`kubeconfig ${file}: no current cluster (set current-context)`)
    return kc
  }
  if (!process.env.KUBERNETES_SERVICE_HOST || !process.env.KUBERNETES_SERVICE_PORT) {
    throw new Error(
      'no in-cluster service account (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT unset): run in a pod, or give a kubeconfig file (--kubeconfig FILE)',
    )
  }
  kc.loadFromCluster()
  return kc
}

/** `HTTP 409 AlreadyExists: …` from an ApiException (whose body is the API's Status), or the error's message. */
export function describeApiError(err: unknown): string {
  const e = err as { code?: unknown; statusCode?: unknown; body?: unknown; message?: string }
  // Watch requests fail with a plain Error carrying statusCode (the response body is not read).
  if (typeof e.code !== 'number' && typeof e.statusCode === 'number')
    return `HTTP ${e.statusCode}: ${e.message ?? ''}`.trim()
  if (typeof e.code !== 'number') return e.message ?? String(err)
  let status: { reason?: string; message?: string } | undefined
  try {
    status = typeof e.body === 'string' ? (JSON.parse(e.body) as typeof status) : (e.body as typeof status)
  } catch {
    /* not JSON: the message below */
  }
  return `HTTP ${e.code}${status?.reason ? ` ${status.reason}` : ''}: ${status?.message ?? e.message ?? ''}`.trim()
}

/** The HTTP status of an API or watch error, if it has one. */
export function httpCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown; statusCode?: unknown }).code ?? (err as { statusCode?: unknown }).statusCode
  return typeof code === 'number' ? code : undefined
}

/** Doubles from initialMs up to maxMs, ±20 % jitter; reset() after a success. */
export class Backoff {
  #attempt = 0
  constructor(
    readonly initialMs: number,
    readonly maxMs: number,
  ) {
    for (const [k, v] of [
      ['initialMs', initialMs],
      ['maxMs', maxMs],
    ] as const)
      if (!Number.isFinite(v) || v <= 0) throw new RangeError(`backoff.${k} must be a positive number, got ${v}`)
  }
  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * 2 ** this.#attempt++)
    return Math.round(base * (0.8 + Math.random() * 0.4))
  }
  reset(): void {
    this.#attempt = 0
  }
}
