/**
 * The whole decision of the kmesh-ts connect hook for one connect, on a map snapshot: frontend → service →
 * endpoint → backend → destination rewrite (docs/reference/kmesh-dataplane.md §3, with the kmesh-ts choices listed
 * in @kmesh-ts/bpf-progs' README: fail fast with ECONNREFUSED, PASSTHROUGH, all 16 waypoint bytes tested).
 * Written from those semantics, independently of the C: the property test in bpf-progs proves the two equal.
 */
import { ERRNO } from '@kmesh-ts/kernel-abi'
import { bytesKey, bytesToText, familyOf, ipToBytes, isV4Mapped, isZeroIp, type Family, type IpBytes } from './ip.js'
import { checkRandom, choosePriority, indexFor } from './select.js'
import {
  endpointKeyOf,
  indexSnapshot,
  type IndexedBackend,
  type IndexedService,
  type MapSnapshot,
  type SnapshotIndex,
  type Waypoint,
} from './snapshot.js'

export interface ConnectInput {
  /** The address the application connects to, as text (IPv4, IPv6, or v4-mapped IPv6). */
  destination: string
  port: number
  /** The socket's family; default from the text (a colon means IPv6, so `::ffff:a.b.c.d` is an AF_INET6 socket). */
  family?: Family | undefined
  /** The u32 the hook draws with bpf_get_prandom_u32(). */
  random: number
}

/** What the decision went through; absent fields were not reached. */
export interface Trace {
  upstreamId?: number
  serviceId?: number
  priority?: number
  /** 1-based index in the bucket, and the bucket's count the service record holds. */
  index?: number
  count?: number
  backendUid?: number
  waypoint?: 'service' | 'backend'
}

export type LeaveReason = 'no-frontend' | 'passthrough' | 'direct-access'
export type RefuseReason =
  | 'stale-frontend'
  | 'no-endpoint'
  | 'missing-endpoint'
  | 'missing-backend'
  | 'port-not-served'
  | 'invalid-policy'
  | 'family-mismatch'

/** The errnos a refused connect returns, as clang sees <linux/errno.h> (@kmesh-ts/kernel-abi). */
export { ERRNO }

export type Resolution =
  /** connect() goes to `address`:`port` instead (text in the socket's family). */
  | { kind: 'rewrite'; address: string; port: number; viaWaypoint: boolean; trace: Trace }
  /** connect() keeps its destination. */
  | { kind: 'leave'; reason: LeaveReason; trace: Trace }
  /** connect() fails at once with this errno (the hook sets it with bpf_set_retval). */
  | { kind: 'refuse'; errno: keyof typeof ERRNO; reason: RefuseReason; trace: Trace }

const leave = (reason: LeaveReason, trace: Trace): Resolution => ({ kind: 'leave', reason, trace })
const refuse = (reason: RefuseReason, trace: Trace): Resolution => ({
  kind: 'refuse',
  errno: reason === 'invalid-policy' ? 'EINVAL' : reason === 'family-mismatch' ? 'EAFNOSUPPORT' : 'ECONNREFUSED',
  reason,
  trace,
})

/** The socket family copies 4 bytes (rest zero) or all 16 of a record's address. */
function forFamily(address: IpBytes, family: Family): IpBytes {
  return family === 'ipv4'
    ? Uint8Array.of(address[0]!, address[1]!, address[2]!, address[3]!, ...new Uint8Array(12))
    : address
}

/**
 * A record's address as the application's socket can use it: an IPv4 address (bytes 4..15 zero) as it is for
 * an AF_INET socket and as ::ffff:a.b.c.d for an AF_INET6 one; an IPv6 address as it is for AF_INET6, and not at
 * all for AF_INET (undefined: the connect is refused with EAFNOSUPPORT).
 */
function fitToSocket(address: IpBytes, socketFamily: Family): IpBytes | undefined {
  const v4 = address.subarray(4).every((b) => b === 0)
  if (!v4) return socketFamily === 'ipv4' ? undefined : address
  if (socketFamily === 'ipv4') return address
  return Uint8Array.of(...new Uint8Array(10), 0xff, 0xff, address[0]!, address[1]!, address[2]!, address[3]!)
}

/** A waypoint is configured when its port is not 0 and its address is not all-zero (all 16 bytes). */
const isSet = (w: Waypoint | undefined): w is Waypoint => w !== undefined && w.port !== 0 && !isZeroIp(w.address)

interface Target {
  address: IpBytes
  port: number
  viaWaypoint: boolean
}
type Step = Target | Resolution

function isTarget(s: Step): s is Target {
  return !('kind' in s)
}

/**
 * The hook's decision for one connect. Deterministic in (snapshot, input): the random number is an input.
 * Throws RangeError for a `random` that is not a u32 or a port outside 0..65535, TypeError for a destination
 * that is not an IP address.
 */
export function resolve(snapshot: MapSnapshot, input: ConnectInput): Resolution {
  checkRandom('resolve', input.random)
  if (!Number.isInteger(input.port) || input.port < 0 || input.port > 0xffff)
    throw new RangeError(`resolve: port must be 0..65535, got ${input.port}`)
  const index = indexSnapshot(snapshot)
  const socketFamily = input.family ?? familyOf(input.destination)
  const dst = ipToBytes(input.destination)

  // The frontend key: an AF_INET socket uses bytes 0..3; an AF_INET6 one all 16, except that ::ffff:a.b.c.d is
  // looked up (and then resolved) as the IPv4 a.b.c.d (docs/reference/kmesh-dataplane.md §1.3).
  const mapped = socketFamily === 'ipv6' && isV4Mapped(dst)
  const family: Family = mapped ? 'ipv4' : socketFamily
  const key = mapped
    ? Uint8Array.of(dst[12]!, dst[13]!, dst[14]!, dst[15]!, ...new Uint8Array(12))
    : forFamily(dst, family)
  const trace: Trace = {}
  const upstreamId = index.frontend.get(bytesKey(key))
  if (upstreamId === undefined) return leave('no-frontend', trace)
  trace.upstreamId = upstreamId

  const step = resolveUpstream(index, upstreamId, input, trace)
  if (!isTarget(step)) return step
  const address = fitToSocket(step.address, socketFamily)
  if (!address) return refuse('family-mismatch', trace)
  return {
    kind: 'rewrite',
    address: bytesToText(address, socketFamily),
    port: step.port,
    viaWaypoint: step.viaWaypoint,
    trace,
  }
}

/** Service ids and backend uids share one id space: a service wins, then a backend (direct access). */
function resolveUpstream(index: SnapshotIndex, upstreamId: number, input: ConnectInput, trace: Trace): Step {
  const service = index.service.get(upstreamId)
  if (service) {
    trace.serviceId = upstreamId
    return resolveService(index, service, input, trace)
  }
  const backend = index.backend.get(upstreamId)
  if (!backend) return refuse('stale-frontend', trace)
  trace.backendUid = upstreamId
  if (isSet(backend.waypoint)) {
    trace.waypoint = 'backend'
    return { address: backend.waypoint.address, port: backend.waypoint.port, viaWaypoint: true }
  }
  return leave('direct-access', trace)
}

function resolveService(index: SnapshotIndex, service: IndexedService, input: ConnectInput, trace: Trace): Step {
  if (isSet(service.waypoint)) {
    trace.waypoint = 'service'
    return { address: service.waypoint.address, port: service.waypoint.port, viaWaypoint: true }
  }
  const { record } = service
  const choice = choosePriority(record.lbPolicy, record.prioEndpointCount)
  switch (choice.kind) {
    case 'passthrough':
      return leave('passthrough', trace)
    case 'invalid-policy':
      return refuse('invalid-policy', trace)
    case 'no-endpoint':
      return refuse('no-endpoint', trace)
    case 'bucket':
      break
  }
  const i = indexFor(input.random, choice.count)
  Object.assign(trace, { priority: choice.priority, index: i, count: choice.count })
  const backendUid = index.endpoint.get(endpointKeyOf(record.serviceId, choice.priority, i))
  if (backendUid === undefined) return refuse('missing-endpoint', trace)
  trace.backendUid = backendUid
  const backend: IndexedBackend | undefined = index.backend.get(backendUid)
  if (!backend) return refuse('missing-backend', trace)
  if (isSet(backend.waypoint)) {
    trace.waypoint = 'backend'
    return { address: backend.waypoint.address, port: backend.waypoint.port, viaWaypoint: true }
  }
  const slot = record.ports.find((p) => p.servicePort !== 0 && p.servicePort === input.port)
  if (!slot) return refuse('port-not-served', trace)
  return { address: backend.address, port: slot.targetPort, viaWaypoint: false }
}
