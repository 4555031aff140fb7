// Client options and their defaults, in one place, validated at the boundary.
import { DEFAULT_BACKOFF } from './backoff.js'
import { DEFAULT_ADDRESS, DEFAULT_CA_FILE, DEFAULT_MAX_RECEIVE_BYTES } from './defaults.js'
import type { BackoffOptions } from './backoff.js'
import { DEFAULT_DECODE_LIMITS } from './decode.js'
import type { DecodeLimits } from './decode.js'
import type { ChangeBatch, Rejection } from './response.js'
import type { XdsNode } from './wire.js'
import type { Address } from './types.js'
import type { XdsClientEvent } from './events.js'

/** What a batch handler may return: nothing (all applied) or the resources it could not apply, with reasons. */
export type HandlerResult = void | undefined | readonly Rejection[]
export type BatchHandler<A = Address> = (batch: ChangeBatch<A>) => HandlerResult | Promise<HandlerResult>

export interface TlsOptions {
  /** PEM file of the CA that signed istiod's certificate (Istio: /var/run/secrets/istio/root-cert.pem) */
  caFile: string
  /** client certificate and key for mTLS, both or neither */
  certFile?: string
  keyFile?: string
  /** name to verify in istiod's certificate when it differs from the address host (ztunnel ALT_XDS_HOSTNAME) */
  serverName?: string
}

export interface SubscriptionOptions {
  /** receive every resource of the type (default true) */
  wildcard?: boolean
  /** names (or `network/IP` aliases) to subscribe to explicitly from the start */
  names?: readonly string[]
}

/** `A`: what each Address is handed over as (the decoded Address unless `convertAddress` is given). */
export interface XdsClientOptions<A = Address> {
  /** istiod's gRPC address, default `istiod.istio-system.svc:15012` */
  address?: string
  /** node identity; build it with istioNode() / istioNodeFromEnv(). id must not be empty. */
  node: XdsNode
  /** called once per response, in order; the client ACKs or NACKs after it resolves */
  handler: BatchHandler<A>
  /**
   * Turns each decoded Address into the consumer's own form as soon as it is decoded, so a big push is not held
   * twice (decoded objects, then the consumer's copies). A throw rejects that resource (NACK) with the error's
   * message. Required when `A` is not Address.
   */
  convertAddress?: (address: Address, name: string) => A
  /** TLS (default: CA file `/var/run/secrets/istio/root-cert.pem`), or `'insecure'` for plaintext on loopback */
  tls?: TlsOptions | 'insecure'
  /** file with a bearer token, read again before every (re)connect (Istio: /var/run/secrets/tokens/istio-token) */
  tokenFile?: string
  /** extra gRPC metadata on every stream (ztunnel XDS_HEADER_*) */
  headers?: Readonly<Record<string, string>>
  /** Address subscription, or false to not watch Addresses */
  addresses?: SubscriptionOptions | false
  /** Authorization subscription, or false to not watch policies */
  authorizations?: SubscriptionOptions | false
  /**
   * Leave out of the batches every resource whose payload bytes equal those of the copy the consumer applied
   * (istiod resends every resource on a reconnect, and unchanged ones on many pushes): they are not decoded nor
   * handed over, only counted in the batch's `unchanged`. Default false: every resource is handed over.
   */
  skipUnchanged?: boolean
  /** limits applied while validating resources */
  limits?: Partial<DecodeLimits>
  backoff?: Partial<BackoffOptions>
  /** largest response accepted, default 200 MiB (as ztunnel; a full push of a big mesh is one message) */
  maxReceiveMessageBytes?: number
  /** extra @grpc/grpc-js channel options (they choose the grpc-js transport) */
  channelOptions?: Readonly<Record<string, string | number>>
  /**
   * How the stream is carried. `http2` (the default): node:http2, each response read as its bytes arrive, so a
   * full push of tens of megabytes is never joined into one buffer in one turn of the event loop. `grpc-js`:
   * @grpc/grpc-js, for channelOptions and `unix:` addresses (chosen by default when either is given).
   */
  transport?: 'http2' | 'grpc-js'
  /** aborting it is the same as close() */
  signal?: AbortSignal
  /** typed lifecycle events (connecting, ack, nack, ready, disconnected, ...) */
  onEvent?: (event: XdsClientEvent) => void
}

export { DEFAULT_ADDRESS, DEFAULT_CA_FILE, DEFAULT_MAX_RECEIVE_BYTES }

export interface ResolvedOptions<A = Address> {
  address: string
  node: XdsNode
  handler: BatchHandler<A>
  convertAddress: ((address: Address, name: string) => A) | undefined
  tls: TlsOptions | 'insecure'
  tokenFile: string | undefined
  headers: Readonly<Record<string, string>>
  addresses: Required<SubscriptionOptions> | false
  authorizations: Required<SubscriptionOptions> | false
  skipUnchanged: boolean
  limits: DecodeLimits
  backoff: BackoffOptions
  maxReceiveMessageBytes: number
  channelOptions: Readonly<Record<string, string | number>>
  transport: 'http2' | 'grpc-js'
  signal: AbortSignal | undefined
  onEvent: (event: XdsClientEvent) => void
}

function subscription(o: SubscriptionOptions | false | undefined): Required<SubscriptionOptions> | false {
  if (o === false) return false
  return { wildcard: o?.wildcard ?? true, names: [...(o?.names ?? [])] }
}

export function resolveOptions<A = Address>(o: XdsClientOptions<A>): ResolvedOptions<A> {
  if (!o || typeof o !== 'object') throw new TypeError('XdsClient: options object is required')
  if (!o.node || typeof o.node.id !== 'string' || o.node.id === '') {
    // istiod fails such a stream with InvalidArgument (reference §2.3)
    throw new TypeError('XdsClient: option "node.id" must be a non-empty string')
  }
  if (typeof o.handler !== 'function') throw new TypeError('XdsClient: option "handler" must be a function')
  const tls = o.tls ?? { caFile: DEFAULT_CA_FILE }
  if (tls !== 'insecure' && (typeof tls.caFile !== 'string' || tls.caFile === '')) {
    throw new TypeError('XdsClient: option "tls.caFile" must name a PEM file')
  }
  if (tls !== 'insecure' && !!tls.certFile !== !!tls.keyFile) {
    throw new TypeError('XdsClient: options "tls.certFile" and "tls.keyFile" go together')
  }
  const limits = { ...DEFAULT_DECODE_LIMITS, ...o.limits }
  const maxPorts = limits.maxPortsPerService
  if (maxPorts !== Infinity && !(Number.isInteger(maxPorts) && maxPorts >= 1)) {
    throw new TypeError('XdsClient: option "limits.maxPortsPerService" must be a positive integer or Infinity')
  }
  const backoff = { ...DEFAULT_BACKOFF, ...o.backoff }
  if (
    !(backoff.initialMs > 0) ||
    !(backoff.maxMs >= backoff.initialMs) ||
    !(backoff.jitter >= 0 && backoff.jitter <= 1)
  ) {
    throw new TypeError('XdsClient: option "backoff" needs 0 < initialMs <= maxMs and 0 <= jitter <= 1')
  }
  const address = o.address ?? DEFAULT_ADDRESS
  const needsGrpcJs = Object.keys(o.channelOptions ?? {}).length > 0 || address.startsWith('unix:')
  const transport = o.transport ?? (needsGrpcJs ? 'grpc-js' : 'http2')
  if (transport !== 'http2' && transport !== 'grpc-js')
    throw new TypeError('XdsClient: option "transport" is "http2" or "grpc-js"')
  if (transport === 'http2' && needsGrpcJs)
    throw new TypeError('XdsClient: channelOptions and unix: addresses need option "transport" "grpc-js"')
  const addresses = subscription(o.addresses)
  const authorizations = subscription(o.authorizations)
  if (!addresses && !authorizations)
    throw new TypeError('XdsClient: options "addresses" and "authorizations" are both false')
  return {
    address,
    node: o.node,
    handler: o.handler,
    convertAddress: o.convertAddress,
    tls,
    tokenFile: o.tokenFile,
    headers: o.headers ?? {},
    addresses,
    authorizations,
    skipUnchanged: o.skipUnchanged === true,
    limits,
    backoff,
    maxReceiveMessageBytes: o.maxReceiveMessageBytes ?? DEFAULT_MAX_RECEIVE_BYTES,
    channelOptions: o.channelOptions ?? {},
    transport,
    signal: o.signal,
    onEvent: o.onEvent ?? (() => {}),
  }
}
