/**
 * One informer: @kubernetes/client-node's ListWatch (the library's informer: list, then watch from the list's
 * resourceVersion, its object cache, add/update/delete callbacks, a re-list after 410 Gone) with the policy the
 * library leaves to its caller, in a Watch it is given:
 *
 *  - watches ask for bookmarks (`allowWatchBookmarks=true`), so a quiet collection still advances the
 *    resourceVersion a resumed watch starts from, and for a server-side end after 5-10 minutes (`timeoutSeconds`);
 *  - a watch the server has not ended 30 s after its timeoutSeconds is taken for silently dead (the connection
 *    vanished without a FIN: the server's end can never arrive) and aborted here, then re-listed after a backoff;
 *  - an ERROR event ends the watch at once (a 410 Expired one makes the library re-list);
 *  - a watch that fails (HTTP error, connection refused or reset) or a list that fails is retried after a backoff
 *    (doubling, jittered) and re-lists, as client-go's reflector does: the cache stays meanwhile;
 *  - a watch the server closes cleanly (API servers end watches every few minutes) resumes at once from the last
 *    resourceVersion, without a list; one closed again before any event and within a second waits a backoff;
 *  - each list is reported once, after the cache holds it (`listed`), so consumers can act on the whole set
 *    instead of on the add/update/delete callbacks the list raises one by one (`listing` tells them apart).
 */
import {
  ListWatch,
  Watch,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node'
import { Backoff, describeApiError, httpCode } from './config.js'

export type InformerEvent =
  | { type: 'listed'; items: number; resourceVersion: string }
  | { type: 'watch-event'; event: 'ADDED' | 'MODIFIED' | 'DELETED'; name: string; namespace?: string | undefined }
  | { type: 'bookmark'; resourceVersion: string }
  | { type: 'watch-ended'; error?: string | undefined; relist: boolean; retryInMs: number }
  | { type: 'list-failed'; error: string; retryInMs: number }

export interface InformerOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig
  /** The collection's URL path (e.g. /api/v1/pods). */
  path: string
  /** The list call matching path and selectors (a typed API client's list method). */
  list: () => Promise<KubernetesListObject<T>>
  fieldSelector?: string | undefined
  labelSelector?: string | undefined
  backoff?: { initialMs?: number | undefined; maxMs?: number | undefined } | undefined
  /** Observes the informer (logs, status, tests); called synchronously, must not throw. */
  onEvent?: ((event: InformerEvent) => void) | undefined
  /**
   * Each watch asks the server to end it after a random time from minSeconds to 2 × minSeconds (timeoutSeconds);
   * one still open graceMs after that is aborted here as silently dead.
   */
  watchTimeout?: { minSeconds?: number | undefined; graceMs?: number | undefined } | undefined
}

export const informerDefaults = {
  backoff: { initialMs: 500, maxMs: 30_000 },
  watchTimeout: { minSeconds: 300, graceMs: 30_000 },
} as const

/** A watch that ran at least this long before a clean close is routine. */
const HEALTHY_WATCH_MS = 1000

/** What a consumer sees of the state of one informer (admin dump). */
export interface InformerStatus {
  path: string
  synced: boolean
  resourceVersion: string
  lists: number
  watches: number
  lastError?: string | undefined
}

export class Informer<T extends KubernetesObject> {
  readonly #o: InformerOptions<T>
  readonly #lw: ListWatch<T>
  readonly #backoff: Backoff
  readonly #sleeps = new Set<{ timer: NodeJS.Timeout; wake: () => void }>()
  readonly #listedHandlers: Array<() => void> = []
  #stopped = true
  #listing = false
  #listed: { items: number; resourceVersion: string } | undefined
  #synced = false
  #syncWaiters: Array<() => void> = []
  #lists = 0
  #watches = 0
  #lastError: string | undefined
  readonly watchTimeout: { minSeconds: number; graceMs: number }

  constructor(options: InformerOptions<T>) {
    this.#o = options
    this.watchTimeout = {
      minSeconds: options.watchTimeout?.minSeconds ?? informerDefaults.watchTimeout.minSeconds,
      graceMs: options.watchTimeout?.graceMs ?? informerDefaults.watchTimeout.graceMs,
    }
    if (!Number.isInteger(this.watchTimeout.minSeconds) || this.watchTimeout.minSeconds < 1)
      throw new RangeError(
        `Informer: watchTimeout.minSeconds must be a positive integer, got ${this.watchTimeout.minSeconds}`,
      )
    const b = { ...informerDefaults.backoff, ...options.backoff }
    this.#backoff = new Backoff(
      b.initialMs ?? informerDefaults.backoff.initialMs,
      b.maxMs ?? informerDefaults.backoff.maxMs,
    )
    const list = async (): Promise<KubernetesListObject<T>> => {
      this.#listing = true
      try {
        const result = await options.list()
        this.#listed = { items: result.items?.length ?? 0, resourceVersion: result.metadata?.resourceVersion ?? '' }
        return result
      } catch (err) {
        this.#listing = false
        throw err
      }
    }
    this.#lw = new ListWatch<T>(
      options.path,
      new PolicyWatch(options.kubeConfig, this),
      list,
      false,
      options.labelSelector,
      options.fieldSelector,
    )
    // A failed list (the library stops there): retry it after a backoff.
    this.#lw.on('error', (err: unknown) => void this.#listFailed(err))
  }

  on(verb: 'add' | 'update' | 'delete', cb: (obj: T) => void): void {
    this.#lw.on(verb, cb)
  }
  /** After every list, once the cache holds it. */
  onListed(cb: () => void): void {
    this.#listedHandlers.push(cb)
  }
  /** True while the add/update/delete callbacks replay a list (a `listed` follows). */
  get listing(): boolean {
    return this.#listing
  }
  get synced(): boolean {
    return this.#synced
  }
  get(name: string, namespace?: string): T | undefined {
    return this.#lw.get(name, namespace)
  }
  list(namespace?: string): readonly T[] {
    return this.#lw.list(namespace)
  }
  status(): InformerStatus {
    return {
      path: this.#o.path,
      synced: this.#synced,
      resourceVersion: this.#lw.latestResourceVersion(),
      lists: this.#lists,
      watches: this.#watches,
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
    }
  }

  /** Resolves once the first list is in the cache (or at once when stopped). */
  waitForSync(): Promise<void> {
    if (this.#synced || this.#stopped) return Promise.resolve()
    return new Promise((resolve) => this.#syncWaiters.push(resolve))
  }

  start(): void {
    if (!this.#stopped) return
    this.#stopped = false
    void this.#lw.start()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    for (const s of this.#sleeps) {
      clearTimeout(s.timer)
      s.wake()
    }
    for (const w of this.#syncWaiters.splice(0)) w()
    await this.#lw.stop()
  }

  // --- for PolicyWatch ---

  get stopped(): boolean {
    return this.#stopped
  }

  /** The library calls watch() right after applying a list: report the list now that the cache holds it. */
  watchStarting(): void {
    this.#watches++
    const listed = this.#listed
    if (!listed) return
    this.#listed = undefined
    this.#listing = false
    this.#lists++
    this.#lastError = undefined
    this.#backoff.reset()
    const first = !this.#synced
    this.#synced = true
    this.#event({ type: 'listed', ...listed })
    for (const h of this.#listedHandlers) h()
    if (first) for (const w of this.#syncWaiters.splice(0)) w()
  }

  watchEvent(type: string, obj: KubernetesObject): void {
    if (type === 'BOOKMARK') {
      this.#event({ type: 'bookmark', resourceVersion: obj.metadata?.resourceVersion ?? '' })
      return
    }
    if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED') return
    this.#backoff.reset()
    this.#event({
      type: 'watch-event',
      event: type,
      name: obj.metadata?.name ?? '',
      namespace: obj.metadata?.namespace,
    })
  }

  /** How long to wait before the next watch or list, and whether the library must list again. */
  watchEnded(end: { error?: string | undefined; gone: boolean; events: number; ranMs: number }): number {
    const routine = !end.error && !end.gone && (end.events > 0 || end.ranMs >= HEALTHY_WATCH_MS)
    const retryInMs = routine || (end.gone && !end.error) ? 0 : this.#backoff.next()
    if (end.error) this.#lastError = end.error
    this.#event({ type: 'watch-ended', error: end.error, relist: end.gone || end.error !== undefined, retryInMs })
    return retryInMs
  }

  sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve()
    return new Promise((resolve) => {
      const s = {
        timer: setTimeout(() => {
          this.#sleeps.delete(s)
          resolve()
        }, ms),
        wake: resolve,
      }
      this.#sleeps.add(s)
    })
  }

  async #listFailed(err: unknown): Promise<void> {
    if (this.#stopped) return
    const error = describeApiError(err)
    const retryInMs = this.#backoff.next()
    this.#lastError = error
    this.#event({ type: 'list-failed', error, retryInMs })
    await this.sleep(retryInMs)
    if (this.#stopped) return
    // The library stopped on the error; its resourceVersion is still empty, so start() lists again.
    await this.#lw.stop()
    this.#stopped = true
    this.start()
  }

  #event(e: InformerEvent): void {
    this.#o.onEvent?.(e)
  }
}

/** What PolicyWatch reports to and asks of its informer. */
interface WatchPolicyHost {
  readonly stopped: boolean
  readonly watchTimeout: { minSeconds: number; graceMs: number }
  watchStarting(): void
  watchEvent(type: string, obj: KubernetesObject): void
  watchEnded(end: { error?: string | undefined; gone: boolean; events: number; ranMs: number }): number
  sleep(ms: number): Promise<void>
}

/** Relist: the error the library answers with a new list (it re-lists on 410 Gone only). */
const relistError = (cause: string): Error & { statusCode: number } =>
  Object.assign(new Error(`re-list after: ${cause}`), { statusCode: 410 })

/**
 * The Watch the library's ListWatch is given: it adds the bookmark parameter, ends a watch on an ERROR event, and
 * turns every failure into a backoff followed by a re-list (see the file comment). Each watch() call is one
 * request; `done` is called once.
 */
class PolicyWatch extends Watch {
  constructor(
    config: KubeConfig,
    private readonly informer: WatchPolicyHost,
  ) {
    super(config)
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const informer = this.informer
    if (informer.stopped) return new AbortController()
    informer.watchStarting()
    const started = Date.now()
    let events = 0
    let gone: string | undefined
    let failure: string | undefined
    let finished = false
    let request: AbortController | undefined
    let deadline: NodeJS.Timeout | undefined
    const finish = (err: unknown): void => {
      if (finished) return
      finished = true
      clearTimeout(deadline)
      request?.abort()
      if (informer.stopped) return
      if (err && httpCode(err) === 410) gone ??= describeApiError(err)
      else if (err) failure ??= describeApiError(err)
      const retryInMs = informer.watchEnded({
        error: failure ?? gone,
        gone: gone !== undefined,
        events,
        ranMs: Date.now() - started,
      })
      void informer.sleep(retryInMs).then(() => {
        if (informer.stopped) return
        done(gone !== undefined || failure !== undefined ? relistError(failure ?? gone!) : null)
      })
    }
    const onEvent = (type: string, obj: unknown, raw?: unknown): void => {
      if (finished) return
      const o = obj as KubernetesObject & { code?: number; message?: string; reason?: string }
      if (type === 'ERROR') {
        const what = `watch ERROR event: ${o.code ?? ''} ${o.reason ?? ''} ${o.message ?? ''}`
          .replace(/\s+/g, ' ')
          .trim()
        if (o.code === 410) gone = what
        else failure = what
        callback(type, obj, raw)
        finish(null)
        return
      }
      events++ // a bookmark too: the watch is alive
      callback(type, obj, raw)
      informer.watchEvent(type, o)
    }
    try {
      // timeoutSeconds: the server ends each watch after 5-10 minutes (as client-go asks). The library sets no
      // timeout of its own, so a connection that died silently (no FIN) would wait for that end forever: a watch
      // still open graceMs after its timeoutSeconds is aborted here and counts as a failure (backoff, re-list).
      const { minSeconds, graceMs } = informer.watchTimeout
      const timeoutSeconds = minSeconds + Math.floor(Math.random() * minSeconds)
      deadline = setTimeout(
        () => {
          failure ??= `watch hung: the server did not end it ${graceMs} ms after its timeoutSeconds=${timeoutSeconds}`
          finish(null)
        },
        timeoutSeconds * 1000 + graceMs,
      )
      deadline.unref()
      request = await super.watch(path, { ...queryParams, allowWatchBookmarks: true, timeoutSeconds }, onEvent, finish)
    } catch (err) {
      finish(err)
    }
    if (finished || informer.stopped) request?.abort()
    return request ?? new AbortController()
  }
}
