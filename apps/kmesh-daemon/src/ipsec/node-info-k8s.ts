/**
 * Cluster mode node info: the `KmeshNodeInfo` custom resources (group kmesh.net, version v1alpha1, plural
 * kmeshnodeinfos, one per node, named after the node, in kmesh-system like upstream Kmesh) through
 * @kubernetes/client-node. One informer (src/kube/informer.ts, the same machinery as node mode's pods and
 * namespaces: the library's list + watch with bookmarks, a re-list after 410 Gone, backoff and a re-list after a
 * failure) keeps a cache that the controller reads synchronously. This node's own object is created (or
 * merge-patched when it exists) with its spi, addresses, bootID and podCIDRS (Kmesh's JSON names), republished if
 * someone deletes or changes it.
 *
 * Shutdown leaves our object in place by default: the other nodes keep their ingress/egress rules for us while we
 * restart (a daemon restart is routine; the kernel's SAs in our namespace are removed by the controller and put back
 * by the next start with the same SPI and boot id, so the peers' keys stay valid). `deleteOnClose` removes it, for a
 * node leaving the cluster for good.
 */
import {
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node'
import type { NodeInfo } from '@kmesh-ts/ipsec/pure'
import { Backoff, describeApiError, httpCode, loadKubeConfig } from '../kube/config.js'
import { Informer } from '../kube/informer.js'
import type { Logger } from '../log.js'
import {
  NODE_INFO_API_VERSION,
  NODE_INFO_KIND,
  nodeInfoDocument,
  nodeInfoFromObject,
  NodeInfoError,
} from './node-info.js'
import type { NodeInfoSource } from './node-info-source.js'

export { describeApiError, loadKubeConfig }

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
  /** Watch timeouts (src/kube/informer.ts): the server's end after minSeconds..2×minSeconds, a hang after graceMs more. */
  watchTimeout?: { minSeconds?: number; graceMs?: number }
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

const specJson = (n: NodeInfo): string => JSON.stringify((nodeInfoDocument(n) as { spec: unknown }).spec)

interface KubeObject extends KubernetesObject {
  spec?: unknown
}

export class KubernetesNodeInfoSource implements NodeInfoSource {
  readonly description: string
  readonly #o: KubernetesNodeInfoSourceOptions & { namespace: string; deleteOnClose: boolean }
  readonly #api: CustomObjectsApi
  readonly #informer: Informer<KubeObject>
  readonly #path: string
  readonly #publishBackoff: Backoff
  readonly #cache = new Map<string, NodeInfo>()
  #onChange: () => void = () => {}
  #closed = false
  #started = false
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
    this.#path = `/apis/${KMESH_NODE_INFO.group}/${KMESH_NODE_INFO.version}/namespaces/${namespace}/${KMESH_NODE_INFO.plural}`
    this.#informer = this.#makeInformer(kc, backoff)
    this.#publishBackoff = new Backoff(backoff.initialMs, backoff.maxMs)
    this.description = `kubernetes ${kc.getCurrentCluster()?.server ?? '?'} ${namespace}/${KMESH_NODE_INFO.plural}`
  }

  start(onChange: () => void): void {
    if (this.#started || this.#closed) return
    this.#started = true
    this.#onChange = onChange
    this.#informer.start()
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
    for (const s of this.#sleeps) {
      clearTimeout(s.timer)
      s.wake()
    }
    try {
      await this.#informer.stop()
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

  // --- list + watch (src/kube/informer.ts) ---

  #makeInformer(kc: KubeConfig, backoff: { initialMs: number; maxMs: number }): Informer<KubeObject> {
    const { log } = this.#o
    const informer = new Informer<KubeObject>({
      kubeConfig: kc,
      path: this.#path,
      list: async () =>
        (await this.#api.listNamespacedCustomObject({
          ...KMESH_NODE_INFO,
          namespace: this.#o.namespace,
        })) as KubernetesListObject<KubeObject>,
      backoff,
      watchTimeout: this.#o.watchTimeout,
      onEvent: (e) => {
        if (this.#closed) return
        if (e.type === 'watch-ended') {
          this.#event(e)
          if (e.error)
            log.warn(
              { path: this.#path, err: e.error, retryInMs: e.retryInMs },
              'ipsec: KmeshNodeInfo watch failed; the node info in hand stays, re-listing',
            )
          else log.debug({ path: this.#path, retryInMs: e.retryInMs }, 'ipsec: KmeshNodeInfo watch closed; resuming')
        } else if (e.type === 'list-failed') {
          this.#event(e)
          log.warn(
            { path: this.#path, err: e.error, retryInMs: e.retryInMs },
            'ipsec: cannot list KmeshNodeInfo; the node info in hand stays, retrying',
          )
        }
      },
    })
    // Each object change updates the cache; outside a list it is an event of its own, a list is one change.
    const changed = (type: 'ADDED' | 'MODIFIED' | 'DELETED') => (obj: KubeObject) => {
      if (this.#closed) return
      this.#apply(type, obj)
      if (informer.listing) return
      this.#event({ type: 'watch-event', event: type, name: obj.metadata?.name ?? '' })
      this.#onChange()
    }
    informer.on('add', changed('ADDED'))
    informer.on('update', changed('MODIFIED'))
    informer.on('delete', changed('DELETED'))
    informer.onListed(() => {
      if (this.#closed) return
      const resourceVersion = informer.status().resourceVersion
      this.#event({ type: 'listed', nodes: this.#cache.size, resourceVersion })
      log.info({ namespace: this.#o.namespace, nodes: [...this.#cache.keys()] }, 'ipsec: KmeshNodeInfo listed')
      this.#onChange()
    })
    return informer
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
