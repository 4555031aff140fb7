// The delta ADS stream over node:http2, as gRPC frames it (grpc/PROTOCOL-HTTP2.md): one POST per stream, each
// request a length-prefixed message, the responses read as their bytes arrive (response-stream.ts) instead of
// joined into one buffer per message first, which a gRPC library does and which costs one 20+ MB copy in a single
// turn of the event loop for every full push of a big mesh. Statuses come from the trailers (grpc-status,
// grpc-message) or, when the stream ends without them, from what ended it, with the codes a gRPC client would
// give. Used by XdsClient unless `transport: 'grpc-js'` (or channelOptions, or a unix: address) is asked for.
import { EventEmitter } from 'node:events'
import http2 from 'node:http2'
import { status } from '@grpc/grpc-js'
import { MessageTooLargeError, ResponseStreamReader } from './response-stream.js'
import { DELTA_ADS_METHOD, type DeltaDiscoveryResponse } from './wire.js'
import { WireFormatError } from './wire-reader.js'

/** First TCP keepalive probe after this long without traffic. */
const TCP_KEEPALIVE_MS = 30_000
/** A connection (TCP, TLS, HTTP/2 settings) not up by then is given up (grpc-js waits 20 s too). */
const CONNECT_TIMEOUT_MS = 20_000

/** gRPC's status codes (google.rpc.Code), as the grpc-js transport reports them too. */
const Code = status

export interface AdsStatus {
  code: number
  details: string
}

export interface Http2AdsOptions {
  /** host:port (an IPv6 host in brackets); a `dns:` prefix is accepted */
  address: string
  tls: 'insecure' | { ca: Buffer; key: Buffer | null; cert: Buffer | null; serverName?: string | undefined }
  /** gRPC metadata: one header each */
  metadata: Readonly<Record<string, string>>
  maxReceiveMessageBytes: number
  /** HTTP/2 receive window of the connection and the stream */
  windowBytes: number
  /** give up a connection whose server has not sent its HTTP/2 settings by then (default 20 s, as grpc-js) */
  connectTimeoutMs?: number | undefined
}

/**
 * One ADS stream on a connection of its own. Events: `response` (a DeltaDiscoveryResponse and its size, for each
 * message), then exactly one `status` when the stream is over, whatever ended it.
 */
export class Http2AdsCall extends EventEmitter {
  readonly #session: http2.ClientHttp2Session
  readonly #stream: http2.ClientHttp2Stream | undefined
  readonly #reader: ResponseStreamReader
  #status: AdsStatus | undefined
  #httpStatus = 0
  #error: Error | undefined
  #goaway: number | undefined
  #connectTimer: NodeJS.Timeout | undefined

  constructor(opts: Http2AdsOptions) {
    super()
    const address = opts.address.replace(/^dns:(\/\/\/)?/, '')
    const tls = opts.tls
    const settings = { initialWindowSize: opts.windowBytes }
    this.#session =
      tls === 'insecure'
        ? http2.connect(`http://${address}`, { settings })
        : http2.connect(`https://${address}`, {
            settings,
            ca: tls.ca,
            ...(tls.key && tls.cert ? { key: tls.key, cert: tls.cert } : {}),
            ...(tls.serverName ? { servername: tls.serverName } : {}),
          })
    this.#session.on('error', (err) => {
      this.#error ??= err
    })
    this.#session.on('goaway', (code, lastStreamId) => {
      this.#goaway = code
      // A stream past the last one the server will process is over now; the others run on to their end (istiod's
      // max connection age lets them finish, then closes the connection).
      const id = this.#stream?.id
      if (id !== undefined && id > lastStreamId) {
        this.#finish({ code: Code.UNAVAILABLE, details: `Stream ended by GOAWAY (code ${code})` })
        this.#close(http2.constants.NGHTTP2_CANCEL)
      }
    })
    const connectTimeoutMs = opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS
    this.#connectTimer = setTimeout(() => {
      this.#finish({ code: Code.UNAVAILABLE, details: `No connection established within ${connectTimeoutMs} ms` })
      this.#session.destroy()
    }, connectTimeoutMs)
    this.#session.on('close', () => clearTimeout(this.#connectTimer))
    // Up once the server's HTTP/2 settings arrived: a peer that takes the TCP connection and never speaks
    // HTTP/2 (or TLS) is given up by the timer.
    this.#session.on('remoteSettings', () => clearTimeout(this.#connectTimer))
    this.#session.on('connect', (session, socket) => {
      if (session.destroyed) return
      session.setLocalWindowSize(opts.windowBytes)
      // A connection that died without a word (a node or istiod gone from the network) is found by TCP keepalive:
      // this transport sends no HTTP/2 pings.
      socket.setKeepAlive(true, TCP_KEEPALIVE_MS)
    })
    this.#reader = new ResponseStreamReader(opts.maxReceiveMessageBytes, (res, bytes) =>
      this.emit('response', res, bytes),
    )
    let stream: http2.ClientHttp2Stream
    try {
      stream = this.#session.request(
        {
          ':method': 'POST',
          ':path': DELTA_ADS_METHOD,
          'content-type': 'application/grpc',
          te: 'trailers',
          'grpc-accept-encoding': 'identity',
          'user-agent': 'kmesh-ts-xds-client',
          ...opts.metadata,
        },
        { endStream: false },
      )
    } catch (err) {
      // e.g. a configured header HTTP/2 forbids: no stream, and the connection goes with it
      this.#finish({ code: Code.INTERNAL, details: `cannot open the stream: ${(err as Error).message}` })
      this.#session.destroy()
      return
    }
    this.#stream = stream
    stream.on('response', (headers) => {
      this.#httpStatus = Number(headers[':status'] ?? 0)
      // a trailers-only response: the status comes in the headers
      if (headers['grpc-status'] !== undefined) this.#finish(statusOf(headers))
      else if (this.#httpStatus !== 200) this.#finish(httpStatusToGrpc(this.#httpStatus))
      else if (!String(headers['content-type'] ?? '').startsWith('application/grpc'))
        this.#finish({ code: Code.UNKNOWN, details: `Received invalid content-type ${headers['content-type']}` })
      // what follows an HTTP error is not gRPC: it is not read
      if (this.#status) this.#close(http2.constants.NGHTTP2_CANCEL)
    })
    stream.on('data', (chunk: Buffer) => {
      if (this.#status) return
      try {
        this.#reader.push(chunk)
      } catch (err) {
        this.#finish(
          err instanceof MessageTooLargeError
            ? { code: Code.RESOURCE_EXHAUSTED, details: err.message }
            : {
                code: Code.INTERNAL,
                details: `Response message parsing error: ${err instanceof WireFormatError ? err.message : String(err)}`,
              },
        )
        this.#close(http2.constants.NGHTTP2_CANCEL)
      }
    })
    stream.on('trailers', (headers) => this.#finish(statusOf(headers)))
    stream.on('error', (err: NodeJS.ErrnoException) => {
      // A reset from the peer is an error of the stream, told apart by its code (the rstCode branches decide);
      // anything else (the socket's own error carried to the stream) is the connection's.
      if (err.code !== 'ERR_HTTP2_STREAM_ERROR') this.#error ??= err
    })
    stream.on('close', () => {
      // the connection is gone under the stream (reset, closed by the peer): node closes its streams with CANCEL
      const connectionLost = this.#session.destroyed && !this.#status
      this.#finish(this.#endedWithout(stream.rstCode, connectionLost))
      this.#session.close()
    })
  }

  /** Sends one encoded DeltaDiscoveryRequest. */
  write(message: Uint8Array): void {
    if (this.#status || !this.#stream || this.#stream.closed) return
    const head = Buffer.alloc(5)
    head.writeUInt32BE(message.length, 1)
    this.#stream.write(Buffer.concat([head, message]))
  }

  /** Ends the stream from this side: status CANCELLED, as a gRPC client reports it. */
  cancel(): void {
    this.#finish({ code: Code.CANCELLED, details: 'Cancelled on client' })
    this.#close(http2.constants.NGHTTP2_CANCEL)
  }

  #close(code: number): void {
    if (this.#stream && !this.#stream.closed) this.#stream.close(code)
    // A session still connecting (TCP or TLS handshake) would wait for it to finish: destroyed instead.
    if (this.#session.connecting) this.#session.destroy()
    else if (!this.#session.closed) this.#session.close()
  }

  #finish(status: AdsStatus): void {
    if (this.#status) return
    this.#status = status
    // the status comes after every response the stream carried (the reader emits them synchronously)
    queueMicrotask(() => this.emit('status', status))
  }

  /** The status of a stream that ended without one in its trailers. */
  #endedWithout(rstCode: number | undefined, connectionLost: boolean): AdsStatus {
    const err = this.#error ?? (connectionLost && this.#goaway === undefined ? new Error('connection lost') : undefined)
    // The connection failed (refused, reset, timed out, TLS): UNAVAILABLE, as grpc-js reports it; node resets the
    // stream with INTERNAL_ERROR then, which is not the server's doing.
    if (err)
      return {
        code: Code.UNAVAILABLE,
        details:
          this.#httpStatus === 0
            ? `No connection established. Last error: ${err.message}`
            : `Connection dropped: ${err.message}`,
      }
    // A GOAWAY (istiod's max connection age, or its shutdown) ends the streams it does not keep.
    if (this.#goaway !== undefined)
      return { code: Code.UNAVAILABLE, details: `Stream ended by GOAWAY (code ${this.#goaway})` }
    if (rstCode === http2.constants.NGHTTP2_REFUSED_STREAM)
      return { code: Code.UNAVAILABLE, details: 'Stream refused by server' }
    if (rstCode === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM)
      return { code: Code.UNAVAILABLE, details: 'Stream reset by server: ENHANCE_YOUR_CALM' }
    if (rstCode === http2.constants.NGHTTP2_CANCEL) return { code: Code.CANCELLED, details: 'Call cancelled' }
    if (rstCode !== undefined && rstCode !== http2.constants.NGHTTP2_NO_ERROR)
      return { code: Code.INTERNAL, details: `Received RST_STREAM with code ${rstCode}` }
    if (!this.#reader.atBoundary) return { code: Code.INTERNAL, details: 'the stream ended inside a message' }
    return { code: Code.UNAVAILABLE, details: 'the stream ended without a status' }
  }
}

function statusOf(headers: http2.IncomingHttpHeaders): AdsStatus {
  const code = Number(headers['grpc-status'])
  let details = String(headers['grpc-message'] ?? '')
  try {
    details = decodeURIComponent(details)
  } catch {
    // not percent-encoded after all: as it came
  }
  return { code: Number.isInteger(code) ? code : Code.UNKNOWN, details }
}

/** gRPC's mapping of an HTTP status without grpc-status (grpc/http-grpc-status-mapping.md). */
function httpStatusToGrpc(status: number): AdsStatus {
  const code =
    status === 400
      ? Code.INTERNAL
      : status === 401
        ? Code.UNAUTHENTICATED
        : status === 403
          ? Code.PERMISSION_DENIED
          : status === 404
            ? Code.UNIMPLEMENTED
            : status === 429 || status === 502 || status === 503 || status === 504
              ? Code.UNAVAILABLE
              : Code.UNKNOWN
  return { code, details: `Received HTTP status code ${status}` }
}

export type { DeltaDiscoveryResponse }
