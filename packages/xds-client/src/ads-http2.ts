// The delta ADS stream over node:http2, as gRPC frames it (grpc/PROTOCOL-HTTP2.md): one POST per stream, each
// request a length-prefixed message, the responses read as their bytes arrive (response-stream.ts) instead of
// joined into one buffer per message first, which a gRPC library does and which costs one 20+ MB copy in a single
// turn of the event loop for every full push of a big mesh. Statuses come from the trailers (grpc-status,
// grpc-message) or, when the stream ends without them, from what ended it, with the codes a gRPC client would
// give. Used by XdsClient unless `transport: 'grpc-js'` (or channelOptions, or a unix: address) is asked for.
import { EventEmitter } from 'node:events'
import http2 from 'node:http2'
import { MessageTooLargeError, ResponseStreamReader } from './response-stream.js'
import { DELTA_ADS_METHOD, type DeltaDiscoveryResponse } from './wire.js'
import { WireFormatError } from './wire-reader.js'

/** First TCP keepalive probe after this long without traffic. */
const TCP_KEEPALIVE_MS = 30_000

/** gRPC status codes this transport reports (google.rpc.Code). */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
  PERMISSION_DENIED: 7,
} as const

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
}

/**
 * One ADS stream on a connection of its own. Events: `response` (a DeltaDiscoveryResponse and its size, for each
 * message), then exactly one `status` when the stream is over, whatever ended it.
 */
export class Http2AdsCall extends EventEmitter {
  readonly #session: http2.ClientHttp2Session
  readonly #stream: http2.ClientHttp2Stream
  readonly #reader: ResponseStreamReader
  #status: AdsStatus | undefined
  #httpStatus = 0
  #error: Error | undefined

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
    this.#session.on('connect', (session, socket) => {
      session.setLocalWindowSize(opts.windowBytes)
      // A connection that died without a word (a node or istiod gone from the network) is found by TCP keepalive:
      // this transport sends no HTTP/2 pings.
      socket.setKeepAlive(true, TCP_KEEPALIVE_MS)
    })
    this.#reader = new ResponseStreamReader(opts.maxReceiveMessageBytes, (res, bytes) =>
      this.emit('response', res, bytes),
    )
    this.#stream = this.#session.request(
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
    const stream = this.#stream
    stream.on('response', (headers) => {
      this.#httpStatus = Number(headers[':status'] ?? 0)
      // a trailers-only response: the status comes in the headers
      if (headers['grpc-status'] !== undefined) this.#finish(statusOf(headers))
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
    stream.on('error', (err) => {
      this.#error ??= err
    })
    stream.on('close', () => {
      this.#finish(this.#endedWithout(stream.rstCode))
      this.#session.close()
    })
  }

  /** Sends one encoded DeltaDiscoveryRequest. */
  write(message: Uint8Array): void {
    if (this.#status || this.#stream.closed) return
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
    if (!this.#stream.closed) this.#stream.close(code)
    if (!this.#session.closed) this.#session.close()
  }

  #finish(status: AdsStatus): void {
    if (this.#status) return
    this.#status = status
    // the status comes after every response the stream carried (the reader emits them synchronously)
    queueMicrotask(() => this.emit('status', status))
  }

  /** The status of a stream that ended without one in its trailers. */
  #endedWithout(rstCode: number | undefined): AdsStatus {
    const err = this.#error
    if (err && this.#httpStatus === 0)
      return { code: Code.UNAVAILABLE, details: `No connection established. Last error: ${err.message}` }
    if (this.#httpStatus !== 0 && this.#httpStatus !== 200) return httpStatusToGrpc(this.#httpStatus)
    if (rstCode === http2.constants.NGHTTP2_REFUSED_STREAM)
      return { code: Code.UNAVAILABLE, details: 'Stream refused by server' }
    if (rstCode === http2.constants.NGHTTP2_CANCEL) return { code: Code.CANCELLED, details: 'Call cancelled' }
    if (rstCode !== undefined && rstCode !== http2.constants.NGHTTP2_NO_ERROR)
      return { code: Code.INTERNAL, details: `Received RST_STREAM with code ${rstCode}` }
    if (!this.#reader.atBoundary) return { code: Code.INTERNAL, details: 'the stream ended inside a message' }
    return {
      code: Code.UNAVAILABLE,
      details: err ? `Connection dropped: ${err.message}` : 'the stream ended without a status',
    }
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
