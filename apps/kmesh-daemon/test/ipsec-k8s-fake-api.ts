/**
 * A tiny Kubernetes API server for one custom resource collection (list, watch, create, merge-patch, delete) on
 * 127.0.0.1, with a kubeconfig file that points at it with a bearer token. Enough for @kubernetes/client-node's
 * CustomObjectsApi and Watch; every request is recorded for assertions.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'

export interface RecordedRequest {
  method: string
  path: string
  query: URLSearchParams
  contentType: string | undefined
  body: unknown
}
type KubeObj = {
  apiVersion?: string
  kind?: string
  metadata: { name: string; namespace?: string; resourceVersion?: string }
  spec?: Record<string, unknown>
}

export class FakeKubeApi {
  readonly requests: RecordedRequest[] = []
  readonly objects = new Map<string, KubeObj>()
  readonly token = 'test-token-1234'
  /** Status codes to answer the next requests of a kind with, e.g. failNext.list = [500]. */
  readonly failNext: { list: number[]; watch: number[]; create: number[]; patch: number[] } = {
    list: [],
    watch: [],
    create: [],
    patch: [],
  }
  #rv = 100
  #watches = new Set<ServerResponse>()
  #watchWaiters: Array<() => void> = []
  #server: Server
  #dir = mkdtempSync(join(tmpdir(), 'kmesh-fake-kube-'))
  url = ''
  kubeconfig = ''

  private constructor(readonly collection: string) {
    this.#server = createServer((req, res) => {
      void this.#handle(req, res)
    })
  }

  /** `collection`: e.g. /apis/kmesh.net/v1alpha1/namespaces/kmesh-system/kmeshnodeinfos */
  static async start(collection: string): Promise<FakeKubeApi> {
    const api = new FakeKubeApi(collection)
    await new Promise<void>((resolve) => api.#server.listen(0, '127.0.0.1', resolve))
    api.url = `http://127.0.0.1:${(api.#server.address() as AddressInfo).port}`
    api.kubeconfig = join(api.#dir, 'kubeconfig.yaml')
    writeFileSync(
      api.kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'current-context: fake',
        'clusters:',
        '- name: fake',
        '  cluster:',
        `    server: ${api.url}`,
        '    insecure-skip-tls-verify: true',
        'users:',
        '- name: fake',
        '  user:',
        `    token: ${api.token}`,
        'contexts:',
        '- name: fake',
        '  context:',
        '    cluster: fake',
        '    user: fake',
      ].join('\n') + '\n',
      { mode: 0o600 },
    )
    return api
  }

  /** Watch requests open now. */
  get watchCount(): number {
    return this.#watches.size
  }
  /** Watch requests answered 200 so far. */
  watchesOpened = 0

  /** Resolves once `n` watch requests have been opened in all (default: one more than now). */
  async waitForWatch(n = this.watchesOpened + 1): Promise<void> {
    while (this.watchesOpened < n) await new Promise<void>((resolve) => this.#watchWaiters.push(resolve))
  }

  /** Stores an object as the API would, and tells the watchers. */
  put(obj: KubeObj, type: 'ADDED' | 'MODIFIED' = this.objects.has(obj.metadata.name) ? 'MODIFIED' : 'ADDED'): KubeObj {
    const stored = {
      apiVersion: 'kmesh.net/v1alpha1',
      kind: 'KmeshNodeInfo',
      ...obj,
      metadata: { ...obj.metadata, namespace: 'kmesh-system', resourceVersion: String(++this.#rv) },
    }
    this.objects.set(obj.metadata.name, stored)
    this.send(type, stored)
    return stored
  }

  remove(name: string): void {
    const obj = this.objects.get(name)
    if (!obj) return
    this.objects.delete(name)
    this.send('DELETED', { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.#rv) } })
  }

  send(type: string, object: unknown): void {
    for (const w of this.#watches) w.write(`${JSON.stringify({ type, object })}\n`)
  }

  /** Ends every open watch the way an API server does when a watch times out. */
  dropWatches(): void {
    for (const w of this.#watches) w.end()
    this.#watches.clear()
  }

  async close(): Promise<void> {
    for (const w of this.#watches) w.destroy()
    this.#watches.clear()
    this.#server.closeAllConnections()
    await new Promise((resolve) => this.#server.close(resolve))
    rmSync(this.#dir, { recursive: true, force: true })
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const url = new URL(req.url ?? '/', this.url)
    const text = Buffer.concat(chunks).toString('utf8')
    const body: unknown = text ? JSON.parse(text) : undefined
    const method = req.method ?? 'GET'
    this.requests.push({
      method,
      path: url.pathname,
      query: url.searchParams,
      contentType: req.headers['content-type'],
      body,
    })
    const status = (code: number, reason: string, message: string) => {
      res.writeHead(code, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message }))
    }
    if (req.headers.authorization !== `Bearer ${this.token}`) return status(401, 'Unauthorized', 'bad token')
    const json = (code: number, obj: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' })
      res.end(JSON.stringify(obj))
    }
    const name = url.pathname.startsWith(`${this.collection}/`)
      ? url.pathname.slice(this.collection.length + 1)
      : undefined
    if (url.pathname !== this.collection && name === undefined)
      return status(404, 'NotFound', `no route ${url.pathname}`)
    if (method === 'GET' && !name && url.searchParams.get('watch') === 'true') {
      const fail = this.failNext.watch.shift()
      if (fail) return status(fail, 'InternalError', 'injected watch failure')
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' })
      res.flushHeaders()
      this.#watches.add(res)
      this.watchesOpened++
      res.on('close', () => this.#watches.delete(res))
      for (const w of this.#watchWaiters.splice(0)) w()
      return
    }
    if (method === 'GET' && !name) {
      const fail = this.failNext.list.shift()
      if (fail) return status(fail, 'InternalError', 'injected list failure')
      return json(200, {
        apiVersion: 'kmesh.net/v1alpha1',
        kind: 'KmeshNodeInfoList',
        metadata: { resourceVersion: String(this.#rv) },
        items: [...this.objects.values()],
      })
    }
    if (method === 'POST' && !name) {
      const fail = this.failNext.create.shift()
      if (fail) return status(fail, 'InternalError', 'injected create failure')
      const obj = body as KubeObj
      if (this.objects.has(obj.metadata.name))
        return status(409, 'AlreadyExists', `kmeshnodeinfos.kmesh.net "${obj.metadata.name}" already exists`)
      return json(201, this.put(obj, 'ADDED'))
    }
    if (method === 'PATCH' && name) {
      const fail = this.failNext.patch.shift()
      if (fail) return status(fail, 'InternalError', 'injected patch failure')
      const have = this.objects.get(name)
      if (!have) return status(404, 'NotFound', `kmeshnodeinfos.kmesh.net "${name}" not found`)
      if (req.headers['content-type'] !== 'application/merge-patch+json')
        return status(
          415,
          'UnsupportedMediaType',
          `this fake takes merge patches only, got ${req.headers['content-type']}`,
        )
      const patch = body as { spec?: Record<string, unknown> }
      return json(200, this.put({ ...have, spec: { ...have.spec, ...patch.spec } }, 'MODIFIED'))
    }
    if (method === 'DELETE' && name) {
      if (!this.objects.has(name)) return status(404, 'NotFound', `kmeshnodeinfos.kmesh.net "${name}" not found`)
      const obj = this.objects.get(name)
      this.remove(name)
      return json(200, obj)
    }
    return status(405, 'MethodNotAllowed', `${method} ${url.pathname}`)
  }
}
