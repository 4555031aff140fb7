/**
 * The pod reconciler of node mode: from the pods of this node and the namespaces (two informers), it decides with
 * the enrolment rule which pods are managed and enrols or unenrols each one's network namespace, one at a time.
 *
 * When: every pod seen after the first lists of both informers, then every change of a pod, every change of a
 * namespace (all its pods), every re-list, and a periodic resync (all pods: a pod whose netns changed, or one whose
 * earlier attempt failed, is caught there too). Events only mark a pod as due; one worker takes the due pods in
 * turn, so control connects never overlap and a burst of events for one pod costs one pass.
 *
 * What a pass does for one pod: decide; skip pods with no netns of their own to act on (hostNetwork, finished,
 * no IP yet); find the netns holding the pod's IP (netns-finder.ts); enrol or unenrol it with a control connect
 * (the injected action) unless our record says it is already so. A pod never seen by this daemon (a fresh start)
 * and not to be managed is unenrolled once, in case a previous daemon or the CNI plugin enrolled it. A failure
 * (no netns found, a control connect that did not reach our program) is recorded on the pod and retried with a
 * per-pod backoff; the admin dump shows it.
 *
 * A deleted pod is forgotten: its netns is gone with it (the CNI plugin's DEL unenrols it before that).
 */
import type { V1Namespace, V1Pod } from '@kubernetes/client-node'
import type { Informer } from '../kube/informer.js'
import { Backoff } from '../kube/config.js'
import type { Logger } from '../log.js'
import { shouldEnrol, type EnrolDecision, type EnrolRuleOptions } from './enrol-rule.js'
import { type FoundNetns, netnsIdOf } from './netns-finder.js'

export type EnrolOp = 'enrol' | 'unenrol'
/** Enrols or unenrols one netns; throws with a message naming what failed. */
export type EnrolAction = (netnsPath: string, op: EnrolOp) => Promise<void>

/** What the admin dump shows per pod. */
export interface PodEnrolment {
  namespace: string
  name: string
  podIPs: string[]
  /** What the rule says. */
  shouldEnrol: boolean
  reason: string
  /** The netns acted on last (/proc/<pid>/ns/net) and its identity. */
  netns?: string | undefined
  netnsId?: string | undefined
  /** What the last successful control connect did; undefined: nothing done yet by this daemon. */
  enrolled?: boolean | undefined
  /** By whom: the reconciler, or the CNI plugin at pod creation. */
  by?: 'reconciler' | 'cni' | undefined
  /** Why nothing is done (yet): no IP, hostNetwork, finished. */
  waiting?: string | undefined
  lastError?: string | undefined
  failures: number
  nextRetryAt?: string | undefined
  updatedAt: string
}

export type ReconcilerEvent =
  | { type: 'enrolled' | 'unenrolled'; pod: string; netns: string; by: 'reconciler' | 'cni' }
  | { type: 'failed'; pod: string; op: EnrolOp; error: string; retryInMs: number }
  | { type: 'waiting'; pod: string; why: string }
  | { type: 'forgotten'; pod: string }
  | { type: 'resync'; pods: number }

export interface ReconcilerOptions {
  pods: Informer<V1Pod>
  namespaces: Informer<V1Namespace>
  act: EnrolAction
  findNetns: (podIPs: readonly string[]) => FoundNetns | undefined
  rule?: EnrolRuleOptions | undefined
  /** Every pod is looked at again this often (default 60 s; 0: never). */
  resyncMs?: number | undefined
  /** Per-pod retry after a failure: doubles from initialMs up to maxMs (default 500 ms .. 30 s). */
  backoff?: { initialMs?: number | undefined; maxMs?: number | undefined } | undefined
  log: Logger
  onEvent?: ((e: ReconcilerEvent) => void) | undefined
}

export const reconcilerDefaults = { resyncMs: 60_000, backoff: { initialMs: 500, maxMs: 30_000 } } as const

const keyOf = (namespace: string, name: string): string => `${namespace}/${name}`

export function podIPs(pod: V1Pod): string[] {
  const ips = (pod.status?.podIPs ?? []).map((p) => p.ip).filter((ip): ip is string => !!ip)
  if (!ips.length && pod.status?.podIP) ips.push(pod.status.podIP)
  return ips
}

export class PodReconciler {
  readonly #o: ReconcilerOptions
  readonly #state = new Map<string, PodEnrolment>()
  readonly #backoffs = new Map<string, Backoff>()
  readonly #retryTimers = new Map<string, NodeJS.Timeout>()
  readonly #due = new Set<string>()
  #working: Promise<void> | undefined
  #resyncTimer: NodeJS.Timeout | undefined
  #closed = false
  #idleWaiters: Array<() => void> = []

  constructor(options: ReconcilerOptions) {
    this.#o = options
    const { pods, namespaces } = options
    const podChanged = (pod: V1Pod): void => {
      if (!pods.listing) this.#mark(keyOf(pod.metadata?.namespace ?? '', pod.metadata?.name ?? ''))
    }
    pods.on('add', podChanged)
    pods.on('update', podChanged)
    pods.on('delete', podChanged)
    pods.onListed(() => this.#markAll())
    const namespaceChanged = (ns: V1Namespace): void => {
      if (namespaces.listing) return
      for (const pod of pods.list(ns.metadata?.name ?? '')) podChanged(pod)
    }
    namespaces.on('add', namespaceChanged)
    namespaces.on('update', namespaceChanged)
    namespaces.on('delete', namespaceChanged)
    namespaces.onListed(() => this.#markAll())
  }

  /** Starts both informers and the resync timer. */
  start(): void {
    this.#o.pods.start()
    this.#o.namespaces.start()
    const resyncMs = this.#o.resyncMs ?? reconcilerDefaults.resyncMs
    if (resyncMs > 0) {
      this.#resyncTimer = setInterval(() => {
        this.#event({ type: 'resync', pods: this.#o.pods.list().length })
        this.#markAll()
      }, resyncMs)
      this.#resyncTimer.unref()
    }
  }

  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#resyncTimer)
    for (const t of this.#retryTimers.values()) clearTimeout(t)
    this.#retryTimers.clear()
    this.#due.clear()
    await Promise.all([this.#o.pods.stop(), this.#o.namespaces.stop()])
    await this.#working
  }

  /** The rule's answer for a pod from the caches (for the CNI plugin); undefined when the pod is not known yet. */
  decide(namespace: string, name: string): EnrolDecision | undefined {
    const pod = this.#o.pods.get(name, namespace)
    if (!pod) return undefined
    return shouldEnrol(pod, this.#o.namespaces.get(namespace), this.#o.rule)
  }

  /** The decision for a pod the caches may not hold yet: waits for it up to timeoutMs, then decides on what is known. */
  async decideWhenKnown(namespace: string, name: string, timeoutMs = 2000): Promise<EnrolDecision> {
    const deadline = Date.now() + timeoutMs
    await Promise.race([this.#o.pods.waitForSync(), sleep(timeoutMs)])
    while (!this.#closed) {
      const d = this.decide(namespace, name)
      if (d) return d
      if (Date.now() >= deadline) break
      await sleep(50)
    }
    // Not in the cache in time: the namespace decides; the reconciler corrects it when the pod shows up.
    return shouldEnrol({}, this.#o.namespaces.get(namespace), this.#o.rule)
  }

  /** Records what the CNI plugin did at pod creation, so the reconciler does not repeat it. */
  recordCni(
    namespace: string,
    name: string,
    result: { op: EnrolOp; netnsPath: string; ok: boolean; error?: string },
  ): void {
    const key = keyOf(namespace, name)
    const st = this.#entry(key, namespace, name)
    if (result.ok) {
      st.enrolled = result.op === 'enrol'
      st.by = 'cni'
      st.netns = result.netnsPath
      // The same identity the /proc scan gives, so the reconciler sees the pod as done and does not repeat it.
      st.netnsId = netnsIdOf(result.netnsPath)
      st.lastError = undefined
      this.#event({
        type: result.op === 'enrol' ? 'enrolled' : 'unenrolled',
        pod: key,
        netns: result.netnsPath,
        by: 'cni',
      })
    } else {
      st.lastError = `CNI plugin: ${result.error ?? 'failed'}`
      this.#mark(key)
    }
    st.updatedAt = new Date().toISOString()
  }

  /** Every pod this daemon knows, sorted by namespace/name. */
  pods(): PodEnrolment[] {
    return [...this.#state.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => ({ ...v }))
  }

  status(): Record<string, unknown> {
    const pods = this.pods()
    return {
      informers: { pods: this.#o.pods.status(), namespaces: this.#o.namespaces.status() },
      counts: {
        pods: pods.length,
        enrolled: pods.filter((p) => p.enrolled === true).length,
        failing: pods.filter((p) => p.lastError).length,
      },
      pods,
    }
  }

  /** Resolves when no pod is due or being worked on (tests). */
  idle(): Promise<void> {
    if (!this.#working && this.#due.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idleWaiters.push(resolve))
  }

  #markAll(): void {
    if (!this.#o.pods.synced || !this.#o.namespaces.synced) return
    for (const key of this.#state.keys()) this.#due.add(key) // the deleted ones are forgotten in their pass
    for (const pod of this.#o.pods.list()) this.#due.add(keyOf(pod.metadata?.namespace ?? '', pod.metadata?.name ?? ''))
    this.#kick()
  }

  #mark(key: string): void {
    if (this.#closed || !this.#o.pods.synced || !this.#o.namespaces.synced) return
    this.#due.add(key)
    this.#kick()
  }

  #kick(): void {
    if (this.#working || this.#closed) return
    this.#working = this.#work().finally(() => {
      this.#working = undefined
      if (this.#due.size && !this.#closed) this.#kick()
      else for (const w of this.#idleWaiters.splice(0)) w()
    })
  }

  async #work(): Promise<void> {
    while (this.#due.size && !this.#closed) {
      const key = this.#due.values().next().value as string
      this.#due.delete(key)
      try {
        await this.#sync(key)
      } catch (err) {
        this.#o.log.error({ pod: key, err: (err as Error).message }, 'node: reconciling a pod failed unexpectedly')
      }
    }
  }

  #entry(key: string, namespace: string, name: string): PodEnrolment {
    let st = this.#state.get(key)
    if (!st) {
      st = {
        namespace,
        name,
        podIPs: [],
        shouldEnrol: false,
        reason: '',
        failures: 0,
        updatedAt: new Date().toISOString(),
      }
      this.#state.set(key, st)
    }
    return st
  }

  async #sync(key: string): Promise<void> {
    const slash = key.indexOf('/')
    const [namespace, name] = [key.slice(0, slash), key.slice(slash + 1)]
    const pod = this.#o.pods.get(name, namespace)
    if (!pod) {
      if (this.#state.delete(key)) this.#event({ type: 'forgotten', pod: key })
      this.#clearRetry(key)
      this.#backoffs.delete(key)
      return
    }
    const st = this.#entry(key, namespace, name)
    const decision = shouldEnrol(pod, this.#o.namespaces.get(namespace), this.#o.rule)
    st.shouldEnrol = decision.enrol
    st.reason = decision.reason
    st.podIPs = podIPs(pod)
    st.updatedAt = new Date().toISOString()

    const waiting = pod.spec?.hostNetwork
      ? 'hostNetwork: the pod has no netns of its own'
      : pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed'
        ? `pod ${pod.status.phase}: its netns is gone`
        : st.podIPs.length === 0
          ? 'no pod IP yet'
          : undefined
    if (waiting) {
      if (st.waiting !== waiting) this.#event({ type: 'waiting', pod: key, why: waiting })
      st.waiting = waiting
      st.lastError = undefined
      this.#clearRetry(key)
      return
    }
    st.waiting = undefined

    const op: EnrolOp = decision.enrol ? 'enrol' : 'unenrol'
    const wantEnrolled = decision.enrol
    // Nothing to do when our record says so and the pod is still in the netns we acted on.
    if (st.enrolled === wantEnrolled && st.netnsId !== undefined) {
      const now = this.#o.findNetns(st.podIPs)
      if (now?.id === st.netnsId) return
      if (!now && !wantEnrolled) return
    }
    if (st.enrolled === false && !wantEnrolled) return

    const found = this.#o.findNetns(st.podIPs)
    if (!found) {
      if (!wantEnrolled) {
        // Not managed, and no netns to clear: nothing can be redirected there. Looked at again at the next resync.
        st.lastError = undefined
        return this.#event({ type: 'waiting', pod: key, why: `no netns holds ${st.podIPs.join(', ')}` })
      }
      return this.#failed(
        key,
        st,
        op,
        `no network namespace holds pod IP ${st.podIPs.join(', ')} (scanned /proc/*/ns/net)`,
      )
    }
    try {
      await this.#o.act(found.path, op)
    } catch (err) {
      return this.#failed(key, st, op, `${op} of ${found.path}: ${(err as Error).message}`)
    }
    st.enrolled = wantEnrolled
    st.by = 'reconciler'
    st.netns = found.path
    st.netnsId = found.id
    st.lastError = undefined
    st.failures = 0
    st.nextRetryAt = undefined
    this.#backoffs.get(key)?.reset()
    this.#clearRetry(key)
    this.#event({ type: wantEnrolled ? 'enrolled' : 'unenrolled', pod: key, netns: found.path, by: 'reconciler' })
    this.#o.log.info({ pod: key, netns: found.path, netnsId: found.id, reason: decision.reason }, `node: pod ${op}led`)
  }

  #failed(key: string, st: PodEnrolment, op: EnrolOp, error: string): void {
    let backoff = this.#backoffs.get(key)
    if (!backoff) {
      const b = { ...reconcilerDefaults.backoff, ...this.#o.backoff }
      backoff = new Backoff(
        b.initialMs ?? reconcilerDefaults.backoff.initialMs,
        b.maxMs ?? reconcilerDefaults.backoff.maxMs,
      )
      this.#backoffs.set(key, backoff)
    }
    const retryInMs = backoff.next()
    st.lastError = error
    st.failures++
    st.nextRetryAt = new Date(Date.now() + retryInMs).toISOString()
    this.#event({ type: 'failed', pod: key, op, error, retryInMs })
    this.#o.log.warn({ pod: key, err: error, retryInMs, failures: st.failures }, `node: cannot ${op} pod; retrying`)
    this.#clearRetry(key)
    const timer = setTimeout(() => {
      this.#retryTimers.delete(key)
      this.#mark(key)
    }, retryInMs)
    timer.unref()
    this.#retryTimers.set(key, timer)
  }

  #clearRetry(key: string): void {
    const t = this.#retryTimers.get(key)
    if (t) clearTimeout(t)
    this.#retryTimers.delete(key)
  }

  #event(e: ReconcilerEvent): void {
    this.#o.onEvent?.(e)
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
