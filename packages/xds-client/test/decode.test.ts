// Decoding and per-resource validation: a round trip of every field, and each rejection rule with its reason.
import t from 'tap'
import {
  DEFAULT_DECODE_LIMITS,
  decodeAddress,
  decodeAuthorization,
  encodeAddress,
  encodeAuthorization,
  InvalidResourceError,
  addressKindByShape,
  serviceKeyProblem,
  TunnelProtocol,
  LoadBalancingMode,
  HealthPolicy,
  AppProtocol,
  protoRoot,
} from '../src/index.js'
import type { AddressInit, AuthorizationInit, WorkloadInit, ServiceInit } from '../src/index.js'

const ip4 = (...b: number[]): Uint8Array => new Uint8Array(b)
const UID = 'Kubernetes//Pod/default/web-0'

function wl(over: WorkloadInit = {}): AddressInit {
  return { workload: { uid: UID, name: 'web-0', namespace: 'default', addresses: [ip4(10, 0, 0, 5)], ...over } }
}
function svc(over: ServiceInit = {}): AddressInit {
  return { service: { name: 'web', namespace: 'default', hostname: 'web.default.svc.cluster.local', ...over } }
}
const SVC_KEY = 'default/web.default.svc.cluster.local'

function rejectReason(fn: () => unknown): string {
  try {
    fn()
  } catch (e) {
    if (e instanceof InvalidResourceError) return e.message
    throw e
  }
  return '(accepted)'
}

t.test('a full workload round-trips, capacity unwrapped', async (t) => {
  const a = decodeAddress(
    encodeAddress(
      wl({
        hostname: '',
        network: 'net1',
        tunnelProtocol: TunnelProtocol.HBONE,
        trustDomain: 'cluster.local',
        serviceAccount: 'web',
        waypoint: { address: { network: 'net1', address: ip4(10, 0, 0, 9) }, hboneMtlsPort: 15008 },
        networkGateway: { hostname: { namespace: 'istio-system', hostname: 'eastwest.example.com' } },
        node: 'n1',
        services: { [SVC_KEY]: { ports: [{ servicePort: 80, targetPort: 8080, appProtocol: AppProtocol.HTTP2 }] } },
        authorizationPolicies: ['default/allow'],
        status: 1,
        clusterId: 'c1',
        locality: { region: 'r', zone: 'z', subzone: 's' },
        applicationTunnel: { protocol: 1, port: 15088 },
        extensions: [{ name: 'x', config: { typeUrl: 'type.googleapis.com/foo', value: ip4(1, 2) } }],
        capacity: 3,
      }),
    ),
    UID,
  )
  const w = a.workload!
  t.equal(w.uid, UID)
  t.same([...w.addresses[0]!], [10, 0, 0, 5])
  t.equal(w.tunnelProtocol, TunnelProtocol.HBONE)
  t.same([...w.waypoint!.address!.address], [10, 0, 0, 9])
  t.equal(w.waypoint!.hboneMtlsPort, 15008)
  t.same(w.networkGateway!.hostname, { namespace: 'istio-system', hostname: 'eastwest.example.com' })
  t.same(w.services[SVC_KEY], { ports: [{ servicePort: 80, targetPort: 8080, appProtocol: AppProtocol.HTTP2 }] })
  t.same(w.locality, { region: 'r', zone: 'z', subzone: 's' })
  t.same(w.applicationTunnel, { protocol: 1, port: 15088 })
  t.equal(w.extensions[0]!.config!.typeUrl, 'type.googleapis.com/foo')
  t.equal(w.capacity, 3)
  t.equal(w.status, 1)
  t.equal(decodeAddress(encodeAddress(wl()), UID).workload!.capacity, undefined, 'unset capacity stays undefined')
  t.equal(decodeAddress(encodeAddress(wl()), UID).workload!.waypoint, undefined, 'absent message is undefined')
})

t.test('a full service round-trips, CIDR VIP length kept, host VIP length absent', async (t) => {
  const s = decodeAddress(
    encodeAddress(
      svc({
        addresses: [
          { network: '', address: ip4(10, 96, 0, 1) },
          { network: '', address: ip4(10, 97, 0, 0), length: 16 },
          { network: '', address: ip4(10, 98, 0, 0), length: 0 },
        ],
        ports: [{ servicePort: 80, targetPort: 8080 }],
        loadBalancing: {
          routingPreference: [6, 1, 2],
          mode: LoadBalancingMode.FAILOVER,
          healthPolicy: HealthPolicy.ALLOW_ALL,
        },
        ipFamilies: 3,
        canonical: true,
        weightedWaypoints: [{ destination: { hostname: { namespace: 'ns', hostname: 'wp.ns.svc' } }, weight: 0 }],
        visibility: 1,
      }),
    ),
    SVC_KEY,
  ).service!
  t.equal(s.addresses[0]!.length, undefined)
  t.equal(s.addresses[1]!.length, 16)
  t.equal(s.addresses[2]!.length, 0, 'an explicit /0 is kept (presence)')
  t.same(s.loadBalancing, { routingPreference: [6, 1, 2], mode: 2, healthPolicy: 1 })
  t.equal(s.ipFamilies, 3)
  t.equal(s.canonical, true)
  t.equal(s.weightedWaypoints[0]!.weight, 0)
  t.equal(s.visibility, 1)
})

t.test('authorization round-trips, including presence, service accounts and dry_run', async (t) => {
  const p: AuthorizationInit = {
    name: 'allow',
    namespace: 'default',
    scope: 2,
    action: 1,
    dryRun: true,
    rules: [
      {
        clauses: [
          {
            matches: [
              {
                principals: [{ presence: {} }, { prefix: 'spiffe://' }],
                serviceAccounts: [{ namespace: 'ns', serviceAccount: 'sa' }],
                sourceIps: [{ address: ip4(10, 0, 0, 0), length: 8 }],
                destinationPorts: [80, 443],
              },
            ],
          },
        ],
      },
    ],
  }
  const a = decodeAuthorization(encodeAuthorization(p), 'default/allow')
  t.equal(a.dryRun, true)
  t.equal(a.scope, 2)
  t.equal(a.action, 1)
  const m = a.rules[0]!.clauses[0]!.matches[0]!
  t.same(m.principals, [{ presence: {} }, { prefix: 'spiffe://' }])
  t.same(m.serviceAccounts, [{ namespace: 'ns', serviceAccount: 'sa' }])
  t.equal(m.sourceIps[0]!.length, 8)
  t.same(m.destinationPorts, [80, 443])
})

/** Encode an Address whose enum field carries a number the enum does not know. */
function withRaw(path: string[], value: unknown, base: AddressInit): Uint8Array {
  const obj = JSON.parse(
    JSON.stringify(base, (_k, v: unknown) => (v instanceof Uint8Array ? { __b: [...v] } : v)),
    (_k, v) => (v && typeof v === 'object' && '__b' in v ? new Uint8Array((v as { __b: number[] }).__b) : v),
  ) as Record<string, unknown>
  let o: Record<string, unknown> = obj
  for (const p of path.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>
  o[path[path.length - 1]!] = value
  const T = protoRoot().lookupType('istio.workload.Address')
  // protobufjs's fromObject keeps unknown enum numbers, as a newer istiod would send them
  return T.encode(T.fromObject(obj)).finish()
}

t.test('rejections name the field and the reason', async (t) => {
  const cases: [string, () => unknown, RegExp][] = [
    [
      'IP of 5 bytes',
      () => decodeAddress(encodeAddress(wl({ addresses: [ip4(1, 2, 3, 4, 5)] })), UID),
      /workload\.addresses\[0\]: IP address must be 4 or 16 bytes, got 5/,
    ],
    [
      '16-byte IPv6 accepted',
      () => decodeAddress(encodeAddress(wl({ addresses: [new Uint8Array(16)] })), UID),
      /\(accepted\)/,
    ],
    [
      'unknown tunnel protocol',
      () => decodeAddress(withRaw(['workload', 'tunnelProtocol'], 7, wl()), UID),
      /workload\.tunnelProtocol: unknown TunnelProtocol value 7/,
    ],
    [
      'unknown workload status',
      () => decodeAddress(withRaw(['workload', 'status'], 9, wl()), UID),
      /unknown WorkloadStatus value 9/,
    ],
    [
      'unknown LB mode',
      () => decodeAddress(withRaw(['service', 'loadBalancing', 'mode'], 4, svc()), SVC_KEY),
      /service\.loadBalancing\.mode: unknown Mode value 4/,
    ],
    [
      'unknown routing scope',
      () => decodeAddress(withRaw(['service', 'loadBalancing', 'routingPreference'], [1, 42], svc()), SVC_KEY),
      /routingPreference\[1\]: unknown Scope value 42/,
    ],
    [
      'unknown visibility',
      () => decodeAddress(withRaw(['service', 'visibility'], 2, svc()), SVC_KEY),
      /unknown Visibility value 2/,
    ],
    [
      'bad service key in workload.services',
      () => decodeAddress(encodeAddress(wl({ services: { 'Default/web': { ports: [] } } })), UID),
      /service key "Default\/web": namespace "Default" is not a DNS-1123 label/,
    ],
    [
      'service key without a slash',
      () => decodeAddress(encodeAddress(wl({ services: { web: { ports: [] } } })), UID),
      /is not namespace\/hostname/,
    ],
    [
      '11 ports over a limit of 10',
      () =>
        decodeAddress(
          encodeAddress(svc({ ports: Array.from({ length: 11 }, (_, i) => ({ servicePort: 80 + i })) })),
          SVC_KEY,
          { maxPortsPerService: 10 },
        ),
      /service\.ports: 11 ports, more than limits\.maxPortsPerService \(10\)/,
    ],
    [
      '10 ports within a limit of 10',
      () =>
        decodeAddress(
          encodeAddress(svc({ ports: Array.from({ length: 10 }, (_, i) => ({ servicePort: 80 + i })) })),
          SVC_KEY,
          { maxPortsPerService: 10 },
        ),
      /\(accepted\)/,
    ],
    [
      'service port 0',
      () => decodeAddress(encodeAddress(svc({ ports: [{ servicePort: 0, targetPort: 80 }] })), SVC_KEY),
      /service\.ports\[0\]\.servicePort: port is 0/,
    ],
    [
      'port over 65535',
      () => decodeAddress(encodeAddress(svc({ ports: [{ servicePort: 70000 }] })), SVC_KEY),
      /port 70000 is out of range/,
    ],
    [
      'malformed hostname',
      () => decodeAddress(encodeAddress(svc({ hostname: 'web..svc' })), 'default/web..svc'),
      /service\.hostname: hostname "web\.\.svc" has a malformed label ""/,
    ],
    [
      'empty namespace',
      () => decodeAddress(encodeAddress(svc({ namespace: '' })), '/web.default.svc.cluster.local'),
      /service\.namespace: namespace is empty/,
    ],
    [
      'CIDR longer than the address',
      () => decodeAddress(encodeAddress(svc({ addresses: [{ address: ip4(10, 0, 0, 0), length: 33 }] })), SVC_KEY),
      /prefix length 33 exceeds 32/,
    ],
    [
      'VIP of 3 bytes',
      () => decodeAddress(encodeAddress(svc({ addresses: [{ address: ip4(10, 0, 0) }] })), SVC_KEY),
      /service\.addresses\[0\]\.address: IP address must be 4 or 16 bytes, got 3/,
    ],
    [
      'waypoint without destination',
      () => decodeAddress(encodeAddress(wl({ waypoint: { hboneMtlsPort: 15008 } })), UID),
      /workload\.waypoint: gateway address has no destination/,
    ],
    [
      'weighted waypoint without destination',
      () => decodeAddress(encodeAddress(svc({ weightedWaypoints: [{ weight: 1 }] })), SVC_KEY),
      /weightedWaypoints\[0\]: weighted waypoint has no destination/,
    ],
    ['empty uid', () => decodeAddress(encodeAddress(wl({ uid: '' })), ''), /workload\.uid: uid is empty/],
    [
      'uid differs from name',
      () => decodeAddress(encodeAddress(wl()), 'other'),
      /uid "Kubernetes\/\/Pod\/default\/web-0" differs from the resource name/,
    ],
    [
      'service key differs from name',
      () => decodeAddress(encodeAddress(svc()), 'default/other'),
      /differs from the resource name/,
    ],
    [
      'neither workload nor service',
      () => decodeAddress(new Uint8Array(0), 'x'),
      /address: neither workload nor service is set/,
    ],
    [
      'garbage bytes',
      () => decodeAddress(new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), 'x'),
      /address: cannot decode istio\.workload\.Address/,
    ],
    [
      'empty string match',
      () =>
        decodeAuthorization(
          encodeAuthorization({
            name: 'p',
            namespace: 'ns',
            rules: [{ clauses: [{ matches: [{ principals: [{}] }] }] }],
          }),
          'ns/p',
        ),
      /matches\[0\]\.principals\[0\]: string match has no match_type set/,
    ],
    [
      'policy address of 2 bytes',
      () =>
        decodeAuthorization(
          encodeAuthorization({
            name: 'p',
            namespace: 'ns',
            rules: [{ clauses: [{ matches: [{ sourceIps: [{ address: ip4(1, 2) }] }] }] }],
          }),
          'ns/p',
        ),
      /sourceIps\[0\]\.address: IP address must be 4 or 16 bytes, got 2/,
    ],
    [
      'policy name mismatch',
      () => decodeAuthorization(encodeAuthorization({ name: 'p', namespace: 'ns' }), 'ns/q'),
      /key "ns\/p" differs from the resource name/,
    ],
  ]
  for (const [what, fn, re] of cases) t.match(rejectReason(fn), re, what)
})

t.test("the port limit is the caller's: none by default", async (t) => {
  const payload = encodeAddress(svc({ ports: [{ servicePort: 1 }, { servicePort: 2 }, { servicePort: 3 }] }))
  t.match(
    rejectReason(() => decodeAddress(payload, SVC_KEY, { maxPortsPerService: 2 })),
    /3 ports, more than limits\.maxPortsPerService \(2\)/,
  )
  t.equal(DEFAULT_DECODE_LIMITS.maxPortsPerService, Infinity, 'this package knows no data path, so no default limit')
  const many = encodeAddress(svc({ ports: Array.from({ length: 64 }, (_, i) => ({ servicePort: 1000 + i })) }))
  t.equal(decodeAddress(many, SVC_KEY).service?.ports.length, 64, 'without limits, 64 ports decode')
})

t.test('removed names are classified by shape like ztunnel does', async (t) => {
  t.equal(addressKindByShape('Kubernetes//Pod/ns/name'), 'workload')
  t.equal(addressKindByShape('ns/web.ns.svc.cluster.local'), 'service')
  t.equal(addressKindByShape('plain-uid'), 'workload')
  t.equal(addressKindByShape('/x'), 'workload')
  t.equal(serviceKeyProblem('ns/*.example.com'), undefined, 'ServiceEntry wildcard host is a valid key')
})
