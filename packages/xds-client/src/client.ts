// The delta ADS client: one bidirectional DeltaAggregatedResources stream to istiod carrying the Address and
// Authorization types (docs/reference/istio-workload-api.md §2, §3.1–3.2). It decodes and validates each resource,
// hands the consumer one change batch per response, and ACKs or NACKs after the consumer has applied it. It
// remembers which names it holds so a reconnect can tell istiod (initial_resource_versions), and istiod answers
// with what was deleted meanwhile.
import { readFile } from 'node:fs/promises'
import * as grpc from '@grpc/grpc-js'
import { Backoff } from './backoff.js'
import type { XdsClientEvent } from './events.js'
import { resolveOptions } from './options.js'
import type { ResolvedOptions, XdsClientOptions } from './options.js'
import { buildBatchInSlices, isWatchedType, nackMessage } from './response.js'
import type { BuiltBatch, ChangeBatch, Rejection, ResourceKind } from './response.js'
import { ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL } from './types.js'
import type { Address, TypeUrl } from './types.js'
import { DELTA_ADS_METHOD, decodeDeltaResponseSteps, encodeDeltaRequest, encodeInitialVersionsSteps } from './wire.js'
import { WireFormatError } from './wire-reader.js'
import { type AdsStatus, Http2AdsCall } from './ads-http2.js'
import { drive, nextTurn } from './slices.js'
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse } from './wire.js'

/** HTTP/2 stream and connection receive window of the client's channel (overridable in channelOptions). */
const FLOW_CONTROL_WINDOW = 16 * 1024 * 1024

/** Resources of a response decoded between two turns of the event loop. */
const DECODE_SLICE = 5000
/** A response past this size is decoded from the next turn of the event loop on (handleMessage). */
const BIG_MESSAGE = 1024 * 1024
/** Held names encoded per slice of a resume's initial requests. */
const VERSIONS_SLICE = 10000

/** google.rpc.Code INVALID_ARGUMENT, the code of our NACKs. */
const INVALID_ARGUMENT = 3

interface Held {
  version: string
  kind: ResourceKind
  /** payload digest of the copy the consumer applied (with skipUnchanged; undefined: unknown, decode again) */
  digest?: number | undefined
}

/** Per-type subscription and the names the consumer holds. */
class TypeState {
  readonly names = new Set<string>()
  readonly held = new Map<string, Held>()
  ready = false
  constructor(
    readonly typeUrl: TypeUrl,
    readonly wildcard: boolean,
    names: readonly string[],
  ) {
    for (const n of names) this.names.add(n)
  }
}

/** A request as the stream sends it; one already encoded (the initial ones of a resume) goes as it is. */
const encodeRequest = (req: Partial<DeltaDiscoveryRequest> | Buffer): Buffer =>
  Buffer.isBuffer(req) ? req : encodeDeltaRequest({ typeUrl: '', ...req })

function* versionsOf(held: Map<string, Held>): Generator<readonly [string, string]> {
  for (const [name, h] of held) yield [name, h.version]
}

interface StreamRun {
  id: number
  /** the stream, as either transport gives it: requests written (or already encoded), and a way to end it */
  call: { write(req: Partial<DeltaDiscoveryRequest> | Buffer): void; cancel(): void }
  /** grpc-js's channel of the stream (none over the http2 transport, whose connection ends with the stream) */
  channel: grpc.Client | undefined
  /** responses received on this stream */
  responses: number
  ended: boolean
  /** types whose wildcard is still in the legacy (empty first request) form on this stream */
  legacyWildcard: Set<TypeUrl>
  /** set when a response could not be parsed: the stream's outcome */
  parseFailure?: { code: number; details: string }
  /**
   * Requests made while the initial ones are still being encoded (a resume of a big mesh): sent after them, in
   * order, so a type's first request on the stream is always its initial one. Undefined once they are sent.
   */
  waiting?: Array<Partial<DeltaDiscoveryRequest> & { typeUrl: string }>
}

interface StreamOutcome {
  code: number
  details: string
  healthy: boolean
}

/**
 * A close after which the backoff starts again at its first step (reference §3.1): istiod's periodic GOAWAY
 * (MaxConnectionAge), or UNAVAILABLE/CANCELLED/UNKNOWN/DEADLINE_EXCEEDED/OK on a stream that had delivered
 * responses. Anything else (refused connection, auth failure, a stream that never answered) doubles it.
 */
export function isBenignClose(code: number, details: string, healthy: boolean): boolean {
  if (/goaway|transport is closing|max(imum)?[ _-]?connection[ _-]?age/i.test(details)) return true
  if (!healthy) return false
  return (
    code === grpc.status.OK ||
    code === grpc.status.UNAVAILABLE ||
    code === grpc.status.CANCELLED ||
    code === grpc.status.UNKNOWN ||
    code === grpc.status.DEADLINE_EXCEEDED
  )
}

export class XdsClient<A = Address> {
  private readonly opts: ResolvedOptions<A>
  private readonly states = new Map<TypeUrl, TypeState>()
  private readonly backoff: Backoff
  private stream: StreamRun | undefined
  private streamSeq = 0
  private attempts = 0
  private closed = false
  private processing: Promise<void> = Promise.resolve()
  private sleepTimer: NodeJS.Timeout | undefined
  private wake: (() => void) | undefined
  private readonly loop: Promise<void>
  private readonly readyPromise: Promise<void>
  private resolveReady!: () => void
  private rejectReady!: (e: Error) => void
  private readonly onAbort = (): void => void this.close()

  constructor(options: XdsClientOptions<A>) {
    this.opts = resolveOptions(options)
    const { addresses, authorizations } = this.opts
    if (addresses)
      this.states.set(ADDRESS_TYPE_URL, new TypeState(ADDRESS_TYPE_URL, addresses.wildcard, addresses.names))
    if (authorizations) {
      this.states.set(
        AUTHORIZATION_TYPE_URL,
        new TypeState(AUTHORIZATION_TYPE_URL, authorizations.wildcard, authorizations.names),
      )
    }
    this.backoff = new Backoff(this.opts.backoff)
    this.readyPromise = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve
      this.rejectReady = reject
    })
    this.readyPromise.catch(() => {}) // nobody has to await readiness
    if (this.opts.signal?.aborted) {
      this.closed = true
      this.rejectReady(new Error('XdsClient: closed before ready'))
      this.loop = Promise.resolve()
      return
    }
    this.opts.signal?.addEventListener('abort', this.onAbort, { once: true })
    if (![...this.states.values()].some((s) => s.wildcard)) this.markReady()
    this.loop = this.run()
  }

  /** Resolves once every wildcard type got its first response and it was ACKed; rejects if closed first. */
  get ready(): Promise<void> {
    return this.readyPromise
  }

  get isReady(): boolean {
    return [...this.states.values()].every((s) => !s.wildcard || s.ready)
  }

  /** Names currently held (applied by the consumer) for a type, with their kind. */
  held(typeUrl: TypeUrl): ReadonlyMap<string, { version: string; kind: ResourceKind }> {
    return this.state(typeUrl).held
  }

  /** Subscribe to names (or `network/IP` aliases) on demand; kept across reconnects. */
  subscribe(typeUrl: TypeUrl, names: readonly string[]): void {
    const st = this.state(typeUrl)
    const fresh = names.filter((n) => !st.names.has(n))
    for (const n of fresh) st.names.add(n)
    const s = this.stream
    if (fresh.length === 0 || !s || s.ended) return
    const subscribe = [...fresh]
    if (s.legacyWildcard.has(typeUrl)) {
      // An explicit name ends the legacy wildcard form, so restate it explicitly (reference §2.2).
      subscribe.unshift('*')
      s.legacyWildcard.delete(typeUrl)
    }
    // Spontaneous request: no nonce (reference §2.2).
    this.send(s, { typeUrl, resourceNamesSubscribe: subscribe })
  }

  /** Stop an on-demand subscription. The wildcard, if on, is unaffected. */
  unsubscribe(typeUrl: TypeUrl, names: readonly string[]): void {
    const st = this.state(typeUrl)
    const gone = names.filter((n) => st.names.delete(n))
    const s = this.stream
    if (gone.length === 0 || !s || s.ended) return
    this.send(s, { typeUrl, resourceNamesUnsubscribe: gone })
  }

  /** Stop: cancel the stream, release the channel and timers. Resolves when the last batch has been handled. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true
      this.opts.signal?.removeEventListener('abort', this.onAbort)
      if (!this.isReady) this.rejectReady(new Error('XdsClient: closed before ready'))
      if (this.sleepTimer) clearTimeout(this.sleepTimer)
      this.wake?.()
      const s = this.stream
      if (s) this.endStream(s)
    }
    await this.loop
    await this.processing
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  private state(typeUrl: TypeUrl): TypeState {
    const st = this.states.get(typeUrl)
    if (!st) throw new Error(`XdsClient: type ${typeUrl} is not watched by this client`)
    return st
  }

  private emit(e: XdsClientEvent): void {
    try {
      this.opts.onEvent(e)
    } catch {
      // an event listener must not break the protocol
    }
  }

  private markReady(): void {
    this.resolveReady()
    this.emit({ type: 'ready' })
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      this.attempts++
      this.emit({ type: 'connecting', attempt: this.attempts, address: this.opts.address })
      let outcome: StreamOutcome
      try {
        outcome = await this.runStream()
      } catch (e) {
        if (this.closed) break
        const retryInMs = this.backoff.next()
        this.emit({ type: 'error', error: e as Error, retryInMs })
        await this.sleep(retryInMs)
        continue
      }
      if (this.closed) break
      const benign = isBenignClose(outcome.code, outcome.details, outcome.healthy)
      if (benign) this.backoff.reset()
      const retryInMs = this.backoff.next()
      this.emit({ type: 'disconnected', ...outcome, benign, retryInMs })
      await this.sleep(retryInMs)
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.sleepTimer = undefined
        this.wake = undefined
        resolve()
      }
      this.wake = done
      this.sleepTimer = setTimeout(done, ms)
    })
  }

  private async credentials(): Promise<grpc.ChannelCredentials> {
    const tls = await this.tlsMaterial()
    return tls === 'insecure'
      ? grpc.credentials.createInsecure()
      : grpc.credentials.createSsl(tls.ca, tls.key, tls.cert)
  }

  private async tlsMaterial(): Promise<'insecure' | { ca: Buffer; key: Buffer | null; cert: Buffer | null }> {
    const tls = this.opts.tls
    if (tls === 'insecure') return 'insecure'
    const read = async (what: string, file: string): Promise<Buffer> => {
      try {
        return await readFile(file)
      } catch (e) {
        throw new Error(`TLS ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
      }
    }
    // Read on every attempt, so a rotated CA or client cert takes effect on the next connect.
    const ca = await read('CA file', tls.caFile)
    const key = tls.keyFile ? await read('key file', tls.keyFile) : null
    const cert = tls.certFile ? await read('certificate file', tls.certFile) : null
    return { ca, key, cert }
  }

  /** The stream's metadata: the configured headers and the bearer token (names in lower case, as HTTP/2 has them). */
  private async metadata(): Promise<Record<string, string>> {
    const md: Record<string, string> = {}
    for (const [k, v] of Object.entries(this.opts.headers)) md[k.toLowerCase()] = v
    if (this.opts.tokenFile) {
      let token: string
      try {
        // Re-read before every connect: projected service-account tokens rotate.
        token = (await readFile(this.opts.tokenFile, 'utf8')).trim()
      } catch (e) {
        throw new Error(
          `token file ${this.opts.tokenFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        )
      }
      if (token === '') throw new Error(`token file ${this.opts.tokenFile} is empty`)
      md['authorization'] = `Bearer ${token}`
    }
    return md
  }

  /** Open one stream (with its own connection, so our backoff alone paces reconnects) and run it to its end. */
  private async runStream(): Promise<StreamOutcome> {
    return this.opts.transport === 'http2' ? this.runHttp2Stream() : this.runGrpcJsStream()
  }

  /** The stream over node:http2 (ads-http2.ts): each response read as its bytes arrive, never joined whole. */
  private async runHttp2Stream(): Promise<StreamOutcome> {
    const tls = await this.tlsMaterial()
    const metadata = await this.metadata()
    if (this.closed) return { code: grpc.status.CANCELLED, details: 'closed', healthy: false }
    const serverName = this.opts.tls !== 'insecure' ? this.opts.tls.serverName : undefined
    const call = new Http2AdsCall({
      address: this.opts.address,
      tls: tls === 'insecure' ? tls : { ...tls, serverName },
      metadata,
      maxReceiveMessageBytes: this.opts.maxReceiveMessageBytes,
      windowBytes: FLOW_CONTROL_WINDOW,
    })
    const s = this.newStream({ write: (req) => call.write(encodeRequest(req)), cancel: () => call.cancel() })
    return new Promise<StreamOutcome>((resolve) => {
      call.on('response', (res: DeltaDiscoveryResponse, bytes: number) => {
        s.responses++
        this.enqueue(() => this.handleDecoded(s, res, bytes))
      })
      call.on('status', (st: AdsStatus) => {
        const healthy = s.responses > 0
        this.endStream(s)
        resolve({ code: st.code, details: st.details, healthy })
      })
      this.startInitialRequests(s)
    })
  }

  /** The stream over @grpc/grpc-js (transport 'grpc-js': channelOptions, unix: addresses). */
  private async runGrpcJsStream(): Promise<StreamOutcome> {
    const creds = await this.credentials()
    const md = new grpc.Metadata()
    for (const [k, v] of Object.entries(await this.metadata())) md.set(k, v)
    if (this.closed) return { code: grpc.status.CANCELLED, details: 'closed', healthy: false }
    const chOpts: Record<string, string | number> = {
      'grpc.max_receive_message_length': this.opts.maxReceiveMessageBytes,
      // A full push of a big mesh is one message of tens of megabytes: with HTTP/2's default 64 KiB window the
      // server waits for a WINDOW_UPDATE every 64 KiB. 16 MiB lets it stream such a push without stopping.
      'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW,
      ...this.opts.channelOptions,
    }
    const tls = this.opts.tls
    if (tls !== 'insecure' && tls.serverName) chOpts['grpc.ssl_target_name_override'] = tls.serverName
    const channel = new grpc.Client(this.opts.address, creds, chOpts)
    // Responses are handed over as bytes and decoded in handleMessage, in slices: a full push of a big mesh is
    // one message of tens of megabytes, and decoding it in gRPC's deserializer would hold the event loop.
    const call = channel.makeBidiStreamRequest<Partial<DeltaDiscoveryRequest> | Buffer, Buffer>(
      DELTA_ADS_METHOD,
      encodeRequest,
      (buf: Buffer) => buf,
      md,
    )
    const s = this.newStream(call, channel)
    return new Promise<StreamOutcome>((resolve) => {
      call.on('data', (buf: Buffer) => {
        s.responses++
        this.enqueue(() => this.handleMessage(s, buf))
      })
      call.on('error', () => {
        // the 'status' event carries the outcome
      })
      call.on('status', (st: grpc.StatusObject) => {
        const healthy = s.responses > 0
        this.endStream(s)
        // a response we could not parse ends the stream as gRPC's own deserializer would have ended it
        resolve({ ...(s.parseFailure ?? { code: st.code, details: st.details }), healthy })
      })
      this.startInitialRequests(s)
    })
  }

  private newStream(call: StreamRun['call'], channel?: grpc.Client): StreamRun {
    const s: StreamRun = {
      id: ++this.streamSeq,
      call,
      channel,
      responses: 0,
      ended: false,
      legacyWildcard: new Set(),
      // until the initial requests are sent (sendInitialRequests)
      waiting: [],
    }
    this.stream = s
    return s
  }

  /**
   * The initial requests, after every response already received is applied (those of a stream that ended are
   * dropped), so what is held does not change while a long list of it is encoded.
   */
  private startInitialRequests(s: StreamRun): void {
    this.enqueue(() => this.sendInitialRequests(s))
  }

  /** Work on the stream's responses and requests, one piece after the other, in the order it came. */
  private enqueue(work: () => Promise<void>): void {
    this.processing = this.processing
      .then(work)
      .catch((e: unknown) => this.emit({ type: 'error', error: e as Error, retryInMs: undefined }))
  }

  private endStream(s: StreamRun): void {
    if (this.stream === s) this.stream = undefined
    if (s.ended) return
    s.ended = true
    s.call.cancel()
    s.channel?.close()
  }

  private send(s: StreamRun, req: Partial<DeltaDiscoveryRequest> & { typeUrl: string }): void {
    if (s.ended) return
    if (s.waiting) s.waiting.push(req)
    else s.call.write(req)
  }

  /**
   * The first request of each type on a stream: node on the very first, and initial_resource_versions listing
   * every held name so istiod reports what was deleted while we were away (reference §2.2, §2.3; kmesh #415).
   */
  private async sendInitialRequests(s: StreamRun): Promise<void> {
    try {
      await this.writeInitialRequests(s)
    } catch (err) {
      // A stream without its initial requests is of no use, and what waits must not go out before them: end it
      // (the client reconnects) and drop what waited (the next stream's initial requests restate everything).
      s.waiting = undefined
      s.call.cancel()
      throw err
    }
    const waiting = s.waiting ?? []
    s.waiting = undefined
    for (const req of waiting) this.send(s, req)
  }

  private async writeInitialRequests(s: StreamRun): Promise<void> {
    let first = true
    // Every request as things are now (subscriptions that change while a long list is encoded follow as
    // requests of their own).
    const initial: Array<{ req: Partial<DeltaDiscoveryRequest> & { typeUrl: string }; held: Map<string, Held> }> = []
    for (const st of this.states.values()) {
      const req: Partial<DeltaDiscoveryRequest> & { typeUrl: string } = { typeUrl: st.typeUrl }
      if (first) req.node = this.opts.node
      first = false
      const names = [...st.names]
      if (st.wildcard && names.length === 0) {
        // legacy wildcard: empty subscribe and unsubscribe lists, as ztunnel and Kmesh send it
        s.legacyWildcard.add(st.typeUrl)
      } else if (st.wildcard) {
        req.resourceNamesSubscribe = ['*', ...names]
      } else if (names.length === 0) {
        // "subscribe to nothing" as Istio clients say it: subscribe and unsubscribe "*" (reference §2.2)
        req.resourceNamesSubscribe = ['*']
        req.resourceNamesUnsubscribe = ['*']
      } else {
        req.resourceNamesSubscribe = names
      }
      initial.push({ req, held: st.held })
    }
    for (const { req, held } of initial) {
      if (s.ended) return
      if (held.size === 0) s.call.write(req)
      else {
        // The held names encoded a slice at a time (a resume of a big mesh restates 100k), then sent in order.
        const entries = await drive(encodeInitialVersionsSteps(versionsOf(held), VERSIONS_SLICE))
        if (s.ended) return
        s.call.write(Buffer.concat([encodeDeltaRequest(req), entries]))
      }
    }
  }

  private async handleMessage(s: StreamRun, buf: Buffer): Promise<void> {
    if (this.closed || s.ended) return
    // gRPC has just joined a big message into one buffer (tens of milliseconds for a full push): let the event
    // loop turn before the first slice of decoding, so the two do not add up to one stall.
    if (buf.length > BIG_MESSAGE) await nextTurn()
    if (this.closed || s.ended) return
    let res: DeltaDiscoveryResponse
    try {
      res = await drive(decodeDeltaResponseSteps(buf, DECODE_SLICE))
    } catch (e) {
      if (!(e instanceof WireFormatError)) throw e
      s.responses--
      s.parseFailure = { code: grpc.status.INTERNAL, details: `Response message parsing error: ${e.message}` }
      s.call.cancel()
      return
    }
    await this.handleDecoded(s, res, buf.length)
  }

  /** A response read whole (by either transport), `bytes` its message's size. */
  private async handleDecoded(s: StreamRun, res: DeltaDiscoveryResponse, bytes: number): Promise<void> {
    if (this.closed || s.ended) return
    this.emit({
      type: 'response',
      typeUrl: res.typeUrl,
      bytes,
      resources: res.resources.length,
      removed: res.removedResources.length,
    })
    await this.handleResponse(s, res)
  }

  private async handleResponse(s: StreamRun, res: DeltaDiscoveryResponse): Promise<void> {
    if (this.closed) return
    const typeUrl = res.typeUrl
    const st = isWatchedType(typeUrl) ? this.states.get(typeUrl) : undefined
    if (!st || !isWatchedType(typeUrl)) {
      // ztunnel ACKs unknown types (reference §3.2); there is nothing to apply.
      this.emit({ type: 'ignored', typeUrl, nonce: res.nonce, reason: 'type not watched; ACKed' })
      this.send(s, { typeUrl, responseNonce: res.nonce })
      return
    }
    const built = await buildBatchInSlices(
      { ...res, typeUrl },
      {
        limits: this.opts.limits,
        convertAddress: this.opts.convertAddress,
        heldKind: (n) => st.held.get(n)?.kind,
        ...(this.opts.skipUnchanged ? { heldDigest: (n: string) => st.held.get(n)?.digest } : {}),
      },
    )
    // without convertAddress the values are the decoded Addresses, which is what A is then
    const batch = built.batch as ChangeBatch<A>
    let consumerRejections: Rejection[] = []
    try {
      const r = await this.opts.handler(batch)
      if (r) consumerRejections = [...r]
    } catch (e) {
      // We cannot know what was applied: reject everything in the batch so nothing new is remembered and the
      // resume asks for all of it again.
      const reason = `handler failed: ${(e as Error)?.message ?? String(e)}`
      consumerRejections = [...batch.added.map((a) => a.name), ...batch.removed.map((r) => r.name)].map((name) => ({
        name,
        reason,
      }))
    }
    this.commit(st, built, consumerRejections)
    const rejections = [...batch.rejected, ...consumerRejections]
    if (s.ended || this.closed) {
      // The nonce died with its stream (reference §2.2); the state is committed, the next stream restates it.
      this.emit({ type: 'ignored', typeUrl, nonce: res.nonce, reason: 'stream ended before the response was handled' })
      return
    }
    if (rejections.length > 0) {
      const message = nackMessage(rejections)
      this.send(s, { typeUrl, responseNonce: res.nonce, errorDetail: { code: INVALID_ARGUMENT, message, details: [] } })
      this.emit({ type: 'nack', typeUrl, nonce: res.nonce, message, rejections })
      return
    }
    this.send(s, { typeUrl, responseNonce: res.nonce })
    this.emit({ type: 'ack', typeUrl, nonce: res.nonce })
    if (!st.ready) {
      st.ready = true
      if (this.isReady) this.markReady()
    }
  }

  /**
   * Record what the consumer now holds. A name that was rejected and never held is not remembered, so the next
   * resume does not list it and the server sends it again (reference §3.2). A rejected update of a held name keeps
   * the name (the consumer still holds the older copy, and must hear if it is deleted) but forgets its version.
   */
  private commit(st: TypeState, built: BuiltBatch<unknown>, consumerRejections: readonly Rejection[]): void {
    const { batch, digests, kinds } = built
    const rejected = new Set<string>(consumerRejections.map((r) => r.name))
    for (const r of batch.rejected) rejected.add(r.name)
    const added = batch.added
    for (let i = 0; i < added.length; i++) {
      const a = added[i]!
      if (rejected.has(a.name)) continue
      const kind: ResourceKind = batch.typeUrl === AUTHORIZATION_TYPE_URL ? 'policy' : (kinds[i] ?? 'service')
      st.held.set(a.name, { version: a.version, kind, digest: digests[i] })
    }
    for (const r of batch.removed) if (!rejected.has(r.name)) st.held.delete(r.name)
    for (const name of rejected) {
      const h = st.held.get(name)
      if (h) {
        h.version = ''
        h.digest = undefined
      }
    }
  }
}
