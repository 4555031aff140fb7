// An in-process delta ADS server on 127.0.0.1 for tests (ours and our users'). It behaves like istiod where a
// client can tell (docs/reference/istio-workload-api.md §2.3): it demands a node id on the first request, answers a
// wildcard first request with a full push whose removals are `initial_resource_versions − existing`, answers
// on-demand names with the resource or a removal, pushes deltas when the script changes the world, and does not
// answer NACKs. Everything a client sends is recorded. The script can also push raw (even invalid) responses,
// end streams with any status, and send a real HTTP/2 GOAWAY.
import * as grpc from '@grpc/grpc-js'
import { encodeAddress, encodeAuthorization } from '../encode.js'
import type { AddressInit, AuthorizationInit } from '../encode.js'
import { policyKey, serviceKey } from '../names.js'
import { ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL } from '../types.js'
import type { Address, Authorization } from '../types.js'
import { DELTA_ADS_METHOD, decodeDeltaRequest, encodeDeltaResponse } from '../wire.js'
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse, RpcStatus, XdsNode } from '../wire.js'

export interface TestXdsServerOptions {
  /** answer first and spontaneous requests from the world, as istiod does (default true) */
  autoRespond?: boolean
  /** end a stream whose first request has no node id with INVALID_ARGUMENT, as istiod does (default true) */
  requireNodeId?: boolean
  /** grpc-js max connection age: a GOAWAY every ~N ms (±10%), like istiod's MaxConnectionAge (default off) */
  maxConnectionAgeMs?: number
  /** after that GOAWAY, close the connection this long later (default: never) */
  maxConnectionAgeGraceMs?: number
  /** serve TLS with this certificate (PEM) instead of plaintext */
  tls?: { certChain: Buffer; privateKey: Buffer }
}

/** One resource of a raw push: anything, including invalid payloads. */
export interface RawResource {
  name: string
  /** resource bytes; undefined sends a Resource without payload */
  payload?: Uint8Array
  /** Any.type_url of the payload, default the response's type */
  payloadTypeUrl?: string
  version?: string
  aliases?: string[]
}

export interface RecordedRequest {
  streamId: number
  at: number
  request: DeltaDiscoveryRequest
}

/** An ACK (no error_detail) or NACK (error_detail present) received from a client. */
export interface RecordedReply {
  streamId: number
  at: number
  typeUrl: string
  nonce: string
  ack: boolean
  errorDetail?: RpcStatus | undefined
}

export interface RecordedResponse {
  streamId: number
  /** performance.now() when the encoded response was handed to the stream */
  at: number
  /** size of the encoded response */
  bytes: number
  typeUrl: string
  nonce: string
  names: string[]
  removed: string[]
}

export interface StreamRecord {
  id: number
  openedAt: number
  endedAt?: number | undefined
  /** gRPC metadata the client sent (e.g. authorization: Bearer …) */
  metadata: Record<string, string>
  node?: XdsNode | undefined
  /** initial_resource_versions of the first request per type on this stream */
  initialResourceVersions: Partial<Record<string, Record<string, string>>>
}

interface StoredResource {
  payload: Uint8Array
  aliases: string[]
  version: string
}

interface TypeSub {
  wildcard: boolean
  names: Set<string>
  /** names this stream was sent and not told removed (for removal pushes) */
  sent: Set<string>
}

interface LiveStream {
  record: StreamRecord
  call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, Buffer>
  subs: Map<string, TypeSub>
  gotFirst: boolean
}

const TYPES = [ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL] as const

function addressName(a: AddressInit | Address): string {
  if (a.workload) return a.workload.uid ?? ''
  return serviceKey(a.service?.namespace ?? '', a.service?.hostname ?? '')
}

export class TestXdsServer {
  /** `127.0.0.1:<port>`, for XdsClientOptions.address */
  readonly address: string
  readonly requests: RecordedRequest[] = []
  readonly replies: RecordedReply[] = []
  readonly responses: RecordedResponse[] = []
  readonly streams: StreamRecord[] = []

  private readonly world = new Map<string, Map<string, StoredResource>>(TYPES.map((t) => [t, new Map()]))
  private readonly live = new Set<LiveStream>()
  private nonceSeq = 0
  private streamSeq = 0
  private readonly waiters = new Set<() => void>()

  private constructor(
    private readonly server: grpc.Server,
    readonly port: number,
    private readonly opts: Required<Pick<TestXdsServerOptions, 'autoRespond' | 'requireNodeId'>>,
  ) {
    this.address = `127.0.0.1:${port}`
  }

  /** Start on 127.0.0.1 with an ephemeral port. */
  static async start(options: TestXdsServerOptions = {}): Promise<TestXdsServer> {
    const chOpts: grpc.ServerOptions = { 'grpc.max_receive_message_length': 64 * 1024 * 1024 }
    if (options.maxConnectionAgeMs !== undefined) chOpts['grpc.max_connection_age_ms'] = options.maxConnectionAgeMs
    if (options.maxConnectionAgeGraceMs !== undefined) {
      chOpts['grpc.max_connection_age_grace_ms'] = options.maxConnectionAgeGraceMs
    }
    const server = new grpc.Server(chOpts)
    const port = await new Promise<number>((resolve, reject) => {
      const creds = options.tls
        ? grpc.ServerCredentials.createSsl(null, [
            { cert_chain: options.tls.certChain, private_key: options.tls.privateKey },
          ])
        : grpc.ServerCredentials.createInsecure()
      server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p)))
    })
    const s = new TestXdsServer(server, port, {
      autoRespond: options.autoRespond ?? true,
      requireNodeId: options.requireNodeId ?? true,
    })
    server.addService(
      {
        DeltaAggregatedResources: {
          path: DELTA_ADS_METHOD,
          requestStream: true,
          responseStream: true,
          requestDeserialize: decodeDeltaRequest,
          requestSerialize: () => Buffer.alloc(0),
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      { DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, Buffer>) => s.onStream(call) },
    )
    return s
  }

  // ---- the world (what istiod would know) ----

  /** Add or replace Address resources and push them to every stream that watches them. Returns the nonces. */
  upsertAddresses(...addresses: (AddressInit | Address)[]): string[] {
    return this.upsertAddressList(addresses)
  }

  /** upsertAddresses with an array: a list too long to spread as arguments (a million workloads) in one push. */
  upsertAddressList(addresses: readonly (AddressInit | Address)[]): string[] {
    return this.upsert(
      ADDRESS_TYPE_URL,
      addresses.map((a) => [addressName(a), encodeAddress(a)]),
    )
  }

  /** Add or replace Authorization resources and push them. Returns the nonces. */
  upsertAuthorizations(...policies: (AuthorizationInit | Authorization)[]): string[] {
    return this.upsert(
      AUTHORIZATION_TYPE_URL,
      policies.map((p) => [policyKey(p.namespace ?? '', p.name ?? ''), encodeAuthorization(p)]),
    )
  }

  /** Delete names from the world and push the removals to every stream that was sent them. Returns the nonces. */
  remove(typeUrl: string, names: readonly string[]): string[] {
    const w = this.typeWorld(typeUrl)
    for (const n of names) w.delete(n)
    const nonces: string[] = []
    for (const ls of this.live) {
      const sub = ls.subs.get(typeUrl)
      if (!sub) continue
      const removed = names.filter((n) => sub.sent.has(n))
      if (removed.length > 0) nonces.push(this.respond(ls, typeUrl, [], removed))
    }
    return nonces
  }

  /** Change the world without pushing (e.g. while no client is connected). */
  setQuietly(
    typeUrl: string,
    resources: readonly (AddressInit | AuthorizationInit)[],
    removeNames: readonly string[] = [],
  ): void {
    const w = this.typeWorld(typeUrl)
    for (const n of removeNames) w.delete(n)
    for (const r of resources) {
      if (typeUrl === ADDRESS_TYPE_URL) {
        const a = r as AddressInit
        w.set(addressName(a), { payload: encodeAddress(a), aliases: [], version: '' })
      } else {
        const p = r as AuthorizationInit
        w.set(policyKey(p.namespace ?? '', p.name ?? ''), { payload: encodeAuthorization(p), aliases: [], version: '' })
      }
    }
  }

  /** Names in the world for a type. */
  names(typeUrl: string): string[] {
    return [...this.typeWorld(typeUrl).keys()]
  }

  // ---- raw control ----

  /**
   * Send a response exactly as given to every live stream (or one stream), bypassing the world: duplicates,
   * undecodable payloads, wrong types. Returns the nonces.
   */
  pushRaw(
    typeUrl: string,
    resources: readonly RawResource[],
    removed: readonly string[] = [],
    streamId?: number,
  ): string[] {
    const nonces: string[] = []
    for (const ls of this.live) {
      if (streamId !== undefined && ls.record.id !== streamId) continue
      const nonce = this.nextNonce()
      const res: Partial<DeltaDiscoveryResponse> & { typeUrl: string; nonce: string } = {
        typeUrl,
        nonce,
        systemVersionInfo: `raw-${nonce}`,
        resources: resources.map((r) => ({
          name: r.name,
          version: r.version ?? '',
          aliases: r.aliases ?? [],
          resource: r.payload ? { typeUrl: r.payloadTypeUrl ?? typeUrl, value: r.payload } : undefined,
        })),
        removedResources: [...removed],
      }
      this.write(
        ls,
        res,
        resources.map((r) => r.name),
        [...removed],
      )
      nonces.push(nonce)
    }
    return nonces
  }

  /** Send bytes as a response message to every live stream, as they are (e.g. a message that does not parse). */
  pushBytes(bytes: Uint8Array): void {
    for (const ls of this.live) ls.call.write(Buffer.from(bytes))
  }

  /** End every live stream with a status, e.g. UNAVAILABLE as a restarting istiod would. */
  endStreams(code: grpc.status = grpc.status.UNAVAILABLE, details = 'test server ended the stream'): void {
    for (const ls of [...this.live]) {
      if (code === grpc.status.OK) ls.call.end()
      else ls.call.emit('error', { code, details })
      this.finish(ls)
    }
  }

  /**
   * Send a real HTTP/2 GOAWAY on every connection (grpc-js Server.drain), as istiod's MaxConnectionAge does;
   * connections still open `graceMs` later are destroyed. The listener stays open for the reconnect.
   */
  goaway(graceMs = 50): void {
    this.server.drain(this.address, graceMs)
  }

  // ---- what clients sent ----

  get acks(): RecordedReply[] {
    return this.replies.filter((r) => r.ack)
  }

  get nacks(): RecordedReply[] {
    return this.replies.filter((r) => !r.ack)
  }

  get liveStreamCount(): number {
    return this.live.size
  }

  /** The reply (ACK or NACK) a client sent for a nonce, waiting for it. */
  reply(nonce: string, timeoutMs = 5000): Promise<RecordedReply> {
    return this.waitFor(() => this.replies.find((r) => r.nonce === nonce), timeoutMs, `reply to nonce ${nonce}`)
  }

  /** Resolve with the first non-undefined value of `probe`, re-checked whenever a client sends something. */
  waitFor<T>(probe: () => T | undefined | false, timeoutMs = 5000, what = 'condition'): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = (): boolean => {
        const v = probe()
        if (v === undefined || v === false) return false
        this.waiters.delete(check_)
        clearTimeout(timer)
        resolve(v)
        return true
      }
      const check_ = (): void => void check()
      const timer = setTimeout(() => {
        this.waiters.delete(check_)
        reject(new Error(`TestXdsServer: timed out after ${timeoutMs} ms waiting for ${what}`))
      }, timeoutMs)
      if (!check()) this.waiters.add(check_)
    })
  }

  /** Stop now: close every stream and the listener. */
  async close(): Promise<void> {
    for (const ls of [...this.live]) this.finish(ls)
    this.server.forceShutdown()
    this.notify()
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  // ---- internals ----

  private typeWorld(typeUrl: string): Map<string, StoredResource> {
    let w = this.world.get(typeUrl)
    if (!w) {
      w = new Map()
      this.world.set(typeUrl, w)
    }
    return w
  }

  private upsert(typeUrl: string, entries: [string, Uint8Array][]): string[] {
    const w = this.typeWorld(typeUrl)
    for (const [name, payload] of entries) w.set(name, { payload, aliases: [], version: '' })
    const nonces: string[] = []
    for (const ls of this.live) {
      const sub = ls.subs.get(typeUrl)
      if (!sub) continue
      const names = entries.map(([n]) => n).filter((n) => sub.wildcard || sub.names.has(n))
      if (names.length > 0) nonces.push(this.respond(ls, typeUrl, names, []))
    }
    return nonces
  }

  private nextNonce(): string {
    return `n${++this.nonceSeq}`
  }

  private notify(): void {
    for (const w of [...this.waiters]) w()
  }

  private respond(ls: LiveStream, typeUrl: string, names: readonly string[], removed: readonly string[]): string {
    const w = this.typeWorld(typeUrl)
    const nonce = this.nextNonce()
    const resources = names.flatMap((name) => {
      const r = w.get(name)
      return r ? [{ name, version: r.version, aliases: r.aliases, resource: { typeUrl, value: r.payload } }] : []
    })
    const sub = ls.subs.get(typeUrl)
    for (const r of resources) sub?.sent.add(r.name)
    for (const n of removed) sub?.sent.delete(n)
    this.write(
      ls,
      { typeUrl, nonce, systemVersionInfo: nonce, resources, removedResources: [...removed] },
      resources.map((r) => r.name),
      [...removed],
    )
    return nonce
  }

  private write(
    ls: LiveStream,
    res: Partial<DeltaDiscoveryResponse> & { typeUrl: string; nonce: string },
    names: string[],
    removed: string[],
  ): void {
    const encoded = encodeDeltaResponse(res)
    this.responses.push({
      streamId: ls.record.id,
      at: performance.now(),
      bytes: encoded.length,
      typeUrl: res.typeUrl,
      nonce: res.nonce,
      names,
      removed,
    })
    ls.call.write(encoded)
  }

  private finish(ls: LiveStream): void {
    if (!this.live.delete(ls)) return
    ls.record.endedAt = performance.now()
  }

  private onStream(call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, Buffer>): void {
    const metadata: Record<string, string> = {}
    for (const [k, v] of Object.entries(call.metadata.getMap())) metadata[k] = String(v)
    const record: StreamRecord = {
      id: ++this.streamSeq,
      openedAt: performance.now(),
      metadata,
      initialResourceVersions: {},
    }
    this.streams.push(record)
    const ls: LiveStream = { record, call, subs: new Map(), gotFirst: false }
    this.live.add(ls)
    call.on('data', (req: DeltaDiscoveryRequest) => this.onRequest(ls, req))
    call.on('error', () => this.finish(ls))
    call.on('cancelled', () => this.finish(ls))
    call.on('end', () => {
      this.finish(ls)
      call.end()
    })
    call.on('close', () => this.finish(ls))
    this.notify()
  }

  private onRequest(ls: LiveStream, req: DeltaDiscoveryRequest): void {
    this.requests.push({ streamId: ls.record.id, at: performance.now(), request: req })
    try {
      this.handleRequest(ls, req)
    } finally {
      this.notify()
    }
  }

  private handleRequest(ls: LiveStream, req: DeltaDiscoveryRequest): void {
    if (!ls.gotFirst) {
      ls.gotFirst = true
      if (req.node) ls.record.node = req.node
      if (this.opts.requireNodeId && !req.node?.id) {
        ls.call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'node is required on the first request' })
        this.finish(ls)
        return
      }
    }
    const typeUrl = req.typeUrl
    if (req.responseNonce !== '') {
      // istiod: error_detail present means NACK; a NACK gets no answer (reference §2.3)
      this.replies.push({
        streamId: ls.record.id,
        at: performance.now(),
        typeUrl,
        nonce: req.responseNonce,
        ack: !req.errorDetail,
        errorDetail: req.errorDetail,
      })
      if (req.resourceNamesSubscribe.length === 0 && req.resourceNamesUnsubscribe.length === 0) return
    }
    let sub = ls.subs.get(typeUrl)
    const first = !sub
    const subscribe = req.resourceNamesSubscribe
    const unsubscribe = req.resourceNamesUnsubscribe
    if (!sub) {
      ls.record.initialResourceVersions[typeUrl] = { ...req.initialResourceVersions }
      const legacyWildcard = subscribe.length === 0 && unsubscribe.length === 0
      sub = { wildcard: legacyWildcard, names: new Set(), sent: new Set() }
      ls.subs.set(typeUrl, sub)
    }
    const newNames: string[] = []
    for (const n of subscribe) {
      if (n === '*') sub.wildcard = true
      else if (!sub.names.has(n)) {
        sub.names.add(n)
        newNames.push(n)
      } else newNames.push(n) // a re-subscribed name must be re-sent (reference §2.2)
    }
    for (const n of unsubscribe) {
      if (n === '*') sub.wildcard = false
      else sub.names.delete(n)
    }
    if (!this.opts.autoRespond) return
    const w = this.typeWorld(typeUrl)
    if (first) {
      // istiod full push: everything watched; removed = (initial + subscribed) − existing (reference §2.3)
      const names = sub.wildcard ? [...w.keys()] : [...sub.names].filter((n) => w.has(n))
      const asked = new Set<string>([...Object.keys(req.initialResourceVersions), ...sub.names])
      const removed = [...asked].filter((n) => !w.has(n))
      if (sub.wildcard || names.length > 0 || removed.length > 0) this.respond(ls, typeUrl, names, removed)
      return
    }
    const wildcardTurnedOn = subscribe.includes('*')
    if (wildcardTurnedOn) {
      this.respond(
        ls,
        typeUrl,
        [...w.keys()],
        newNames.filter((n) => !w.has(n)),
      )
    } else if (newNames.length > 0) {
      this.respond(
        ls,
        typeUrl,
        newNames.filter((n) => w.has(n)),
        newNames.filter((n) => !w.has(n)),
      )
    }
  }
}

/** Start a testing server on 127.0.0.1 with an ephemeral port. */
export function startTestXdsServer(options?: TestXdsServerOptions): Promise<TestXdsServer> {
  return TestXdsServer.start(options)
}

export { ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL }
export { status as GrpcStatus } from '@grpc/grpc-js'
