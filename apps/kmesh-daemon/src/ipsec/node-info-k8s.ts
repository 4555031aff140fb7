/**
 * Cluster mode node info: the `KmeshNodeInfo` custom resources (group kmesh.net, version v1alpha1, plural
 * kmeshnodeinfos, one per node, named after the node, in kmesh-system like upstream Kmesh) through
 * @kubernetes/client-node. A list, then a watch from the list's resourceVersion, kept in a cache that the controller
 * reads synchronously; the watch resumes where it stopped after a clean server close and re-lists after an error or
 * a 410 Gone, with backoff. This node's own object is created (or merge-patched when it exists) with its spi,
 * addresses, bootID and podCIDRS (Kmesh's JSON names), republished if someone deletes or changes it.
 *
 * Shutdown leaves our object in place by default: the other nodes keep their ingress/egress rules for us while we
 * restart (a daemon restart is routine; the kernel's SAs in our namespace are removed by the controller and put back
 * by the next start with the same SPI and boot id, so the peers' keys stay valid). `deleteOnClose` removes it, for a
 * node leaving the cluster for good.
 */
import { CustomObjectsApi, KubeConfig, PatchStrategy, Watch, setHeaderOptions } from '@kubernetes/client-node'
import type { NodeInfo } from '@kmesh-ts/ipsec/pure'
import type { Logger } from '../log.js'
import {
  NODE_INFO_API_VERSION,
  NODE_INFO_KIND,
  nodeInfoDocument,
  nodeInfoFromObject,
  NodeInfoError,
} from './node-info.js'
import type { NodeInfoSource } from './node-info-source.js'

export const KMESH_NODE_INFO = { group: 'kmesh.net', version: 'v1alpha1', plural: 'kmeshnodeinfos' } as const

export interface KubernetesNodeInfoSourceOptions {
  /** This node: its object is `<namespace>/<nodeName>`. */
  nodeName: string
  /** Namespace of the KmeshNodeInfo objects (default kmesh-system, as upstream Kmesh). */
  namespace?: string
  /** A kubeconfig file; without it the pod's service account (in-cluster config). */
  kubeconfigFile?: string | undefined
  /** Delete this node's object on close (default false: peers need it while we restart). */
  deleteOnClose?: boolean
  /** Reconnect backoff of the watch and of publishing: doubles from initialMs up to maxMs, ±20 % jitter. */
  backoff?: { initialMs?: number; maxMs?: number }
  /** Observes the source (tests, metrics); called synchronously, must not throw. */
  onEvent?: (event: KubernetesNodeInfoEvent) => void
  log: Logger
}

export type KubernetesNodeInfoEvent =
  | { type: 'listed'; nodes: number; resourceVersion: string }
  | { type: 'watch-event'; event: 'ADDED' | 'MODIFIED' | 'DELETED'; name: string }
  | { type: 'watch-ended'; error?: string | undefined; relist: boolean; retryInMs: number }
  | { type: 'list-failed'; error: string; retryInMs: number }
  | { type: 'published'; name: string; op: 'create' | 'patch' }
  | { type: 'publish-failed'; error: string; retryInMs: number }
  | { type: 'withdrawn'; name: string }

export const kubernetesNodeInfoDefaults = {
  namespace: 'kmesh-system',
  deleteOnClose: false,
  backoff: { initialMs: 500, maxMs: 30_000 },
} as const

/** A watch that ran at least this long before a clean close is routine (API servers end watches every few minutes). */
const HEALTHY_WATCH_MS = 1000

class Backoff {
  #attempt = 0
  constructor(
    readonly initialMs: number,
    readonly maxMs: number,
  ) {}
  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * 2 ** this.#attempt++)
    return Math.round(base * (0.8 + Math.random() * 0.4))
  }
  reset(): void {
    this.#attempt = 0
  }
}

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

const httpCode = (err: unknown): number | undefined => {
  const code = (err as { code?: unknown; statusCode?: unknown }).code ?? (err as { statusCode?: unknown }).statusCode
  return typeof code === 'number' ? code : undefined
}

const specJson = (n: NodeInfo): string => JSON.stringify((nodeInfoDocument(n) as { spec: unknown }).spec)

interface KubeObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string }
  spec?: unknown
}

export class KubernetesNodeInfoSource implements NodeInfoSource {
  readonly description: string
  readonly #o: KubernetesNodeInfoSourceOptions & { namespace: string; deleteOnClose: boolean }
  readonly #api: CustomObjectsApi
  readonly #watch: Watch
  readonly #path: string
  readonly #watchBackoff: Backoff
  readonly #publishBackoff: Backoff
  readonly #cache = new Map<string, NodeInfo>()
  #onChange: () => void = () => {}
  #resourceVersion: string | undefined
  #abort: AbortController | undefined
  #closed = false
  #running: Promise<void> | undefined
  #sleeps = new Set<{ timer: NodeJS.Timeout; wake: () => void }>()
  // publishing
  #wanted: NodeInfo | undefined
  #publishedSpec: string | undefined
  #exists: boolean | undefined
  #publishing: Promise<void> | undefined

  /** `kubeConfig` overrides kubeconfigFile / in-cluster loading (tests, embedding). */
  constructor(options: KubernetesNodeInfoSourceOptions, kubeConfig?: KubeConfig) {
    const namespace = options.namespace ?? kubernetesNodeInfoDefaults.namespace
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace) || namespace.length > 63)
      throw new NodeInfoError(namespace, 'namespace', 'a namespace must be a DNS-1123 label')
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(options.nodeName))
      throw new NodeInfoError(
        options.nodeName,
        'metadata.name',
        'a node name must be a DNS-1123 subdomain (lowercase letters, digits, - and .)',
      )
    const backoff = { ...kubernetesNodeInfoDefaults.backoff, ...options.backoff }
    for (const k of ['initialMs', 'maxMs'] as const) {
      if (!Number.isFinite(backoff[k]) || backoff[k] <= 0)
        throw new RangeError(
          `KubernetesNodeInfoSource: option backoff.${k} must be a positive number, got ${backoff[k]}`,
        )
    }
    this.#o = {
      ...options,
      namespace,
      deleteOnClose: options.deleteOnClose ?? kubernetesNodeInfoDefaults.deleteOnClose,
    }
    const kc = kubeConfig ?? loadKubeConfig(options.kubeconfigFile)
    this.#api = kc.makeApiClient(CustomObjectsApi)
    this.#watch = new Watch(kc)
    this.#path = `/apis/${KMESH_NODE_INFO.group}/${KMESH_NODE_INFO.version}/namespaces/${namespace}/${KMESH_NODE_INFO.plural}`
    this.#watchBackoff = new Backoff(backoff.initialMs, backoff.maxMs)
    this.#publishBackoff = new Backoff(backoff.initialMs, backoff.maxMs)
    this.description = `kubernetes ${kc.getCurrentCluster()?.server ?? '?'} ${namespace}/${KMESH_NODE_INFO.plural}`
  }

  start(onChange: () => void): void {
    if (this.#running || this.#closed) return
    this.#onChange = onChange
    this.#running = this.#run()
  }

  nodes(): ReadonlyMap<string, NodeInfo> {
    return new Map(this.#cache)
  }

  publish(info: NodeInfo): void {
    if (info.name !== this.#o.nodeName)
      throw new NodeInfoError(info.name, 'metadata.name', `this source publishes node ${this.#o.nodeName} only`)
    this.#wanted = info
    this.#kickPublish()
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#abort?.abort()
    for (const s of this.#sleeps) {
      clearTimeout(s.timer)
      s.wake()
    }
    try {
      await this.#running
      await this.#publishing
    } catch {
      /* both loops catch their own errors */
    }
    if (!this.#o.deleteOnClose) return
    try {
      await this.#api.deleteNamespacedCustomObject({
        ...KMESH_NODE_INFO,
        namespace: this.#o.namespace,
        name: this.#o.nodeName,
      })
      this.#event({ type: 'withdrawn', name: this.#o.nodeName })
      this.#o.log.info({ namespace: this.#o.namespace, name: this.#o.nodeName }, 'ipsec node info deleted')
    } catch (err) {
      if (httpCode(err) === 404) return
      this.#o.log.error(
        { namespace: this.#o.namespace, name: this.#o.nodeName, err: describeApiError(err) },
        'ipsec: could not delete our KmeshNodeInfo; delete it by hand (kubectl delete kmeshnodeinfos)',
      )
    }
  }

  // --- list + watch ---

  async #run(): Promise<void> {
    const { log } = this.#o
    while (!this.#closed) {
      if (this.#resourceVersion === undefined) {
        try {
          await this.#list()
        } catch (err) {
          if (this.#closed) return
          const retryInMs = this.#watchBackoff.next()
          const error = describeApiError(err)
          this.#event({ type: 'list-failed', error, retryInMs })
          log.warn(
            { path: this.#path, err: error, retryInMs },
            'ipsec: cannot list KmeshNodeInfo; the node info in hand stays, retrying',
          )
          await this.#sleep(retryInMs)
          continue
        }
      }
      const started = Date.now()
      const end = await this.#watchOnce()
      if (this.#closed) return
      const routine = !end.error && !end.relist && (end.events > 0 || Date.now() - started >= HEALTHY_WATCH_MS)
      if (end.events > 0) this.#watchBackoff.reset()
      const retryInMs = routine ? 0 : this.#watchBackoff.next()
      if (end.relist || end.error) this.#resourceVersion = undefined
      this.#event({ type: 'watch-ended', error: end.error, relist: this.#resourceVersion === undefined, retryInMs })
      if (end.error)
        log.warn(
          { path: this.#path, err: end.error, retryInMs },
          'ipsec: KmeshNodeInfo watch failed; the node info in hand stays, re-listing',
        )
      else log.debug({ path: this.#path, retryInMs }, 'ipsec: KmeshNodeInfo watch closed; resuming')
      if (retryInMs > 0) await this.#sleep(retryInMs)
    }
  }

  async #list(): Promise<void> {
    const list = (await this.#api.listNamespacedCustomObject({ ...KMESH_NODE_INFO, namespace: this.#o.namespace })) as {
      metadata?: { resourceVersion?: string }
      items?: unknown[]
    }
    if (this.#closed) return
    const items = Array.isArray(list.items) ? list.items : []
    this.#cache.clear()
    for (const item of items) this.#apply('ADDED', item as KubeObject)
    this.#resourceVersion = list.metadata?.resourceVersion ?? ''
    this.#event({ type: 'listed', nodes: this.#cache.size, resourceVersion: this.#resourceVersion })
    this.#o.log.info({ namespace: this.#o.namespace, nodes: [...this.#cache.keys()] }, 'ipsec: KmeshNodeInfo listed')
    this.#onChange()
  }

  /** One watch request; resolves when it ends. `relist` after a 410 Gone or an ERROR event. */
  #watchOnce(): Promise<{ error?: string | undefined; relist: boolean; events: number }> {
    return new Promise((resolve) => {
      let events = 0
      let settled = false
      const finish = (error: string | undefined, relist: boolean): void => {
        if (settled) return
        settled = true
        this.#abort?.abort()
        this.#abort = undefined
        resolve({ error, relist, events })
      }
      const params = { resourceVersion: this.#resourceVersion || undefined, allowWatchBookmarks: true }
      this.#watch
        .watch(
          this.#path,
          params,
          (type: string, obj: unknown) => {
            if (settled || this.#closed) return
            const o = obj as KubeObject & { code?: number; message?: string }
            if (type === 'ERROR') {
              // A Status object; 410 Gone means our resourceVersion is too old: list again.
              finish(`watch ERROR event: ${o.code ?? ''} ${o.message ?? ''}`.trim(), true)
              return
            }
            if (o.metadata?.resourceVersion) this.#resourceVersion = o.metadata.resourceVersion
            if (type === 'BOOKMARK') return
            if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED') return
            events++
            this.#watchBackoff.reset()
            this.#apply(type, o)
            this.#event({ type: 'watch-event', event: type, name: o.metadata?.name ?? '' })
            this.#onChange()
          },
          (err: unknown) => {
            if (err && httpCode(err) === 410) finish('HTTP 410 Gone', true)
            else finish(err ? describeApiError(err) : undefined, false)
          },
        )
        .then(
          (abort) => {
            if (settled || this.#closed) abort.abort()
            else this.#abort = abort
          },
          (err: unknown) => finish(describeApiError(err), true),
        )
    })
  }

  #apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: KubeObject): void {
    const name = obj.metadata?.name
    if (typeof name !== 'string' || name === '') return
    const where = `${this.#o.namespace}/${KMESH_NODE_INFO.plural}/${name}`
    let info: NodeInfo | undefined
    if (type !== 'DELETED') {
      try {
        info = nodeInfoFromObject({ apiVersion: NODE_INFO_API_VERSION, kind: NODE_INFO_KIND, ...obj }, where)
      } catch (err) {
        // Like a broken file in local mode: reported and left out, so its rules go.
        this.#o.log.error({ object: where, key: (err as NodeInfoError).key }, (err as Error).message)
      }
    }
    if (info) this.#cache.set(name, info)
    else this.#cache.delete(name)
    if (name === this.#o.nodeName) this.#ownObjectSeen(info, type === 'DELETED')
  }

  // --- publishing this node ---

  /** Someone else deleted or changed our object: publish again (a stale event costs one no-op patch). */
  #ownObjectSeen(info: NodeInfo | undefined, deleted: boolean): void {
    if (this.#closed || this.#publishing || !this.#wanted) return
    if (deleted) this.#exists = false
    if (deleted || !info || specJson(info) !== this.#publishedSpec) {
      this.#publishedSpec = undefined
      this.#kickPublish()
    }
  }

  #kickPublish(): void {
    if (this.#closed || this.#publishing) return
    this.#publishing = this.#publishLoop().finally(() => {
      this.#publishing = undefined
      if (!this.#closed && this.#wanted && specJson(this.#wanted) !== this.#publishedSpec) this.#kickPublish()
    })
  }

  async #publishLoop(): Promise<void> {
    while (!this.#closed && this.#wanted && specJson(this.#wanted) !== this.#publishedSpec) {
      const info = this.#wanted
      try {
        const op = await this.#write(info)
        this.#publishedSpec = specJson(info)
        this.#publishBackoff.reset()
        this.#event({ type: 'published', name: info.name, op })
        this.#o.log.info(
          {
            namespace: this.#o.namespace,
            name: info.name,
            op,
            spi: info.spi,
            addresses: info.addresses,
            podCIDRs: info.podCIDRs,
          },
          'ipsec: KmeshNodeInfo written',
        )
      } catch (err) {
        if (this.#closed) return
        const retryInMs = this.#publishBackoff.next()
        const error = describeApiError(err)
        this.#event({ type: 'publish-failed', error, retryInMs })
        this.#o.log.warn(
          { namespace: this.#o.namespace, name: info.name, err: error, retryInMs },
          'ipsec: cannot publish our KmeshNodeInfo; retrying (peers keep the previous one)',
        )
        await this.#sleep(retryInMs)
      }
    }
  }

  /** Create, or merge-patch the spec when the object exists (a 409 on create, or known from before). */
  async #write(info: NodeInfo): Promise<'create' | 'patch'> {
    const ref = { ...KMESH_NODE_INFO, namespace: this.#o.namespace }
    const doc = nodeInfoDocument(info) as { spec: unknown }
    const create = async (): Promise<boolean> => {
      try {
        await this.#api.createNamespacedCustomObject({
          ...ref,
          body: { ...doc, metadata: { name: info.name, namespace: this.#o.namespace } },
        })
        this.#exists = true
        return true
      } catch (err) {
        if (httpCode(err) !== 409) throw err
        this.#exists = true
        return false
      }
    }
    if (this.#exists !== true && (await create())) return 'create'
    try {
      await this.#api.patchNamespacedCustomObject(
        { ...ref, name: info.name, body: { spec: doc.spec } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )
      return 'patch'
    } catch (err) {
      if (httpCode(err) !== 404) throw err
      // Deleted between our knowledge and the patch: create it again.
      this.#exists = false
      if (await create()) return 'create'
      throw err
    }
  }

  #sleep(ms: number): Promise<void> {
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

  #event(e: KubernetesNodeInfoEvent): void {
    this.#o.onEvent?.(e)
  }
}
