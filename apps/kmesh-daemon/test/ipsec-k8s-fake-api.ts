/**
 * The IPsec tests' view of the fake API server (test/support/fake-kube-api.ts, the one fake: the real list/watch
 * wire protocol): one KmeshNodeInfo collection, its objects by name, and the server-wide request log.
 */
import {
  type FakeCollection,
  FakeKubeApi as FakeServer,
  kmeshNodeInfos,
  type KubeObj,
  type RecordedRequest,
} from './support/fake-kube-api.js'

export type { RecordedRequest }

export class FakeKubeApi {
  private constructor(
    private readonly server: FakeServer,
    private readonly nodeInfos: FakeCollection,
  ) {}

  /** `collection`: e.g. /apis/kmesh.net/v1alpha1/namespaces/kmesh-system/kmeshnodeinfos */
  static async start(collection: string): Promise<FakeKubeApi> {
    const m = /^\/apis\/kmesh\.net\/v1alpha1\/namespaces\/([^/]+)\/kmeshnodeinfos$/.exec(collection)
    if (!m) throw new Error(`not a KmeshNodeInfo collection: ${collection}`)
    const spec = kmeshNodeInfos(m[1])
    const server = await FakeServer.start([spec])
    return new FakeKubeApi(server, server.collection(spec.path))
  }

  get url(): string {
    return this.server.url
  }
  get kubeconfig(): string {
    return this.server.kubeconfig
  }
  get token(): string {
    return this.server.token
  }
  get requests(): RecordedRequest[] {
    return this.server.requests
  }
  /** The stored objects by name. */
  get objects(): Map<string, KubeObj> {
    return this.nodeInfos.objects
  }
  get failNext(): FakeCollection['failNext'] {
    return this.nodeInfos.failNext
  }
  get watchCount(): number {
    return this.nodeInfos.watchCount
  }
  get watchesOpened(): number {
    return this.nodeInfos.watchesOpened
  }
  waitForWatch(n?: number): Promise<void> {
    return this.nodeInfos.waitForWatch(n)
  }
  put(obj: KubeObj, type?: 'ADDED' | 'MODIFIED'): KubeObj {
    return this.nodeInfos.put(obj, type)
  }
  remove(name: string): void {
    this.nodeInfos.remove(name)
  }
  send(type: string, object: unknown): void {
    this.nodeInfos.send(type, object)
  }
  dropWatches(): void {
    this.nodeInfos.dropWatches()
  }
  close(): Promise<void> {
    return this.server.close()
  }
}
