/**
 * A fake Kubernetes API server on 127.0.0.1 that speaks the real list/watch wire protocol, for the collections a
 * test registers (pods cluster-wide, namespaces, KmeshNodeInfo by default), driven by the test:
 *
 *  - one resourceVersion counter for every object and list (like etcd's revision); a list answers with the current
 *    one in `metadata.resourceVersion`, every stored object carries the revision of its last write;
 *  - `?watch=true` answers 200 with a chunked stream of JSON lines `{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR,
 *    "object": ...}`: from `resourceVersion=R` it replays the events after R then streams live ones; without a
 *    resourceVersion (or "0") it starts with a synthetic ADDED per object, as the API server does;
 *  - `allowWatchBookmarks=true` watches get BOOKMARK events (an object with only kind, apiVersion and
 *    metadata.resourceVersion) when the test calls bookmark();
 *  - expire() compacts the history: open watches get an ERROR event with a 410 Expired Status and are closed (or,
 *    with tellWatches false, go on until they end), and a
 *    watch from an older resourceVersion is refused the same way (or with HTTP 410 when `expiredAs` is 'http'),
 *    which forces the client to list again;
 *  - `timeoutSeconds` ends a watch cleanly after that long;
 *  - `fieldSelector` (metadata.name, metadata.namespace, spec.nodeName; `=`, `==`, `!=`) and equality
 *    `labelSelector`s filter lists and watches; an unsupported field is refused with 400, as the API server does;
 *  - create (POST), merge patch (PATCH, application/merge-patch+json) and delete (DELETE) on `<collection>/<name>`;
 *  - failures on demand (`failNext`), dropped watch connections (dropWatches()), and a server that goes away
 *    (down(): connections refused) and comes back on the same port (up()).
 *
 * Every request is recorded. The kubeconfig file it writes points at it with a bearer token.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface KubeObj {
  apiVersion?: string
  kind?: string
  metadata: {
    name: string
    namespace?: string
    resourceVersion?: string
    uid?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
  }
  spec?: Record<string, unknown>
  status?: Record<string, unknown>
}

export interface CollectionSpec {
  /** The collection's URL path, e.g. /api/v1/pods or /apis/kmesh.net/v1alpha1/namespaces/kmesh-system/kmeshnodeinfos */
  path: string
  apiVersion: string
  kind: string
  /** Objects carry a namespace (the key is namespace/name) ... */
  namespaced: boolean
  /** ... which is fixed when the path names it (the key is then the name alone). */
  namespace?: string | undefined
}

export const PODS: CollectionSpec = { path: '/api/v1/pods', apiVersion: 'v1', kind: 'Pod', namespaced: true }
export const NAMESPACES: CollectionSpec = {
  path: '/api/v1/namespaces',
  apiVersion: 'v1',
  kind: 'Namespace',
  namespaced: false,
}
export const kmeshNodeInfos = (namespace = 'kmesh-system'): CollectionSpec => ({
  path: `/apis/kmesh.net/v1alpha1/namespaces/${namespace}/kmeshnodeinfos`,
  apiVersion: 'kmesh.net/v1alpha1',
  kind: 'KmeshNodeInfo',
  namespaced: true,
  namespace,
})

export interface RecordedRequest {
  method: string
  path: string
  query: URLSearchParams
  contentType: string | undefined
  body: unknown
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED'
interface Watcher {
  res: ServerResponse
  filter: (o: KubeObj) => boolean
  bookmarks: boolean
}

let uids = 0

const FIELDS: Record<string, (o: KubeObj) => string | undefined> = {
  'metadata.name': (o) => o.metadata.name,
  'metadata.namespace': (o) => o.metadata.namespace,
  'spec.nodeName': (o) => o.spec?.nodeName as string | undefined,
}

/** One collection: its objects, its event history, its open watches. */
export class FakeCollection {
  /** Stored objects by key (namespace/name, or the name when the namespace is fixed or there is none). */
  readonly objects = new Map<string, KubeObj>()
  /** Status codes to answer the next requests of a kind with, e.g. failNext.list = [500]. */
  readonly failNext: { list: number[]; watch: number[]; create: number[]; patch: number[]; delete: number[] } = {
    list: [],
    watch: [],
    create: [],
    patch: [],
    delete: [],
  }
  /** How a watch from a compacted resourceVersion is refused: an ERROR event on a 200 stream, or HTTP 410. */
  expiredAs: 'event' | 'http' = 'event'
  /** Watch requests answered 200 so far. */
  watchesOpened = 0
  /** While true, a new watch is answered 200 and then left silent for ever (a dead connection); see #watch. */
  hangWatches = false
  /** Watches left hanging so far. */
  watchesHung = 0
  readonly #history: { rv: number; type: EventType; object: KubeObj }[] = []
  #compactedRv = 0
  readonly #watches = new Set<Watcher>()
  #watchWaiters: Array<() => void> = []

  constructor(
    readonly spec: CollectionSpec,
    private readonly api: FakeKubeApi,
  ) {}

  keyOf(meta: { name: string; namespace?: string | undefined }): string {
    return this.spec.namespaced && !this.spec.namespace ? `${meta.namespace ?? 'default'}/${meta.name}` : meta.name
  }

  /** Watch requests open now. */
  get watchCount(): number {
    return this.#watches.size
  }

  /** Resolves once `n` watch requests have been opened in all (default: one more than now). */
  async waitForWatch(n = this.watchesOpened + 1, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.watchesOpened < n) {
      if (Date.now() > deadline) throw new Error(`${this.spec.path}: no watch number ${n} in ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50)
        this.#watchWaiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** Stores an object as the API server would (kind, apiVersion, a fresh resourceVersion) and tells the watchers. */
  put(obj: KubeObj, type?: 'ADDED' | 'MODIFIED'): KubeObj {
    const metadata = { ...obj.metadata }
    if (this.spec.namespace) metadata.namespace = this.spec.namespace
    else if (this.spec.namespaced) metadata.namespace ??= 'default'
    else delete metadata.namespace
    const key = this.keyOf(metadata)
    const had = this.objects.get(key)
    metadata.uid ??= had?.metadata.uid ?? `uid-${key.replace(/\//g, '-')}-${++uids}`
    metadata.resourceVersion = String(this.api.nextRv())
    const stored: KubeObj = { apiVersion: this.spec.apiVersion, kind: this.spec.kind, ...obj, metadata }
    this.objects.set(key, stored)
    this.#record(type ?? (had ? 'MODIFIED' : 'ADDED'), stored)
    return stored
  }

  /** Merges labels into a stored object (null removes one): a MODIFIED event. */
  label(key: string, labels: Record<string, string | null>): KubeObj {
    const have = this.objects.get(key)
    if (!have) throw new Error(`${this.spec.path}: no object ${key}`)
    const merged: Record<string, string> = { ...have.metadata.labels }
    for (const [k, v] of Object.entries(labels)) {
      if (v === null) delete merged[k]
      else merged[k] = v
    }
    return this.put({ ...have, metadata: { ...have.metadata, labels: merged } })
  }

  /** Deletes an object: a DELETED event carrying its last state with a fresh resourceVersion. */
  remove(key: string): KubeObj | undefined {
    const obj = this.objects.get(key)
    if (!obj) return undefined
    this.objects.delete(key)
    const gone = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(this.api.nextRv()) } }
    this.#record('DELETED', gone)
    return gone
  }

  /** Writes a raw event line to every open watch (unfiltered, not recorded); ERROR ends the watches after it. */
  send(type: string, object: unknown): void {
    for (const w of this.#watches) write(w.res, type, object)
    if (type === 'ERROR') this.dropWatches()
  }

  /** A BOOKMARK at the current resourceVersion to every watch that allowed bookmarks; returns that version. */
  bookmark(): string {
    const rv = String(this.api.currentRv())
    for (const w of this.#watches)
      if (w.bookmarks)
        write(w.res, 'BOOKMARK', {
          kind: this.spec.kind,
          apiVersion: this.spec.apiVersion,
          metadata: { resourceVersion: rv },
        })
    return rv
  }

  /**
   * Compacts the history up to now: every resourceVersion handed out so far is too old. Open watches get the
   * API server's ERROR event (410 Expired) and are closed, so their clients must list again.
   */
  expire({ tellWatches = true }: { tellWatches?: boolean } = {}): void {
    this.#compactedRv = this.api.currentRv()
    this.#history.length = 0
    // Without telling: the open watches go on; the next watch resumed from an older version is refused.
    if (tellWatches) this.send('ERROR', expiredStatus(this.#compactedRv))
  }

  /** Ends every open watch the way an API server does when a watch times out (a clean end of the stream). */
  dropWatches(): void {
    for (const w of this.#watches) w.res.end()
    this.#watches.clear()
  }

  destroyWatches(): void {
    for (const w of this.#watches) w.res.destroy()
    this.#watches.clear()
  }

  #record(type: EventType, object: KubeObj): void {
    const rv = Number(object.metadata.resourceVersion)
    this.#history.push({ rv, type, object })
    for (const w of this.#watches) if (w.filter(object)) write(w.res, type, object)
  }

  /** Serves a request on this collection; `name` is set for `<path>/<name>`. */
  async handle(
    method: string,
    name: string | undefined,
    url: URL,
    req: IncomingMessage,
    body: unknown,
    res: ServerResponse,
  ): Promise<void> {
    const q = url.searchParams
    if (method === 'GET' && !name) {
      let filter: (o: KubeObj) => boolean
      try {
        filter = selectorFilter(q.get('fieldSelector'), q.get('labelSelector'))
      } catch (err) {
        return status(res, 400, 'BadRequest', (err as Error).message)
      }
      return q.get('watch') === 'true' || q.get('watch') === '1' ? this.#watch(q, filter, res) : this.#list(filter, res)
    }
    if (method === 'GET' && name) {
      const obj = this.objects.get(this.keyOf({ name }))
      return obj ? json(res, 200, obj) : status(res, 404, 'NotFound', `${this.#what(name)} not found`)
    }
    if (method === 'POST' && !name) {
      const fail = this.failNext.create.shift()
      if (fail) return status(res, fail, 'InternalError', 'injected create failure')
      const obj = body as KubeObj
      if (this.objects.has(this.keyOf(obj.metadata)))
        return status(res, 409, 'AlreadyExists', `${this.#what(obj.metadata.name)} already exists`)
      return json(res, 201, this.put(obj, 'ADDED'))
    }
    if (method === 'PATCH' && name) {
      const fail = this.failNext.patch.shift()
      if (fail) return status(res, fail, 'InternalError', 'injected patch failure')
      const have = this.objects.get(this.keyOf({ name }))
      if (!have) return status(res, 404, 'NotFound', `${this.#what(name)} not found`)
      if (req.headers['content-type'] !== 'application/merge-patch+json')
        return status(
          res,
          415,
          'UnsupportedMediaType',
          `this fake takes merge patches only, got ${req.headers['content-type']}`,
        )
      return json(res, 200, this.put(mergePatch(have, body) as KubeObj, 'MODIFIED'))
    }
    if (method === 'DELETE' && name) {
      const fail = this.failNext.delete.shift()
      if (fail) return status(res, fail, 'InternalError', 'injected delete failure')
      const have = this.objects.get(this.keyOf({ name }))
      if (!have) return status(res, 404, 'NotFound', `${this.#what(name)} not found`)
      this.remove(this.keyOf({ name }))
      return json(res, 200, have)
    }
    return status(res, 405, 'MethodNotAllowed', `${method} ${url.pathname}`)
  }

  #what(name: string): string {
    return `${this.spec.kind.toLowerCase()}s "${name}"`
  }

  #list(filter: (o: KubeObj) => boolean, res: ServerResponse) {
    const fail = this.failNext.list.shift()
    if (fail) return status(res, fail, 'InternalError', 'injected list failure')
    json(res, 200, {
      apiVersion: this.spec.apiVersion,
      kind: `${this.spec.kind}List`,
      metadata: { resourceVersion: String(this.api.currentRv()) },
      items: [...this.objects.values()].filter(filter),
    })
  }

  #watch(q: URLSearchParams, filter: (o: KubeObj) => boolean, res: ServerResponse) {
    const fail = this.failNext.watch.shift()
    if (fail) return status(res, fail, 'InternalError', 'injected watch failure')
    if (this.hangWatches) {
      // A silently dead connection: the answer starts, then nothing ever comes (no event, no end, timeoutSeconds
      // ignored); only the client can end it.
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' })
      res.flushHeaders()
      this.watchesHung++
      return
    }
    const from = q.get('resourceVersion')
    const fresh = !from || from === '0'
    const fromRv = Number(from)
    if (!fresh && (!Number.isInteger(fromRv) || fromRv < this.#compactedRv)) {
      if (this.expiredAs === 'http' || !Number.isInteger(fromRv))
        return status(res, 410, 'Expired', `too old resource version: ${from} (${this.#compactedRv})`)
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' })
      write(res, 'ERROR', expiredStatus(this.#compactedRv, from!))
      res.end()
      return
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' })
    res.flushHeaders()
    if (fresh) for (const o of this.objects.values()) if (filter(o)) write(res, 'ADDED', o)
    if (!fresh) for (const e of this.#history) if (e.rv > fromRv && filter(e.object)) write(res, e.type, e.object)
    const w: Watcher = { res, filter, bookmarks: q.get('allowWatchBookmarks') === 'true' }
    this.#watches.add(w)
    this.watchesOpened++
    // timeoutSeconds: the server ends the watch cleanly then, as the API server does.
    const timeoutSeconds = Number(q.get('timeoutSeconds') ?? 0)
    const timer = timeoutSeconds > 0 ? setTimeout(() => res.end(), timeoutSeconds * 1000).unref() : undefined
    res.on('close', () => {
      clearTimeout(timer)
      this.#watches.delete(w)
    })
    for (const wake of this.#watchWaiters.splice(0)) wake()
  }
}

export class FakeKubeApi {
  readonly requests: RecordedRequest[] = []
  readonly token = 'test-token-1234'
  readonly collections = new Map<string, FakeCollection>()
  url = ''
  kubeconfig = ''
  #rv = 100
  #port = 0
  #server: Server
  #sockets = new Set<Socket>()
  #dir = mkdtempSync(join(tmpdir(), 'kmesh-fake-kube-'))

  private constructor(specs: CollectionSpec[]) {
    for (const s of specs) this.collections.set(s.path, new FakeCollection(s, this))
    this.#server = this.#newServer()
  }

  /** Starts the server with these collections (default: pods, namespaces and KmeshNodeInfo in kmesh-system). */
  static async start(specs: CollectionSpec[] = [PODS, NAMESPACES, kmeshNodeInfos()]): Promise<FakeKubeApi> {
    const api = new FakeKubeApi(specs)
    await new Promise<void>((resolve) => api.#server.listen(0, '127.0.0.1', resolve))
    api.#port = (api.#server.address() as AddressInfo).port
    api.url = `http://127.0.0.1:${api.#port}`
    api.kubeconfig = join(api.#dir, 'kubeconfig.yaml')
    writeFileSync(api.kubeconfig, kubeconfigYaml(api.url, api.token), { mode: 0o600 })
    return api
  }

  collection(path: string): FakeCollection {
    const c = this.collections.get(path)
    if (!c) throw new Error(`the fake API serves no collection ${path}`)
    return c
  }
  get pods(): FakeCollection {
    return this.collection(PODS.path)
  }
  get namespaces(): FakeCollection {
    return this.collection(NAMESPACES.path)
  }

  nextRv(): number {
    return ++this.#rv
  }
  currentRv(): number {
    return this.#rv
  }

  /** The API server goes away: open connections are cut and new ones refused until up(). */
  async down(): Promise<void> {
    for (const c of this.collections.values()) c.destroyWatches()
    for (const s of this.#sockets) s.destroy()
    await new Promise((resolve) => this.#server.close(resolve))
  }

  /** ...and comes back on the same port. */
  async up(): Promise<void> {
    this.#server = this.#newServer()
    await new Promise<void>((resolve) => this.#server.listen(this.#port, '127.0.0.1', resolve))
  }

  async close(): Promise<void> {
    for (const c of this.collections.values()) c.destroyWatches()
    for (const s of this.#sockets) s.destroy()
    if (this.#server.listening) await new Promise((resolve) => this.#server.close(resolve))
    rmSync(this.#dir, { recursive: true, force: true })
  }

  #newServer(): Server {
    const server = createServer((req, res) => {
      void this.#handle(req, res)
    })
    server.on('connection', (s) => {
      this.#sockets.add(s)
      s.on('close', () => this.#sockets.delete(s))
    })
    return server
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const url = new URL(req.url ?? '/', this.url)
    const text = Buffer.concat(chunks).toString('utf8')
    let body: unknown
    try {
      body = text ? JSON.parse(text) : undefined
    } catch {
      return status(res, 400, 'BadRequest', 'the body is not JSON')
    }
    const method = req.method ?? 'GET'
    this.requests.push({
      method,
      path: url.pathname,
      query: url.searchParams,
      contentType: req.headers['content-type'],
      body,
    })
    if (req.headers.authorization !== `Bearer ${this.token}`) return status(res, 401, 'Unauthorized', 'bad token')
    for (const c of this.collections.values()) {
      if (url.pathname === c.spec.path) return c.handle(method, undefined, url, req, body, res)
      const rest = url.pathname.startsWith(`${c.spec.path}/`) ? url.pathname.slice(c.spec.path.length + 1) : ''
      if (rest && !rest.includes('/')) return c.handle(method, rest, url, req, body, res)
    }
    return status(res, 404, 'NotFound', `the server could not find the requested resource ${url.pathname}`)
  }
}

function write(res: ServerResponse, type: string, object: unknown): void {
  if (!res.writableEnded) res.write(`${JSON.stringify({ type, object })}\n`)
}

function json(res: ServerResponse, code: number, obj: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' })
  res.end(JSON.stringify(obj))
}

function status(res: ServerResponse, code: number, reason: string, message: string): void {
  json(res, code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', code, reason, message })
}

function expiredStatus(compacted: number, from?: string): Record<string, unknown> {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `too old resource version: ${from ?? '(watching)'} (${compacted})`,
    reason: 'Expired',
    code: 410,
  }
}

/** A JSON merge patch (RFC 7386): objects merge, null removes, anything else replaces. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch
  const out: Record<string, unknown> =
    target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {}
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else out[k] = mergePatch(out[k], v)
  }
  return out
}

/** Field and label selectors as the API server reads them (equality terms only, comma = and). */
function selectorFilter(fieldSelector: string | null, labelSelector: string | null): (o: KubeObj) => boolean {
  const terms: ((o: KubeObj) => boolean)[] = []
  for (const term of (fieldSelector ?? '').split(',').filter(Boolean)) {
    const m = /^([^!=]+)(!=|==|=)(.*)$/.exec(term)
    if (!m) throw new Error(`invalid field selector term "${term}"`)
    const get = FIELDS[m[1]!]
    if (!get)
      throw new Error(
        `"${m[1]}" is not a known field selector: only "metadata.name", "metadata.namespace", "spec.nodeName"`,
      )
    const want = m[3]!
    terms.push(m[2] === '!=' ? (o) => (get(o) ?? '') !== want : (o) => (get(o) ?? '') === want)
  }
  for (const term of (labelSelector ?? '').split(',').filter(Boolean)) {
    const m = /^([^!=]+)(!=|==|=)(.*)$/.exec(term)
    if (m) {
      const [, k, op, v] = m
      terms.push(op === '!=' ? (o) => o.metadata.labels?.[k!] !== v : (o) => o.metadata.labels?.[k!] === v)
    } else if (term.startsWith('!')) terms.push((o) => o.metadata.labels?.[term.slice(1)] === undefined)
    else terms.push((o) => o.metadata.labels?.[term] !== undefined)
  }
  return (o) => terms.every((f) => f(o))
}

function kubeconfigYaml(server: string, token: string): string {
  return `${[
    'apiVersion: v1',
    'kind: Config',
    'current-context: fake',
    'clusters:',
    '- name: fake',
    '  cluster:',
    `    server: ${server}`,
    '    insecure-skip-tls-verify: true',
    'users:',
    '- name: fake',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: fake',
    '  context:',
    '    cluster: fake',
    '    user: fake',
  ].join('\n')}\n`
}
