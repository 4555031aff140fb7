import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import t from 'tap'

import { formatProblem, MeshFileError, parseMeshFile, readMeshFile } from '../src/mesh-file/index.js'
import { FIXTURES, refused, service, workload } from './mesh-file-helpers.js'

t.test('example A (reference §7.1): minimal single-node file', async (t) => {
  const { config, warnings, notEnforced } = await readMeshFile(join(FIXTURES, 'example-a.yaml'))
  t.same(warnings, [])
  t.same(notEnforced, [])
  t.equal(config.workloads.length, 2)
  t.equal(config.policies.length, 0)
  const [client, echo] = config.workloads
  t.match(client, {
    uid: 'cluster1//v1/Pod/default/client',
    name: 'client',
    namespace: 'default',
    serviceAccount: 'client',
    trustDomain: 'cluster.local',
    network: '',
    node: 'local',
    workloadIps: ['127.0.0.1'],
    protocol: 'HBONE',
    services: {},
  })
  // Defaults of every key the file leaves out (§4).
  t.same(echo, {
    uid: 'cluster1//v1/Pod/default/echo',
    name: 'echo',
    namespace: 'default',
    workloadIps: ['127.0.0.2'],
    hostname: '',
    network: '',
    protocol: 'TCP',
    networkMode: 'Standard',
    trustDomain: 'cluster.local',
    serviceAccount: 'echo',
    clusterId: '',
    node: 'local',
    workloadName: '',
    workloadType: '',
    canonicalName: '',
    canonicalRevision: '',
    status: 'Healthy',
    capacity: 1,
    nativeTunnel: false,
    authorizationPolicies: [],
    services: { 'default/echo.default.svc.cluster.local': { 80: 8080 } },
  })
  t.same(config.services, [
    {
      name: 'echo',
      namespace: 'default',
      hostname: 'echo.default.svc.cluster.local',
      vips: [{ network: '', ip: '127.10.0.1' }],
      cidrVips: [],
      ports: { 80: 8080 },
      endpoints: {},
      subjectAltNames: [],
      weightedWaypoints: [],
      canonical: false,
      visibility: 'Public',
    },
  ])
})

t.test('example B (reference §7.2): locality failover, capacity, ALLOW and DENY', async (t) => {
  const { config, warnings, notEnforced } = await readMeshFile(join(FIXTURES, 'example-b.yaml'))
  t.same(warnings, [])
  t.equal(config.workloads.length, 5)
  const byName = new Map(config.workloads.map((w) => [w.name, w]))
  t.same(byName.get('web-0')?.locality, { region: 'us-east1', zone: 'us-east1-b', subzone: '' })
  t.equal(byName.get('web-0')?.canonicalRevision, 'v1')
  t.equal(byName.get('web-0')?.workloadType, 'deployment')
  t.equal(byName.get('reviews-0')?.capacity, 2)
  t.equal(byName.get('reviews-1')?.capacity, 1)
  t.same(byName.get('reviews-2')?.locality, { region: 'us-east1', zone: 'us-east1-c', subzone: '' })
  t.equal(byName.get('reviews-3')?.status, 'Unhealthy')
  t.same(byName.get('reviews-3')?.authorizationPolicies, ['backend/allow-web'])
  t.same(byName.get('reviews-3')?.services, { 'backend/reviews.backend.svc.cluster.local': { 9080: 9080 } })

  const [reviews] = config.services
  t.match(reviews, {
    vips: [{ network: '', ip: '10.96.0.50' }],
    ports: { 9080: 9080 },
    subjectAltNames: ['spiffe://cluster.local/ns/backend/sa/reviews'],
    ipFamilies: 'IPv4',
    canonical: true,
    loadBalancer: { routingPreferences: ['Region', 'Zone'], mode: 'Failover', healthPolicy: 'OnlyHealthy' },
  })

  t.equal(config.policies.length, 2)
  const [allow, deny] = config.policies
  t.match(allow, { name: 'allow-web', namespace: 'backend', scope: 'WorkloadSelector', action: 'Allow', dryRun: false })
  t.equal(allow?.rules.length, 1)
  t.equal(allow?.rules[0]?.length, 2, 'one rule of two clauses')
  t.same(
    allow?.rules[0]?.[0]?.map((m) => [m.principals, m.namespaces]),
    [
      [[{ kind: 'Exact', value: 'cluster.local/ns/frontend/sa/web' }], []],
      [[], [{ kind: 'Prefix', value: 'monitoring-' }]],
    ],
  )
  t.same(allow?.rules[0]?.[1]?.[0]?.destinationPorts, [9080])
  t.match(deny, { name: 'deny-untrusted', scope: 'Namespace', action: 'Deny', dryRun: false })
  t.same(deny?.rules[0]?.[0]?.[0]?.sourceIps, ['192.168.0.0/16', '2001:db8::/32'])
  t.same(deny?.rules[1]?.[0]?.[0]?.serviceAccounts, [{ namespace: 'legacy', serviceAccount: 'batch' }])
  t.same(deny?.rules[1]?.[1]?.[0]?.notDestinationPorts, [9080])

  t.same(notEnforced, [
    'subjectAltNames: 1 service (backend/reviews.backend.svc.cluster.local): not used yet (no identity checks on the data path)',
    'ipFamilies: 1 service (backend/reviews.backend.svc.cluster.local): not used yet; every listed vip is served',
  ])
})

t.test('example C (reference §7.3): waypoints, multi-network, dual-stack, CIDR, endpoints, dry-run', async (t) => {
  const { config, warnings, notEnforced } = await readMeshFile(join(FIXTURES, 'example-c.yaml'))
  t.same(warnings, [], 'every reference in example C resolves')
  const w = new Map(config.workloads.map((x) => [x.name, x]))
  t.same(w.get('waypoint-canary-0')?.applicationTunnel, { protocol: 'PROXY', port: 15088 })
  t.same(w.get('cart-0')?.workloadIps, ['10.0.2.30', 'fd00:10:0:2::30'])
  t.same(w.get('cart-0')?.waypoint, {
    destination: { kind: 'hostname', namespace: 'shop', hostname: 'waypoint.shop.svc.cluster.local' },
    hboneMtlsPort: 15008,
  })
  t.same(w.get('cart-1')?.networkGateway, {
    destination: { kind: 'address', network: 'net2', ip: '192.0.2.10' },
    hboneMtlsPort: 15008,
  })
  t.equal(w.get('cart-1')?.node, '', 'node defaults to ""')
  t.equal(w.get('node-agent-b')?.networkMode, 'HostNetwork')
  t.match(w.get('db'), { workloadIps: [], hostname: 'db.internal.example.com', nativeTunnel: false, status: 'Healthy' })

  const s = new Map(config.services.map((x) => [x.name, x]))
  const cart = s.get('cart')
  t.same(cart?.vips, [
    { network: '', ip: '10.96.2.30' },
    { network: '', ip: 'fd00:10:96::2:30' },
  ])
  t.equal(cart?.ipFamilies, 'Dual')
  t.equal(cart?.visibility, 'Namespace')
  t.same(cart?.weightedWaypoints, [
    {
      destination: {
        destination: { kind: 'hostname', namespace: 'shop', hostname: 'waypoint.shop.svc.cluster.local' },
        hboneMtlsPort: 15008,
      },
      weight: 90,
    },
    {
      destination: { destination: { kind: 'address', network: '', ip: '10.0.2.11' }, hboneMtlsPort: 15008 },
      weight: 10,
    },
  ])
  t.same(cart?.loadBalancer, { routingPreferences: ['Network', 'Cluster'], mode: 'Failover', healthPolicy: 'AllowAll' })
  const dbUid = 'cluster1/networking.istio.io/ServiceEntry/shop/db/db.internal.example.com'
  t.same(s.get('db')?.endpoints, { [dbUid]: { workloadUid: dbUid, port: { 5432: 5432 }, status: 'Healthy' } })
  t.same(s.get('partner-api')?.cidrVips, [{ network: '', cidr: '203.0.113.0/24' }])
  t.same(s.get('partner-api')?.loadBalancer, {
    routingPreferences: [],
    mode: 'Passthrough',
    healthPolicy: 'OnlyHealthy',
  })

  const [cartAllow, flag] = config.policies
  t.same(cartAllow?.rules[0]?.[0]?.[0]?.principals, [{ kind: 'Suffix', value: '/sa/waypoint' }])
  t.same(cartAllow?.rules[0]?.[0]?.[0]?.namespaces, [{ kind: 'Exact', value: 'shop' }])
  t.same(cartAllow?.rules[0]?.[1]?.[0]?.destinationIps, ['10.0.2.30/32', 'fd00:10:0:2::30/128'])
  t.match(flag, { scope: 'Global', action: 'Deny', dryRun: true })
  t.same(flag?.rules[0]?.[0]?.[0]?.notPrincipals, [{ kind: 'Presence' }])
  t.same(flag?.rules[0]?.[0]?.[0]?.notSourceIps, ['127.0.0.0/8'])

  t.same(notEnforced, [
    'weightedWaypoints: 1 service (shop/cart.shop.svc.cluster.local): not used yet',
    'cidrVips: 1 service (shop/api.partner.example.com): not used yet; only exact vips are intercepted',
    'applicationTunnel: 1 workload (cluster1//v1/Pod/shop/waypoint-canary-0): not used yet',
    'networkGateway: 1 workload (cluster2//v1/Pod/shop/cart-1): not used yet; no cross-network routing',
    'visibility: 1 service (shop/cart.shop.svc.cluster.local): not enforced yet; the service is reachable from every namespace',
    'ipFamilies: 1 service (shop/cart.shop.svc.cluster.local): not used yet; every listed vip is served',
    `hostname: 1 workload (${dbUid}): hostname-only workloads are not resolved yet; they get no backend`,
  ])
})

t.test('notEnforced: nativeTunnel, and nothing for a file that uses only enforced fields', async (t) => {
  const text = `workloads:\n${workload('a', 'nativeTunnel: true')}\n${workload('b', 'capacity: 1')}\n`
  const { notEnforced } = parseMeshFile(text, 'm.yaml')
  t.same(notEnforced, ['nativeTunnel: 1 workload (a): not used yet'])
  t.same(parseMeshFile(`workloads:\n${workload('a', 'nativeTunnel: false')}\n`, 'm.yaml').notEnforced, [])
})

t.test('an empty {} file is an empty mesh', async (t) => {
  const r = parseMeshFile('{}\n', 'empty.yaml')
  t.same(r, { config: { workloads: [], services: [], policies: [] }, warnings: [], notEnforced: [] })
})

t.test('empty lists are an empty mesh; a top-level list with no value (null) is refused', async (t) => {
  const r = parseMeshFile('workloads: []\nservices: []\npolicies: []\n', 'm.yaml')
  t.same(r.config, { workloads: [], services: [], policies: [] })
  t.match(refused('workloads: []\nservices:\npolicies: []\n', 'm.yaml'), [
    {
      file: 'm.yaml',
      entry: 'top level',
      key: 'services',
      line: 2,
      message: /`services:` has no value.*write `services: \[\]`.*intentionally empty mesh is written explicitly/,
    },
  ])
})

t.test(
  'a blank file (empty, whitespace, comments, only "---", or null) is refused: an empty mesh is written explicitly',
  async (t) => {
    for (const text of ['', '   \n\n', '# only a comment\n', '---\n', '~\n', 'null\n']) {
      t.match(
        refused(text, 'blank.yaml'),
        [
          {
            file: 'blank.yaml',
            entry: 'top level',
            key: '',
            line: 1,
            message: /holds no mesh.*written explicitly: `workloads: \[\]` and `services: \[\]`/,
          },
        ],
        JSON.stringify(text),
      )
    }
  },
)

t.test('a multi-document YAML stream is refused; one leading --- is fine', async (t) => {
  const p = refused('workloads: []\n---\nservices: []\n', 'multi.yaml')
  t.equal(p.length, 1)
  t.match(p[0], { file: 'multi.yaml', entry: 'top level', line: 3, message: /2 YAML documents/ })
  t.ok(parseMeshFile('---\nworkloads: []\n', 'm.yaml'))
})

t.test('YAML syntax errors are reported with their line', async (t) => {
  const p = refused('workloads:\n  - uid: a\n   bad: [\n', 'syntax.yaml')
  t.ok(p.length >= 1)
  t.match(p[0], { file: 'syntax.yaml', entry: 'YAML syntax' })
  t.type(p[0]?.line, 'number')
})

t.test('unknown top-level key', async (t) => {
  t.match(refused('workloads: []\nauthorizationPolicies: []\n'), [
    {
      entry: 'top level',
      key: 'authorizationPolicies',
      line: 2,
      message: /unknown key.*the top-level key is `policies`/,
    },
  ])
})

t.test('every problem is reported, and the message has one "file:line: entry: key: message" line each', async (t) => {
  const text = [
    'workloads:',
    workload('a', 'protocol: tcp\ncapacity: "2"'),
    workload('b', 'status: HEALTHY'),
    'services:',
    service('default', 'echo', 'visibility: public'),
  ].join('\n')
  let err: unknown
  try {
    parseMeshFile(text, '/etc/kmesh/mesh.yaml')
  } catch (e) {
    err = e
  }
  t.type(err, MeshFileError)
  const e = err as MeshFileError
  t.equal(e.problems.length, 4)
  t.same(
    e.problems.map((p) => [p.entry, p.key, p.line]),
    [
      ['workloads[0] (uid a)', 'protocol', 7],
      ['workloads[0] (uid a)', 'capacity', 8],
      ['workloads[1] (uid b)', 'status', 14],
      ['services[0] (default/echo)', 'visibility', 21],
    ],
  )
  t.equal(e.message, e.problems.map(formatProblem).join('\n'))
  t.match(
    e.message.split('\n')[0],
    /^\/etc\/kmesh\/mesh\.yaml:7: workloads\[0\] \(uid a\): protocol: unknown value "tcp".*write TCP/,
  )
})

t.test('readMeshFile: reads a file; a missing file is a MeshFileError naming ENOENT', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kmesh-meshfile-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'mesh.yaml')
  await writeFile(path, `workloads:\n${workload('a')}\n`)
  t.equal((await readMeshFile(path)).config.workloads[0]?.uid, 'a')
  const missing = join(dir, 'nope.yaml')
  await t.rejects(readMeshFile(missing), {
    name: 'MeshFileError',
    problems: [{ file: missing, entry: 'file', message: /ENOENT/ }],
  })
})

t.test('anchors and aliases are followed, as serde_yaml does', async (t) => {
  const text = `services:\n- name: a\n  namespace: ns\n  hostname: a\n  vips: []\n  ports: &p {80: 8080, 443: 8443}\n- name: b\n  namespace: ns\n  hostname: b\n  vips: []\n  ports: *p\n`
  const { config } = parseMeshFile(text, 'm.yaml')
  t.same(config.services[1]?.ports, { 80: 8080, 443: 8443 })
})
