/** Error classes and warnings of the mesh file parser, beyond the §8 traps. */
import t from 'tap'

import { parseMeshFile } from '../src/mesh-file/index.js'
import { parseIntText, untaggedContent } from '../src/mesh-file/scalars.js'
import { parseCidr, parseGatewayDestination, parseIp, parseNetworkAddress } from '../src/mesh-file/values.js'
import { policy, refused, service, workload } from './mesh-file-helpers.js'

const W = 'workloads[0] (uid a)'
const S = 'services[0] (ns/a)'

t.test('values: IPs are validated (v4, v6, no zone, no /len) and kept in canonical form', async (t) => {
  const canon = (s: string): string | undefined => {
    const r = parseIp(s)
    return r.ok ? r.value.ip : undefined
  }
  t.equal(canon('10.0.0.1'), '10.0.0.1')
  t.equal(canon('FD00:0:0::1'), 'fd00::1')
  t.equal(canon('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1', 'the first longest zero run is compressed')
  t.equal(canon('1:0:2:0:3:0:4:0'), '1:0:2:0:3:0:4:0', 'a single zero group is not compressed')
  t.equal(canon('::ffff:10.0.0.1'), '::ffff:10.0.0.1')
  t.equal(canon('::FFFF:a00:1'), '::ffff:10.0.0.1')
  t.equal(canon('::1.2.3.4'), '::102:304')
  t.equal(canon('0:0:0:0:0:0:0:0'), '::')
  for (const bad of ['10.0.0.256', '010.0.0.1', 'fe80::1%eth0', '10.0.0.1/32', ' 10.0.0.1', '1:2:3:4:5:6:7:8:9', '']) {
    t.notOk(parseIp(bad).ok, `${JSON.stringify(bad)} is refused`)
  }
  t.same(
    parseIp('fe80::1%eth0'),
    {
      ok: false,
      message:
        '"fe80::1%eth0" is not an IP address (zone ids are not supported: a zone names a link on one host, ' +
        'a mesh address must not)',
    },
    'a zone id is refused with the reason (@kmesh-ts/ip)',
  )
  t.same(parseCidr('2001:DB8::/32'), { ok: true, value: '2001:db8::/32' })
  t.same(parseCidr('10.1.2.3/8'), { ok: true, value: '10.1.2.3/8' }, 'host bits are kept')
  t.match(parseCidr('10.0.0.0/33'), { ok: false, message: /not 0..32/ })
  t.match(parseCidr('::/129'), { ok: false, message: /not 0..128/ })
  t.match(parseCidr('10.0.0.0/x'), { ok: false })
  t.same(parseNetworkAddress('net/with/slash'), {
    ok: false,
    message:
      '"net/with/slash" is not "<network>/<ip>": "with/slash" is not an IP address (a plain address takes no "/len") (a CIDR is not allowed here; use cidrVips for ranges)',
  })
  t.same(parseNetworkAddress('/::1'), { ok: true, value: { network: '', ip: '::1' } })
  t.same(parseGatewayDestination('a/b/c'), { ok: true, value: { kind: 'hostname', namespace: 'a', hostname: 'b/c' } })
})

t.test('scalars: serde_yaml 0.9 integer and null typing', async (t) => {
  t.equal(parseIntText('80'), 80n)
  t.equal(parseIntText('+80'), 80n)
  t.equal(parseIntText('0x50'), 80n)
  t.equal(parseIntText('0o120'), 80n)
  t.equal(parseIntText('0b1010000'), 80n)
  t.equal(parseIntText('-1'), -1n)
  t.equal(parseIntText('080'), undefined, 'leading zero: a string')
  t.equal(parseIntText('8_0'), undefined)
  t.same(untaggedContent('NULL'), { kind: 'null' })
  t.same(untaggedContent('TRUE'), { kind: 'bool', value: true })
  t.same(untaggedContent('yes'), { kind: 'string', value: 'yes' }, 'no YAML 1.1 booleans')
  t.same(untaggedContent('1e3'), { kind: 'float' })
  t.same(untaggedContent('.inf'), { kind: 'float' })
  t.same(untaggedContent('infinity'), { kind: 'string', value: 'infinity' })
  // The short-decimal fast path answers as the general rule does, at and around its edges.
  const general = (text: string): bigint | undefined => {
    const negative = text.startsWith('-')
    const unsigned = text.startsWith('+') || negative ? text.slice(1) : text
    if (/^0[xob]/.test(unsigned)) return parseIntText(text)
    if (!/^[0-9]+$/.test(unsigned) || (unsigned.length > 1 && unsigned.startsWith('0'))) return undefined
    return negative ? -BigInt(unsigned) : BigInt(unsigned)
  }
  for (const text of [
    '0',
    '00',
    '01',
    '1',
    '9',
    '10',
    '65535',
    '65536',
    '99999',
    '123456789',
    '1234567890',
    '999999999',
    '9999999999',
    '',
    ' 1',
    '1 ',
    '1a',
    'a1',
    '+0',
    '-0',
    '٣',
    '１',
    '12345678901234567890',
  ]) {
    t.equal(parseIntText(text), general(text), `parseIntText(${JSON.stringify(text)})`)
  }
  t.equal(parseIntText('8080'), parseIntText('8080'), 'small values are one bigint')
})

t.test('ports: u16 ranges, plain integers only, duplicates compared as numbers', async (t) => {
  const text = [
    'services:',
    '- name: a',
    '  namespace: ns',
    '  hostname: a',
    '  vips: []',
    '  ports: {80: 8080, 0x50: 9090, 443: 65536, 080: 1, -1: 1}',
    '  waypoint: {destination: "ns/w", hboneMtlsPort: "15008"}',
  ].join('\n')
  t.match(refused(text), [
    { entry: S, key: 'ports.0x50', line: 6, message: /port 80 is listed twice/ },
    { entry: S, key: 'ports.443', line: 6, message: /integer `65536`, expected u16 \(0..65535\)/ },
    { entry: S, key: 'ports.080', line: 6, message: /string "080", expected u16/ },
    { entry: S, key: 'ports["-1"]', line: 6, message: /integer `-1`, expected u16/ },
    { entry: S, key: 'waypoint.hboneMtlsPort', line: 7, message: /"15008" is quoted/ },
  ])
  const ok = parseMeshFile(
    'services:\n- {name: a, namespace: ns, hostname: a, vips: [], ports: {+80: 0x1F90}}\n',
    'm.yaml',
  )
  t.same(ok.config.services[0]?.ports, { 80: 8080 })
})

t.test('u32 and bool fields', async (t) => {
  const text = [
    'workloads:',
    workload('a', 'capacity: 4294967296\nnativeTunnel: yes'),
    'services:',
    service(
      'ns',
      'a',
      'canonical: "true"\nweightedWaypoints: [{destination: {destination: "/10.0.0.1", hboneMtlsPort: 15008}, weight: 1.5}]',
    ),
  ].join('\n')
  t.match(refused(text), [
    { entry: W, key: 'capacity', message: /integer `4294967296`, expected u32/ },
    { entry: W, key: 'nativeTunnel', message: /string "yes", expected true or false/ },
    { entry: S, key: 'canonical', message: /expected true or false; write it without quotes/ },
    { entry: S, key: 'weightedWaypoints[0].weight', message: /floating point `1.5`, expected u32/ },
  ])
  const w = parseMeshFile(`workloads:\n${workload('a', 'capacity: 0\nnativeTunnel: True')}\n`, 'm.yaml').config
    .workloads[0]
  t.match(w, { capacity: 0, nativeTunnel: true })
})

t.test('duplicates: services, policies, keys in a mapping', async (t) => {
  const text = [
    'workloads:',
    '- uid: a',
    '  name: w',
    '  namespace: default',
    '  name: again',
    '  workloadIps: []',
    '  services: {}',
    'services:',
    service('ns', 'a'),
    service('ns', 'a'),
    'policies:',
    policy('ns', 'p', '  scope: Global\n  action: Allow\n  dryRun: false', '  - []'),
    policy('ns', 'p', '  scope: Global\n  action: Deny\n  dryRun: false', '  - []'),
  ].join('\n')
  t.match(refused(text), [
    { entry: W, key: 'name', line: 5, message: /duplicate key `name`/ },
    {
      entry: 'services[1] (ns/a)',
      key: 'hostname',
      message: /service namespace\/hostname "ns\/a" is already used by services\[0\]/,
    },
    {
      entry: 'policies[1] (ns/p)',
      key: 'name',
      message: /policy namespace\/name "ns\/p" is already used by policies\[0\]/,
    },
  ])
})

t.test('a duplicate uid is reported even when the entries have other problems', async (t) => {
  const text = ['workloads:', workload('a', 'protocol: x'), workload('a', 'status: y')].join('\n')
  t.match(refused(text), [
    { entry: W, key: 'protocol' },
    { entry: 'workloads[1] (uid a)', key: 'uid', line: 8, message: /uid "a" is already used by workloads\[0\]/ },
    { entry: 'workloads[1] (uid a)', key: 'status' },
  ])
})

t.test('kmesh-ts limits: at most 10 ports per service, at most 10 services per workload', async (t) => {
  const ports = Array.from({ length: 11 }, (_, i) => `${8000 + i}: ${8000 + i}`).join(', ')
  const many = (n: number): string => `{${Array.from({ length: n }, (_, i) => `"ns/s${i}": {80: 80}`).join(', ')}}`
  const text = [
    'workloads:',
    workload('a', '', many(11)),
    'services:',
    `- {name: a, namespace: ns, hostname: a, vips: [], ports: {${ports}}}`,
  ].join('\n')
  t.match(refused(text), [
    { entry: W, key: 'services', message: /belongs to 11 services.*at most 10/ },
    { entry: S, key: 'ports', message: /11 ports.*at most 10/ },
  ])
  t.ok(parseMeshFile(`workloads:\n${workload('a', '', many(10))}\n`, 'm.yaml'), '10 services are fine')
  // 10 from the workload's map plus one explicit endpoint.
  const viaEndpoint = [
    'workloads:',
    workload('a', '', many(10)),
    'services:',
    service('ns', 'x', 'endpoints: {a: {workloadUid: a, port: {80: 80}, status: Healthy}}'),
  ].join('\n')
  t.match(refused(viaEndpoint), [{ entry: W, key: 'services', message: /belongs to 11 services/ }])
})

t.test('null and empty values: options are absent; lists and maps empty outside workloads only', async (t) => {
  const ok = parseMeshFile(
    `workloads:\n${workload('a', 'locality:\nwaypoint: ~\napplicationTunnel: {protocol: NONE, port: ~}')}\nservices:\n${service('ns', 'a', 'waypoint: null\nloadBalancer:\nipFamilies: ~\nsubjectAltNames:')}\n`,
    'm.yaml',
  )
  const w = ok.config.workloads[0]
  t.equal(w?.locality, undefined)
  t.equal(w?.waypoint, undefined)
  t.same(w?.applicationTunnel, { protocol: 'NONE' })
  const s = ok.config.services[0]
  t.equal(s?.waypoint, undefined)
  t.equal(s?.loadBalancer, undefined)
  t.equal(s?.ipFamilies, undefined)
  t.same(s?.subjectAltNames, [])
  t.match(refused('workloads:\n- uid: a\n  namespace: ns\n  workloadIps:\n  services:\n'), [
    { entry: W, key: 'workloadIps', message: /expected a list, an empty value \(null\); write \[\]/ },
  ])
  t.match(refused(`workloads: ~\n`), [
    { entry: 'top level', key: 'workloads', line: 1, message: /has no value \(null\); write `workloads: \[\]`/ },
  ])
  t.match(refused(`workloads:\n${workload('a', 'applicationTunnel: {port: 15088}')}\n`), [
    { entry: W, key: 'applicationTunnel.protocol', message: /missing required key `protocol`/ },
  ])
})

t.test('policies: rules nesting and match contents', async (t) => {
  const text = [
    'policies:',
    policy('ns', 'a', '  scope: Global\n  action: Deny\n  dryRun: false', '  - - principals: [!Exact x]'),
    policy(
      'ns',
      'b',
      '  scope: Global\n  action: Deny\n  dryRun: no',
      '  - - - destinationPorts: [70000]\n        notDestinationIps: ["10.0.0.0/40"]\n        clauses: []',
    ),
  ].join('\n')
  t.match(refused(text), [
    {
      entry: 'policies[0] (ns/a)',
      key: 'rules[0][0]',
      message: /expected a list, found a mapping; rules are nested lists three levels deep/,
    },
    { entry: 'policies[1] (ns/b)', key: 'dryRun', message: /string "no", expected true or false/ },
    { entry: 'policies[1] (ns/b)', key: 'rules[0][0][0].destinationPorts[0]', message: /expected u16/ },
    { entry: 'policies[1] (ns/b)', key: 'rules[0][0][0].notDestinationIps[0]', message: /not 0..32/ },
    { entry: 'policies[1] (ns/b)', key: 'rules[0][0][0].clauses', message: /there is no `clauses:` key/ },
  ])
})

t.test('warnings: endpoint key vs workloadUid, shared addresses, SANs, waypoint port', async (t) => {
  const text = [
    'workloads:',
    workload('a', 'workloadIps: ["10.0.0.1"]\nprotocol: HBONE'),
    workload('b', 'workloadIps: ["10.0.0.1"]\nwaypoint: {destination: "ns/wp", hboneMtlsPort: 15008}'),
    workload('h1', 'workloadIps: ["172.18.0.5"]\nnetworkMode: HostNetwork'),
    workload('h2', 'workloadIps: ["172.18.0.5"]\nnetworkMode: HostNetwork'),
    workload('wp-0', '', '{"ns/wp": {15008: 15008}}'),
    'services:',
    service(
      'ns',
      'a',
      'vips: ["/10.96.0.1"]\nendpoints: {x: {workloadUid: a, port: {80: 80}, status: Unhealthy}}\nsubjectAltNames: ["spiffe://td/ns/x/sa/y", "x.example.com"]',
    ),
    service('ns', 'b', 'vips: ["/10.96.0.1"]'),
    service('ns', 'wp'),
  ].join('\n')
  const { warnings } = parseMeshFile(text, 'm.yaml')
  t.match(warnings, [
    {
      entry: 'workloads[1] (uid b)',
      key: 'workloadIps',
      message: /10.0.0.1 \(network ""\) is also an address of workloads\[0\] \(uid a\)/,
    },
    {
      entry: 'workloads[1] (uid b)',
      key: 'waypoint.destination',
      message: /service "ns\/wp" does not list port 15008/,
    },
    { entry: S, key: 'endpoints.x.workloadUid', message: /the key "x" and workloadUid "a" differ/ },
    { entry: S, key: 'subjectAltNames[1]', message: /"x.example.com" is not spiffe/ },
    { entry: 'services[1] (ns/b)', key: 'vips', message: /VIP "\/10.96.0.1" also belongs to services\[0\]/ },
  ])
  t.equal(warnings.length, 5, 'HostNetwork workloads may share an address')
  const tunnel = text
    .replace("workload('wp-0'", '')
    .replace('- uid: wp-0\n  name: w', '- uid: wp-0\n  applicationTunnel: {protocol: PROXY}\n  name: w')
  t.notOk(
    parseMeshFile(tunnel, 'm.yaml').warnings.some((w) => /does not list port/.test(w.message)),
    'no port warning when the waypoint workloads use applicationTunnel',
  )
})

t.test('entry labels: a service or policy without its key fields still gets a label', async (t) => {
  t.match(refused('services:\n- name: a\n  vips: []\n  ports: {}\npolicies:\n- {}\n'), [
    { entry: 'services[0]', key: 'namespace', message: /missing required key `namespace`/ },
    { entry: 'services[0]', key: 'hostname', message: /missing required key `hostname`/ },
    { entry: 'policies[0]', key: 'name' },
    { entry: 'policies[0]', key: 'namespace' },
    { entry: 'policies[0]', key: 'scope' },
    { entry: 'policies[0]', key: 'action' },
    { entry: 'policies[0]', key: 'rules' },
    { entry: 'policies[0]', key: 'dryRun' },
  ])
})

t.test('a GatewayAddress written as a bare string is refused with the mapping to write', async (t) => {
  t.match(refused(`workloads:\n${workload('a', 'waypoint: "ns/wp.ns.svc"')}\n`), [
    {
      entry: W,
      key: 'waypoint',
      line: 7,
      message: /expected a mapping \{destination, hboneMtlsPort\}.*destination: "ns\/wp.ns.svc"/,
    },
  ])
})
