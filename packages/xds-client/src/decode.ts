// Decode one resource payload and validate it on its own (docs/reference/istio-workload-api.md §3.2: one bad resource
// rejects only itself). Reads the message objects that protobufjs's reflection decoder produces (proto3 defaults
// on the prototype, absent messages null) and builds the plain shapes of types.ts, failing with the path of the
// first bad field.
import type protobuf from 'protobufjs'
import { PROTO_ENUMS } from './enums.js'
import { hostnameProblem, namespaceProblem, policyKey, serviceKey, serviceKeyProblem } from './names.js'
import { types } from './proto.js'
import { readAddressDirect } from './wire-address.js'
import type {
  Address,
  ApplicationTunnel,
  Authorization,
  AuthorizationAddress,
  Extension,
  GatewayAddress,
  LoadBalancing,
  Locality,
  Match,
  NetworkAddress,
  Port,
  PortList,
  Rule,
  Service,
  ServiceAccountMatch,
  StringMatch,
  WeightedWaypoint,
  Workload,
} from './types.js'

/**
 * Limits of the consumer's storage, checked while decoding so that a resource the consumer cannot hold is NACKed.
 * This package knows no consumer: by default nothing is limited, and the consumer passes what it can store.
 */
export interface DecodeLimits {
  /** Ports a service may carry; a positive integer, or Infinity (the default) for no limit. */
  maxPortsPerService: number
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = { maxPortsPerService: Infinity }

/** A resource that failed decoding or validation; `message` is `path: reason`. */
export class InvalidResourceError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`)
    this.name = 'InvalidResourceError'
  }
}

type Msg = { readonly [field: string]: unknown }

function fail(path: string, reason: string): never {
  throw new InvalidResourceError(path, reason)
}

function str(m: Msg, f: string): string {
  const v = m[f]
  return typeof v === 'string' ? v : ''
}
function num(m: Msg, f: string): number {
  const v = m[f]
  return typeof v === 'number' ? v : 0
}
function bool(m: Msg, f: string): boolean {
  return m[f] === true
}
function bytes(m: Msg, f: string): Uint8Array {
  const v = m[f]
  return v instanceof Uint8Array ? v : new Uint8Array(0)
}
function sub(m: Msg, f: string): Msg | undefined {
  const v = m[f]
  return v !== null && typeof v === 'object' ? (v as Msg) : undefined
}
function list(m: Msg, f: string): readonly unknown[] {
  const v = m[f]
  return Array.isArray(v) ? v : []
}
function msgs(m: Msg, f: string): Msg[] {
  return list(m, f) as Msg[]
}
function strings(m: Msg, f: string): string[] {
  return list(m, f).map((v) => String(v))
}

const enumValues = new Map<string, ReadonlySet<number>>(
  Object.entries(PROTO_ENUMS).map(([name, e]) => [name, new Set<number>(Object.values(e))]),
)

/** A known value of the named proto enum (proto3 enums are open: unknown numbers decode as-is). */
/** Field `f` of `m` as a value of the enum; a failure names `${parent}.${f}` (built only then: this is hot). */
function enumValue<T extends number>(m: Msg, f: string, enumName: keyof typeof PROTO_ENUMS, parent: Path): T {
  return checkedEnum(num(m, f), enumName, parent, f)
}

function checkedEnum<T extends number>(v: number, enumName: keyof typeof PROTO_ENUMS, parent: Path, f: string): T {
  if (!enumValues.get(enumName)?.has(v))
    fail(`${pathText(parent)}.${f}`, `unknown ${enumName.split('.').pop()} value ${v}`)
  return v as T
}

/**
 * Where a field is, for a failure: text, or a function that makes it. The hot paths (every port and address of a
 * 100k-workload push) pass the parent and the field, so no path string is built unless something fails.
 */
type Path = string | (() => string)
const pathText = (p: Path): string => (typeof p === 'string' ? p : p())

function ipBytes(b: Uint8Array, parent: Path, field: string): Uint8Array {
  // ztunnel byte_to_ip: any other length is an error (reference §1.2)
  if (b.length !== 4 && b.length !== 16)
    fail(`${pathText(parent)}${field}`, `IP address must be 4 or 16 bytes, got ${b.length}`)
  return b
}

function portNumber(v: number, parent: Path, field: string, allowZero: boolean): number {
  if (v > 65535) fail(`${pathText(parent)}${field}`, `port ${v} is out of range`)
  if (!allowZero && v === 0) fail(`${pathText(parent)}${field}`, 'port is 0')
  return v
}

function prefixLength(len: number, addr: Uint8Array, path: string): number {
  const max = addr.length * 8
  if (len > max) fail(path, `prefix length ${len} exceeds ${max} for a ${addr.length}-byte address`)
  return len
}

function networkAddress(m: Msg, path: string): NetworkAddress {
  const address = ipBytes(bytes(m, 'address'), path, '.address')
  const out: NetworkAddress = { network: str(m, 'network'), address }
  const len = m['length']
  if (typeof len === 'number') out.length = prefixLength(len, address, `${path}.length`)
  return out
}

function namespacedHostname(m: Msg, path: string): { namespace: string; hostname: string } {
  const namespace = str(m, 'namespace')
  const hostname = str(m, 'hostname')
  const p = namespaceProblem(namespace) ?? hostnameProblem(hostname)
  if (p) fail(path, p)
  return { namespace, hostname }
}

function gatewayAddress(m: Msg, path: string): GatewayAddress {
  const out: GatewayAddress = { hboneMtlsPort: portNumber(num(m, 'hboneMtlsPort'), path, '.hboneMtlsPort', true) }
  const host = sub(m, 'hostname')
  const addr = sub(m, 'address')
  if (host) out.hostname = namespacedHostname(host, `${path}.hostname`)
  else if (addr) out.address = networkAddress(addr, `${path}.address`)
  else fail(path, 'gateway address has no destination (neither hostname nor address)')
  return out
}

function port(m: Msg, path: Path): Port {
  return {
    servicePort: portNumber(num(m, 'servicePort'), path, '.servicePort', false),
    targetPort: portNumber(num(m, 'targetPort'), path, '.targetPort', true),
    appProtocol: enumValue(m, 'appProtocol', 'istio.workload.AppProtocol', path),
  }
}

function extension(m: Msg): Extension {
  const out: Extension = { name: str(m, 'name') }
  const c = sub(m, 'config')
  // protobufjs's bundled google.protobuf.Any keeps the proto name type_url
  if (c) out.config = { typeUrl: str(c, 'type_url'), value: bytes(c, 'value') }
  return out
}

function loadBalancing(m: Msg, path: string): LoadBalancing {
  const prefs = list(m, 'routingPreference').map((v, i) => {
    const n = typeof v === 'number' ? v : -1
    return checkedEnum<LoadBalancing['routingPreference'][number]>(
      n,
      'istio.workload.LoadBalancing.Scope',
      path,
      `routingPreference[${i}]`,
    )
  })
  return {
    routingPreference: prefs,
    mode: enumValue(m, 'mode', 'istio.workload.LoadBalancing.Mode', path),
    healthPolicy: enumValue(m, 'healthPolicy', 'istio.workload.LoadBalancing.HealthPolicy', path),
  }
}

function weightedWaypoint(m: Msg, path: string): WeightedWaypoint {
  const d = sub(m, 'destination')
  if (!d) fail(path, 'weighted waypoint has no destination')
  return { destination: gatewayAddress(d, `${path}.destination`), weight: num(m, 'weight') }
}

export function decodeService(m: Msg, limits: DecodeLimits, path = 'service'): Service {
  const namespace = str(m, 'namespace')
  const hostname = str(m, 'hostname')
  const p = namespaceProblem(namespace)
  if (p) fail(`${path}.namespace`, p)
  const h = hostnameProblem(hostname)
  if (h) fail(`${path}.hostname`, h)
  const ports = msgs(m, 'ports')
  if (ports.length > limits.maxPortsPerService) {
    fail(`${path}.ports`, `${ports.length} ports, more than limits.maxPortsPerService (${limits.maxPortsPerService})`)
  }
  const wp = sub(m, 'waypoint')
  const lb = sub(m, 'loadBalancing')
  return {
    name: str(m, 'name'),
    namespace,
    hostname,
    addresses: msgs(m, 'addresses').map((a, i) => networkAddress(a, `${path}.addresses[${i}]`)),
    ports: ports.map((x, i) => port(x, () => `${path}.ports[${i}]`)),
    subjectAltNames: strings(m, 'subjectAltNames'),
    waypoint: wp ? gatewayAddress(wp, `${path}.waypoint`) : undefined,
    loadBalancing: lb ? loadBalancing(lb, `${path}.loadBalancing`) : undefined,
    ipFamilies: enumValue(m, 'ipFamilies', 'istio.workload.IPFamilies', path),
    extensions: msgs(m, 'extensions').map(extension),
    canonical: bool(m, 'canonical'),
    ingressUseWaypoint: bool(m, 'ingressUseWaypoint'),
    weightedWaypoints: msgs(m, 'weightedWaypoints').map((w, i) =>
      weightedWaypoint(w, `${path}.weightedWaypoints[${i}]`),
    ),
    visibility: enumValue(m, 'visibility', 'istio.workload.Service.Visibility', path),
  }
}

function portList(m: Msg, path: Path): PortList {
  return { ports: msgs(m, 'ports').map((x, i) => port(x, () => `${pathText(path)}.ports[${i}]`)) }
}

export function decodeWorkload(m: Msg, path = 'workload'): Workload {
  const uid = str(m, 'uid')
  if (uid === '') fail(`${path}.uid`, 'uid is empty')
  const servicesIn = sub(m, 'services') ?? {}
  const services: Record<string, PortList> = {}
  for (const [key, pl] of Object.entries(servicesIn)) {
    const kp = serviceKeyProblem(key)
    if (kp) fail(`${path}.services`, kp)
    services[key] = portList((pl ?? {}) as Msg, () => `${path}.services["${key}"]`)
  }
  const wp = sub(m, 'waypoint')
  const gw = sub(m, 'networkGateway')
  const at = sub(m, 'applicationTunnel')
  const loc = sub(m, 'locality')
  const cap = sub(m, 'capacity')
  let applicationTunnel: ApplicationTunnel | undefined
  if (at) {
    applicationTunnel = {
      protocol: enumValue(at, 'protocol', 'istio.workload.ApplicationTunnel.Protocol', `${path}.applicationTunnel`),
      port: portNumber(num(at, 'port'), path, '.applicationTunnel.port', true),
    }
  }
  let locality: Locality | undefined
  if (loc) locality = { region: str(loc, 'region'), zone: str(loc, 'zone'), subzone: str(loc, 'subzone') }
  return {
    uid,
    name: str(m, 'name'),
    namespace: str(m, 'namespace'),
    addresses: list(m, 'addresses').map((b, i) =>
      ipBytes(b instanceof Uint8Array ? b : new Uint8Array(0), path, `.addresses[${i}]`),
    ),
    hostname: str(m, 'hostname'),
    network: str(m, 'network'),
    tunnelProtocol: enumValue(m, 'tunnelProtocol', 'istio.workload.TunnelProtocol', path),
    trustDomain: str(m, 'trustDomain'),
    serviceAccount: str(m, 'serviceAccount'),
    waypoint: wp ? gatewayAddress(wp, `${path}.waypoint`) : undefined,
    networkGateway: gw ? gatewayAddress(gw, `${path}.networkGateway`) : undefined,
    node: str(m, 'node'),
    canonicalName: str(m, 'canonicalName'),
    canonicalRevision: str(m, 'canonicalRevision'),
    workloadType: enumValue(m, 'workloadType', 'istio.workload.WorkloadType', path),
    workloadName: str(m, 'workloadName'),
    nativeTunnel: bool(m, 'nativeTunnel'),
    applicationTunnel,
    services,
    authorizationPolicies: strings(m, 'authorizationPolicies'),
    status: enumValue(m, 'status', 'istio.workload.WorkloadStatus', path),
    clusterId: str(m, 'clusterId'),
    locality,
    networkMode: enumValue(m, 'networkMode', 'istio.workload.NetworkMode', path),
    extensions: msgs(m, 'extensions').map(extension),
    capacity: cap ? num(cap, 'value') : undefined,
  }
}

function stringMatch(m: Msg, path: string): StringMatch {
  // oneof members that are set are own properties; the prototype carries "" defaults for all of them
  for (const f of ['exact', 'prefix', 'suffix'] as const) {
    if (Object.hasOwn(m, f) && typeof m[f] === 'string') return { [f]: m[f] as string }
  }
  if (sub(m, 'presence')) return { presence: {} }
  return fail(path, 'string match has no match_type set')
}

function authzAddress(m: Msg, path: string): AuthorizationAddress {
  const address = ipBytes(bytes(m, 'address'), path, '.address')
  return { address, length: prefixLength(num(m, 'length'), address, `${path}.length`) }
}

function serviceAccountMatch(m: Msg, path: string): ServiceAccountMatch {
  const namespace = str(m, 'namespace')
  const serviceAccount = str(m, 'serviceAccount')
  if (namespace === '' || serviceAccount === '') fail(path, 'service account match needs namespace and serviceAccount')
  return { namespace, serviceAccount }
}

function match(m: Msg, path: string): Match {
  const sm = (f: string) => msgs(m, f).map((x, i) => stringMatch(x, `${path}.${f}[${i}]`))
  const sa = (f: string) => msgs(m, f).map((x, i) => serviceAccountMatch(x, `${path}.${f}[${i}]`))
  const ad = (f: string) => msgs(m, f).map((x, i) => authzAddress(x, `${path}.${f}[${i}]`))
  const ports = (f: string) =>
    list(m, f).map((v, i) => portNumber(typeof v === 'number' ? v : 0, path, `.${f}[${i}]`, false))
  return {
    namespaces: sm('namespaces'),
    notNamespaces: sm('notNamespaces'),
    serviceAccounts: sa('serviceAccounts'),
    notServiceAccounts: sa('notServiceAccounts'),
    principals: sm('principals'),
    notPrincipals: sm('notPrincipals'),
    sourceIps: ad('sourceIps'),
    notSourceIps: ad('notSourceIps'),
    destinationIps: ad('destinationIps'),
    notDestinationIps: ad('notDestinationIps'),
    destinationPorts: ports('destinationPorts'),
    notDestinationPorts: ports('notDestinationPorts'),
    extensions: msgs(m, 'extensions').map(extension),
  }
}

export function decodeAuthorizationMessage(m: Msg, path = 'authorization'): Authorization {
  const name = str(m, 'name')
  const namespace = str(m, 'namespace')
  if (name === '') fail(`${path}.name`, 'name is empty')
  const p = namespaceProblem(namespace)
  if (p) fail(`${path}.namespace`, p)
  const rules: Rule[] = msgs(m, 'rules').map((r, i) => ({
    clauses: msgs(r, 'clauses').map((c, j) => ({
      matches: msgs(c, 'matches').map((x, k) => match(x, `${path}.rules[${i}].clauses[${j}].matches[${k}]`)),
    })),
  }))
  return {
    name,
    namespace,
    scope: enumValue(m, 'scope', 'istio.security.Scope', path),
    action: enumValue(m, 'action', 'istio.security.Action', path),
    rules,
    dryRun: bool(m, 'dryRun'),
    extensions: msgs(m, 'extensions').map(extension),
  }
}

function decodeMessage(type: protobuf.Type, payload: Uint8Array, what: string): Msg {
  try {
    return type.decode(payload) as unknown as Msg
  } catch (e) {
    return fail(what, `cannot decode ${type.fullName.slice(1)}: ${(e as Error).message}`)
  }
}

/**
 * Decode and validate an Address payload. `name` is the xDS resource name, which must be the workload's uid or
 * the service's `namespace/hostname` (reference §1.1).
 */
export function decodeAddress(
  payload: Uint8Array,
  name: string,
  limits: DecodeLimits = DEFAULT_DECODE_LIMITS,
): Address {
  return readAddressDirect(payload, name, limits) ?? decodeAddressWithProtobufjs(payload, name, limits)
}

/**
 * decodeAddress through protobufjs's message objects: every payload the direct reader declines (wire-address.ts),
 * and the reference it is held equal to.
 */
export function decodeAddressWithProtobufjs(
  payload: Uint8Array,
  name: string,
  limits: DecodeLimits = DEFAULT_DECODE_LIMITS,
): Address {
  const m = decodeMessage(types.address, payload, 'address')
  const w = sub(m, 'workload')
  const s = sub(m, 'service')
  if (w) {
    const workload = decodeWorkload(w)
    if (workload.uid !== name) fail('workload.uid', `uid "${workload.uid}" differs from the resource name`)
    return { workload }
  }
  if (s) {
    const service = decodeService(s, limits)
    const key = serviceKey(service.namespace, service.hostname)
    if (key !== name) fail('service', `key "${key}" differs from the resource name`)
    return { service }
  }
  return fail('address', 'neither workload nor service is set')
}

/** Decode and validate an Authorization payload; `name` must be its `namespace/name`. */
export function decodeAuthorization(payload: Uint8Array, name: string): Authorization {
  const a = decodeAuthorizationMessage(decodeMessage(types.authorization, payload, 'authorization'))
  const key = policyKey(a.namespace, a.name)
  if (key !== name) fail('authorization', `key "${key}" differs from the resource name`)
  return a
}
