// Address payloads read straight from the wire into the typed shapes of types.ts, with no protobufjs message in
// between (issue 13: a full push of 100k workloads built a protobufjs object graph only to copy it into ours).
// It reads the shape istiod sends for nearly every resource: a workload or a service with its names, addresses,
// ports, services map, locality, capacity and load balancing. Anything else — a waypoint, a gateway, an
// application tunnel, extensions, weighted waypoints, a field sent twice where protobufjs would keep the last
// message, a wire type that is not the field's, non-ASCII text, any value the validation would refuse — makes it
// decline (undefined), and decodeAddress reads the payload with protobufjs as before: every error message, and
// every edge of protobufjs's decoding, stays that path's. test/wire-address.test.ts holds both paths equal.
import type { DecodeLimits } from './decode.js'
import {
  AppProtocol,
  HealthPolicy,
  IPFamilies,
  LoadBalancingMode,
  LoadBalancingScope,
  NetworkMode,
  ServiceVisibility,
  TunnelProtocol,
  WorkloadStatus,
  WorkloadType,
} from './enums.js'
import { hostnameProblem, namespaceProblem, serviceKey, serviceKeyProblem } from './names.js'
import type { Address, Locality, LoadBalancing, NetworkAddress, Port, PortList, Service, Workload } from './types.js'
import { LENGTH_DELIMITED, utf8, VARINT, WireFormatError, WireReader } from './wire-reader.js'

/** Thrown inside the reader when the payload is not of the shape it decides; caught by readAddressDirect. */
const DECLINE = Symbol('decline')

function decline(): never {
  throw DECLINE
}

/** Tag of field `n` with wire type `w`, as WireReader.rawTag answers it. */
const tag = (n: number, w: number) => n * 8 + w

/**
 * The Address in `payload`, or undefined when this reader leaves it to protobufjs. Never answers what the
 * protobufjs path would not: a payload that path refuses is always declined here.
 */
export function readAddressDirect(payload: Uint8Array, name: string, limits: DecodeLimits): Address | undefined {
  try {
    const r = new WireReader(payload)
    let out: Address | undefined
    while (!r.done) {
      const t = r.rawTag()
      if (t === tag(1, LENGTH_DELIMITED) && !out) {
        const outer = r.enter()
        const workload = readWorkload(r)
        r.leave(outer)
        if (workload.uid !== name) decline()
        out = { workload }
      } else if (t === tag(2, LENGTH_DELIMITED) && !out) {
        const outer = r.enter()
        const service = readService(r, limits)
        r.leave(outer)
        if (serviceKey(service.namespace, service.hostname) !== name) decline()
        out = { service }
      } else if (t >>> 3 === 1 || t >>> 3 === 2) decline()
      else r.skip(t & 7)
    }
    return out
  } catch (e) {
    if (e === DECLINE || e instanceof WireFormatError) return undefined
    throw e
  }
}

/** An ASCII string (anything else is left to protobufjs's UTF-8 reading). */
function ascii(r: WireReader): string {
  const [s, e] = r.range()
  const buf = r.buf
  for (let i = s; i < e; i++) if (buf[i]! >= 0x80) decline()
  return utf8(buf, s, e)
}

/** The largest value of an enum of enums.ts (each runs 0..max without a gap). */
const maxOf = (e: Readonly<Record<string, number>>): number => Math.max(...Object.values(e))
const MAX = {
  tunnelProtocol: maxOf(TunnelProtocol),
  workloadType: maxOf(WorkloadType),
  status: maxOf(WorkloadStatus),
  networkMode: maxOf(NetworkMode),
  appProtocol: maxOf(AppProtocol),
  ipFamilies: maxOf(IPFamilies),
  visibility: maxOf(ServiceVisibility),
  scope: maxOf(LoadBalancingScope),
  mode: maxOf(LoadBalancingMode),
  healthPolicy: maxOf(HealthPolicy),
}

/** A small non-negative varint of a known enum value (protobufjs reads int32; anything unusual is declined). */
function enumValue(r: WireReader, max: number): number {
  const v = r.varint()
  if (v > max) decline()
  return v
}

/** A bool as protobufjs reads it (the low 32 bits of the varint, non-zero): only 0 and 1 are taken here. */
function bool(r: WireReader): boolean {
  const v = r.varint()
  if (v > 1) decline()
  return v === 1
}

function port16(r: WireReader, allowZero: boolean): number {
  const v = r.varint()
  if (v > 65535 || (!allowZero && v === 0)) decline()
  return v
}

function ipBytes(r: WireReader): Uint8Array {
  const b = r.bytes()
  if (b.length !== 4 && b.length !== 16) decline()
  return b
}

/** Declines a field number this reader knows but does not take (or a known one under another wire type). */
function other(r: WireReader, t: number, known: readonly number[]): void {
  if (known.includes(t >>> 3)) decline()
  r.skip(t & 7)
}

const WORKLOAD_FIELDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27]

function readWorkload(r: WireReader): Workload {
  let uid = ''
  let name = ''
  let namespace = ''
  let hostname = ''
  let network = ''
  let trustDomain = ''
  let serviceAccount = ''
  let node = ''
  let canonicalName = ''
  let canonicalRevision = ''
  let workloadName = ''
  let clusterId = ''
  let tunnelProtocol = 0
  let workloadType = 0
  let status = 0
  let networkMode = 0
  let nativeTunnel = false
  const addresses: Uint8Array[] = []
  const authorizationPolicies: string[] = []
  const services: Record<string, PortList> = {}
  let locality: Locality | undefined
  let capacity: number | undefined
  while (!r.done) {
    const t = r.rawTag()
    switch (t) {
      case tag(20, LENGTH_DELIMITED):
        uid = ascii(r)
        break
      case tag(1, LENGTH_DELIMITED):
        name = ascii(r)
        break
      case tag(2, LENGTH_DELIMITED):
        namespace = ascii(r)
        break
      case tag(3, LENGTH_DELIMITED):
        addresses.push(ipBytes(r))
        break
      case tag(21, LENGTH_DELIMITED):
        hostname = ascii(r)
        break
      case tag(4, LENGTH_DELIMITED):
        network = ascii(r)
        break
      case tag(5, VARINT):
        tunnelProtocol = enumValue(r, MAX.tunnelProtocol)
        break
      case tag(6, LENGTH_DELIMITED):
        trustDomain = ascii(r)
        break
      case tag(7, LENGTH_DELIMITED):
        serviceAccount = ascii(r)
        break
      case tag(9, LENGTH_DELIMITED):
        node = ascii(r)
        break
      case tag(10, LENGTH_DELIMITED):
        canonicalName = ascii(r)
        break
      case tag(11, LENGTH_DELIMITED):
        canonicalRevision = ascii(r)
        break
      case tag(12, VARINT):
        workloadType = enumValue(r, MAX.workloadType)
        break
      case tag(13, LENGTH_DELIMITED):
        workloadName = ascii(r)
        break
      case tag(14, VARINT):
        nativeTunnel = bool(r)
        break
      case tag(22, LENGTH_DELIMITED):
        readServicesEntry(r, services)
        break
      case tag(16, LENGTH_DELIMITED):
        authorizationPolicies.push(ascii(r))
        break
      case tag(17, VARINT):
        status = enumValue(r, MAX.status)
        break
      case tag(18, LENGTH_DELIMITED):
        clusterId = ascii(r)
        break
      case tag(24, LENGTH_DELIMITED): {
        if (locality) decline()
        const outer = r.enter()
        locality = readLocality(r)
        r.leave(outer)
        break
      }
      case tag(25, VARINT):
        networkMode = enumValue(r, MAX.networkMode)
        break
      case tag(27, LENGTH_DELIMITED): {
        if (capacity !== undefined) decline()
        const outer = r.enter()
        capacity = readUInt32Value(r)
        r.leave(outer)
        break
      }
      default:
        other(r, t, WORKLOAD_FIELDS)
    }
  }
  if (uid === '') decline()
  // The shape decodeWorkload builds, key for key.
  return {
    uid,
    name,
    namespace,
    addresses,
    hostname,
    network,
    tunnelProtocol: tunnelProtocol as Workload['tunnelProtocol'],
    trustDomain,
    serviceAccount,
    waypoint: undefined,
    networkGateway: undefined,
    node,
    canonicalName,
    canonicalRevision,
    workloadType: workloadType as Workload['workloadType'],
    workloadName,
    nativeTunnel,
    applicationTunnel: undefined,
    services,
    authorizationPolicies,
    status: status as Workload['status'],
    clusterId,
    locality,
    networkMode: networkMode as Workload['networkMode'],
    extensions: [],
    capacity,
  }
}

/** One `services` map entry: key = field 1, value = PortList (field 2). */
function readServicesEntry(r: WireReader, services: Record<string, PortList>): void {
  const outer = r.enter()
  let key: string | undefined
  let ports: PortList | undefined
  while (!r.done) {
    const t = r.rawTag()
    if (t === tag(1, LENGTH_DELIMITED) && key === undefined) key = ascii(r)
    else if (t === tag(2, LENGTH_DELIMITED) && ports === undefined) {
      const o = r.enter()
      ports = readPortList(r)
      r.leave(o)
    } else other(r, t, [1, 2])
  }
  r.leave(outer)
  // A key sent twice (protobufjs keeps the last value) or an entry without one is left to protobufjs.
  if (key === undefined || Object.hasOwn(services, key) || serviceKeyProblem(key)) decline()
  services[key] = ports ?? { ports: [] }
}

function readPortList(r: WireReader): PortList {
  const ports: Port[] = []
  while (!r.done) {
    const t = r.rawTag()
    if (t === tag(1, LENGTH_DELIMITED)) {
      const o = r.enter()
      ports.push(readPort(r))
      r.leave(o)
    } else other(r, t, [1])
  }
  return { ports }
}

function readPort(r: WireReader): Port {
  let servicePort = 0
  let targetPort = 0
  let appProtocol = 0
  while (!r.done) {
    const t = r.rawTag()
    if (t === tag(1, VARINT)) servicePort = port16(r, true)
    else if (t === tag(2, VARINT)) targetPort = port16(r, true)
    else if (t === tag(3, VARINT)) appProtocol = enumValue(r, MAX.appProtocol)
    else other(r, t, [1, 2, 3])
  }
  if (servicePort === 0) decline()
  return { servicePort, targetPort, appProtocol: appProtocol as Port['appProtocol'] }
}

function readLocality(r: WireReader): Locality {
  let region = ''
  let zone = ''
  let subzone = ''
  while (!r.done) {
    const t = r.rawTag()
    if (t === tag(1, LENGTH_DELIMITED)) region = ascii(r)
    else if (t === tag(2, LENGTH_DELIMITED)) zone = ascii(r)
    else if (t === tag(3, LENGTH_DELIMITED)) subzone = ascii(r)
    else other(r, t, [1, 2, 3])
  }
  return { region, zone, subzone }
}

/** google.protobuf.UInt32Value: field 1, uint32 (a value past 32 bits is left to protobufjs's truncation). */
function readUInt32Value(r: WireReader): number {
  let value = 0
  while (!r.done) {
    const t = r.rawTag()
    if (t === tag(1, VARINT)) {
      value = r.varint()
      if (value > 0xffffffff) decline()
    } else other(r, t, [1])
  }
  return value
}

const SERVICE_FIELDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]

function readService(r: WireReader, limits: DecodeLimits): Service {
  let name = ''
  let namespace = ''
  let hostname = ''
  const addresses: NetworkAddress[] = []
  const ports: Port[] = []
  const subjectAltNames: string[] = []
  let loadBalancing: LoadBalancing | undefined
  let ipFamilies = 0
  let canonical = false
  let ingressUseWaypoint = false
  let visibility = 0
  while (!r.done) {
    const t = r.rawTag()
    switch (t) {
      case tag(1, LENGTH_DELIMITED):
        name = ascii(r)
        break
      case tag(2, LENGTH_DELIMITED):
        namespace = ascii(r)
        break
      case tag(3, LENGTH_DELIMITED):
        hostname = ascii(r)
        break
      case tag(4, LENGTH_DELIMITED): {
        const o = r.enter()
        addresses.push(readNetworkAddress(r))
        r.leave(o)
        break
      }
      case tag(5, LENGTH_DELIMITED): {
        const o = r.enter()
        ports.push(readPort(r))
        r.leave(o)
        break
      }
      case tag(6, LENGTH_DELIMITED):
        subjectAltNames.push(ascii(r))
        break
      case tag(8, LENGTH_DELIMITED): {
        if (loadBalancing) decline()
        const o = r.enter()
        loadBalancing = readLoadBalancing(r)
        r.leave(o)
        break
      }
      case tag(9, VARINT):
        ipFamilies = enumValue(r, MAX.ipFamilies)
        break
      case tag(11, VARINT):
        canonical = bool(r)
        break
      case tag(12, VARINT):
        ingressUseWaypoint = bool(r)
        break
      case tag(14, VARINT):
        visibility = enumValue(r, MAX.visibility)
        break
      default:
        other(r, t, SERVICE_FIELDS)
    }
  }
  if (namespaceProblem(namespace) || hostnameProblem(hostname)) decline()
  if (ports.length > limits.maxPortsPerService) decline()
  // The shape decodeService builds, key for key.
  return {
    name,
    namespace,
    hostname,
    addresses,
    ports,
    subjectAltNames,
    waypoint: undefined,
    loadBalancing,
    ipFamilies: ipFamilies as Service['ipFamilies'],
    extensions: [],
    canonical,
    ingressUseWaypoint,
    weightedWaypoints: [],
    visibility: visibility as Service['visibility'],
  }
}

function readNetworkAddress(r: WireReader): NetworkAddress {
  let network = ''
  let address: Uint8Array | undefined
  let length: number | undefined
  while (!r.done) {
    const t = r.rawTag()
    if (t === tag(1, LENGTH_DELIMITED)) network = ascii(r)
    else if (t === tag(2, LENGTH_DELIMITED)) address = r.bytes()
    else if (t === tag(3, VARINT)) length = r.varint()
    else other(r, t, [1, 2, 3])
  }
  if (!address || (address.length !== 4 && address.length !== 16)) decline()
  const out: NetworkAddress = { network, address }
  if (length !== undefined) {
    if (length > address.length * 8) decline()
    out.length = length
  }
  return out
}

function readLoadBalancing(r: WireReader): LoadBalancing {
  const routingPreference: number[] = []
  let mode = 0
  let healthPolicy = 0
  while (!r.done) {
    const t = r.rawTag()
    if (t === tag(1, VARINT)) routingPreference.push(enumValue(r, MAX.scope))
    else if (t === tag(1, LENGTH_DELIMITED)) {
      const o = r.enter()
      while (!r.done) routingPreference.push(enumValue(r, MAX.scope))
      r.leave(o)
    } else if (t === tag(2, VARINT)) mode = enumValue(r, MAX.mode)
    else if (t === tag(3, VARINT)) healthPolicy = enumValue(r, MAX.healthPolicy)
    else other(r, t, [1, 2, 3])
  }
  return {
    routingPreference: routingPreference as LoadBalancing['routingPreference'],
    mode: mode as LoadBalancing['mode'],
    healthPolicy: healthPolicy as LoadBalancing['healthPolicy'],
  }
}
