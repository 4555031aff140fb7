/**
 * resolve(): the hook's whole decision on a map snapshot, one case per branch (the exhaustive kernel
 * comparison is packages/bpf-progs/test/property.kernel.test.ts).
 */
import t from 'tap'
import { resolve, type MapSnapshot } from '../src/index.js'

const wp = { address: '10.9.0.1', port: 15008 }
const snapshot: MapSnapshot = {
  backends: [
    { backendUid: 1, address: '10.1.0.1' },
    { backendUid: 2, address: '10.1.0.2' },
    { backendUid: 3, address: 'fd00::3' },
    { backendUid: 4, address: '10.1.0.4', waypoint: wp },
    { backendUid: 5, address: '10.1.0.5', waypoint: { address: '0.0.0.0', port: 15008 } },
  ],
  endpoints: [
    { serviceId: 100, prio: 0, backendIndex: 1, backendUid: 1 },
    { serviceId: 100, prio: 0, backendIndex: 2, backendUid: 2 },
    { serviceId: 101, prio: 3, backendIndex: 1, backendUid: 3 },
    { serviceId: 102, prio: 0, backendIndex: 1, backendUid: 4 },
    { serviceId: 103, prio: 0, backendIndex: 1, backendUid: 1 }, // count 2: index 2 is a hole
    { serviceId: 104, prio: 0, backendIndex: 1, backendUid: 99 }, // backend 99 is gone
    { serviceId: 105, prio: 0, backendIndex: 1, backendUid: 5 },
  ],
  services: [
    {
      serviceId: 100,
      prioEndpointCount: [2],
      lbPolicy: 0,
      ports: [
        { servicePort: 80, targetPort: 8080 },
        { servicePort: 0, targetPort: 9 },
        { servicePort: 80, targetPort: 1 },
      ],
    },
    { serviceId: 101, prioEndpointCount: [0, 0, 0, 1], lbPolicy: 2, ports: [{ servicePort: 80, targetPort: 8080 }] },
    { serviceId: 102, prioEndpointCount: [1], lbPolicy: 0, ports: [] },
    { serviceId: 103, prioEndpointCount: [2], lbPolicy: 0, ports: [{ servicePort: 80, targetPort: 8080 }] },
    { serviceId: 104, prioEndpointCount: [1], lbPolicy: 0, ports: [{ servicePort: 80, targetPort: 8080 }] },
    { serviceId: 105, prioEndpointCount: [1], lbPolicy: 0, ports: [{ servicePort: 80, targetPort: 8080 }] },
    { serviceId: 106, prioEndpointCount: [0, 0, 0, 1], lbPolicy: 1, ports: [{ servicePort: 80, targetPort: 8080 }] },
    { serviceId: 107, prioEndpointCount: [2], lbPolicy: 3, ports: [] },
    { serviceId: 108, prioEndpointCount: [2], lbPolicy: 9, ports: [] },
    { serviceId: 109, prioEndpointCount: [], lbPolicy: 0, ports: [], waypoint: { address: '::1:2', port: 15008 } },
  ],
  frontends: [
    ...[100, 101, 102, 103, 104, 105, 106, 107, 108].map((id) => ({ address: `10.96.0.${id}`, upstreamId: id })),
    { address: 'fd96::109', upstreamId: 109 },
    { address: 'fd96::101', upstreamId: 101 },
    { address: '10.1.0.1', upstreamId: 1 },
    { address: '10.1.0.4', upstreamId: 4 },
    { address: '10.96.0.250', upstreamId: 250 },
  ],
}

const kind = (r: ReturnType<typeof resolve>): unknown =>
  r.kind === 'rewrite'
    ? [r.address, r.port, r.viaWaypoint]
    : r.kind === 'leave'
      ? ['leave', r.reason]
      : ['refuse', r.errno, r.reason]

t.test('every branch of the decision', async (t) => {
  const at = (destination: string, port: number, random: number): unknown =>
    kind(resolve(snapshot, { destination, port, random }))
  t.same(at('10.96.7.7', 80, 0), ['leave', 'no-frontend'])
  t.same(at('10.96.0.100', 80, 0), ['10.1.0.1', 8080, false], 'index random % 2 + 1 = 1; the first port slot 80 wins')
  t.same(at('10.96.0.100', 80, 0xffffffff), ['10.1.0.2', 8080, false], 'u32 max % 2 = 1 → index 2')
  t.same(
    at('10.96.0.100', 0, 0),
    ['refuse', 'ECONNREFUSED', 'port-not-served'],
    'an empty slot (service port 0) never matches',
  )
  t.same(
    at('10.96.0.101', 80, 5),
    ['refuse', 'EAFNOSUPPORT', 'family-mismatch'],
    'Failover bucket 3: an AF_INET socket cannot reach the IPv6 backend and is refused (Kmesh would connect to its bytes 0..3)',
  )
  t.same(at('fd96::101', 80, 5), ['fd00::3', 8080, false], 'the same from an IPv6 VIP: all 16 bytes')
  t.same(at('10.96.0.102', 80, 0), ['10.9.0.1', 15008, true], "the backend's waypoint wins, port map not consulted")
  t.same(at('10.96.0.103', 80, 1), ['refuse', 'ECONNREFUSED', 'missing-endpoint'], 'a hole: refused, no fall-through')
  t.same(at('10.96.0.104', 80, 0), ['refuse', 'ECONNREFUSED', 'missing-backend'])
  t.same(at('10.96.0.105', 80, 0), ['10.1.0.5', 8080, false], 'a waypoint port without an address is no waypoint')
  t.same(at('10.96.0.106', 80, 0), ['refuse', 'ECONNREFUSED', 'no-endpoint'], 'fail fast: Strict never leaves bucket 0')
  t.same(at('10.96.0.107', 80, 0), ['leave', 'passthrough'])
  t.same(at('10.96.0.108', 80, 0), ['refuse', 'EINVAL', 'invalid-policy'])
  t.same(
    at('fd96::109', 1234, 0),
    ['::1:2', 15008, true],
    "the service's waypoint wins for every port; all 16 bytes tested",
  )
  t.same(at('10.1.0.1', 80, 0), ['leave', 'direct-access'])
  t.same(at('10.1.0.4', 80, 0), ['10.9.0.1', 15008, true], 'direct access through the workload waypoint')
  t.same(at('10.96.0.250', 80, 0), ['refuse', 'ECONNREFUSED', 'stale-frontend'])
  t.same(at('::ffff:10.96.0.100', 80, 1), ['::ffff:10.1.0.2', 8080, false], 'v4-mapped: resolved as IPv4, mapped back')
  t.same(
    at('a60:64::', 80, 1),
    ['::ffff:10.1.0.2', 8080, false],
    'an IPv6 text whose bytes 4..15 are zero has the key bytes of 10.96.0.100; the AF_INET6 socket gets the IPv4 backend as ::ffff:a.b.c.d (Kmesh would connect to a01:2::)',
  )
  t.same(at('a60:fb::', 80, 1), ['leave', 'no-frontend'])
})

t.test('the trace says what was reached', async (t) => {
  const r = resolve(snapshot, { destination: '10.96.0.101', port: 80, random: 7 })
  t.same(r.trace, { upstreamId: 101, serviceId: 101, priority: 3, index: 1, count: 1, backendUid: 3 })
})

t.test('inputs the kernel cannot produce are refused', async (t) => {
  t.throws(() => resolve(snapshot, { destination: '10.96.0.100', port: 80, random: -1 }), RangeError)
  t.throws(() => resolve(snapshot, { destination: '10.96.0.100', port: 70000, random: 0 }), RangeError)
  t.throws(() => resolve(snapshot, { destination: 'vip', port: 80, random: 0 }), TypeError)
})
