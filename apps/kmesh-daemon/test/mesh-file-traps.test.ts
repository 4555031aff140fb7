/** One test per trap of docs/reference/local-config.md §8, asserting the file, entry and key named. */
import t from 'tap'

import { parseMeshFile } from '../src/mesh-file/index.js'
import { policy, refused, service, workload } from './mesh-file-helpers.js'

const W = 'workloads[0] (uid a)'

t.test('§8.1 two `services` fields: the list form (as in /config_dump) is refused', async (t) => {
  const p = refused(`workloads:\n${workload('a', '', '["default/echo.default.svc.cluster.local"]')}\n`, 'dump.yaml')
  t.match(p, [{ file: 'dump.yaml', entry: W, key: 'services', line: 6, message: /found a list.*config_dump/ }])
})

t.test('§8.2 flatten + deny_unknown_fields: unknown keys, misspelt required keys, strict strings', async (t) => {
  t.test('an unknown workload key is refused', async (t) => {
    t.match(refused(`workloads:\n${workload('a', 'nodeName: x')}\n`), [
      { entry: W, key: 'nodeName', line: 7, message: /unknown key `nodeName`; did you mean `node`\?/ },
    ])
  })
  t.test('a misspelt required key shows as unknown + missing', async (t) => {
    const text = 'workloads:\n- uid: a\n  namespace: default\n  workloadIP: []\n  services: {}\n'
    t.match(refused(text), [
      { entry: W, key: 'workloadIps', line: 2, message: /missing required key `workloadIps`/ },
      { entry: W, key: 'workloadIP', line: 4, message: /unknown key `workloadIP`; did you mean `workloadIps`\?/ },
    ])
  })
  t.test('string fields YAML reads as number, bool or null are refused with a hint to quote', async (t) => {
    const text = `workloads:\n${workload('a', 'canonicalRevision: 1\nnetwork:\nclusterId: true\nlocality: {region: r, zone: 2, subzone: ""}')}\n`
    t.match(refused(text), [
      {
        entry: W,
        key: 'canonicalRevision',
        message: /integer `1`, expected a string; quote it: canonicalRevision: "1"/,
      },
      { entry: W, key: 'network', message: /empty value is null, not ""; write network: ""/ },
      { entry: W, key: 'clusterId', message: /boolean `true`.*quote it/ },
      { entry: W, key: 'locality.zone', message: /integer `2`.*zone: "2"/ },
    ])
  })
  t.test('serde_yaml scalar typing: 0123 and "1" are strings, Null is null, 1.5 is a float', async (t) => {
    const ok = parseMeshFile(
      `workloads:\n${workload('a', 'canonicalRevision: 0123\nworkloadName: "1"\nnode: !!str 7')}\n`,
      'm.yaml',
    )
    t.match(ok.config.workloads[0], { canonicalRevision: '0123', workloadName: '1', node: '7' })
    t.match(refused(`workloads:\n${workload('a', 'node: Null\ncanonicalName: 1.5\nworkloadType: 0x1f')}\n`), [
      { key: 'node', message: /null `Null`/ },
      { key: 'canonicalName', message: /floating point `1.5`/ },
      { key: 'workloadType', message: /integer `0x1f`/ },
    ])
  })
  t.test('service and policy entries are not flattened: any scalar is taken as a string', async (t) => {
    const text = `services:\n- name: 1\n  namespace: true\n  hostname: 42\n  vips: []\n  ports: {}\n`
    t.match(parseMeshFile(text, 'm.yaml').config.services[0], { name: '1', namespace: 'true', hostname: '42' })
  })
})

t.test('§8.3 GatewayAddress destination is one string', async (t) => {
  t.test('the protobuf {namespace, hostname} mapping is refused with the string to write', async (t) => {
    const text = `workloads:\n${workload('a', 'waypoint:\n  destination: {namespace: shop, hostname: wp.shop.svc}\n  hboneMtlsPort: 15008')}\n`
    t.match(refused(text), [
      {
        entry: W,
        key: 'waypoint.destination',
        line: 8,
        message: /not a mapping.*write destination: "shop\/wp.shop.svc"/,
      },
    ])
  })
  t.test('"ns/10.1.2.3" is an address in network ns; anything else after the slash is a hostname', async (t) => {
    const text = `workloads:\n${workload('a', 'waypoint: {destination: "ns/10.1.2.3", hboneMtlsPort: 15008}\nnetworkGateway: {destination: "ns/gw.example", hboneMtlsPort: 15008}')}\n`
    const w = parseMeshFile(text, 'm.yaml').config.workloads[0]
    t.same(w?.waypoint?.destination, { kind: 'address', network: 'ns', ip: '10.1.2.3' })
    t.same(w?.networkGateway?.destination, { kind: 'hostname', namespace: 'ns', hostname: 'gw.example' })
  })
  t.test('a destination without "/" matches no variant', async (t) => {
    const text = `services:\n${service('ns', 'a', 'waypoint: {destination: "10.0.0.1", hboneMtlsPort: 15008}')}\n`
    t.match(refused(text), [
      { entry: 'services[0] (ns/a)', key: 'waypoint.destination', message: /untagged enum Destination/ },
    ])
  })
  t.test('weightedWaypoints: destination.destination nesting is explained', async (t) => {
    const text = `services:\n${service('ns', 'a', 'weightedWaypoints:\n- destination: "/10.0.0.1"\n  weight: 1')}\n`
    t.match(refused(text), [
      {
        entry: 'services[0] (ns/a)',
        key: 'weightedWaypoints[0].destination',
        line: 8,
        message: /destination: \{destination: "\/10.0.0.1", hboneMtlsPort: 15008\}/,
      },
    ])
  })
})

t.test('§8.4 protobuf names are refused with the local name', async (t) => {
  const text = [
    'workloads:',
    workload('a', 'addresses: ["10.0.0.1"]\ntunnelProtocol: HBONE'),
    'services:',
    service('ns', 'a', 'loadBalancing: {}\nsubjectAltName: x'),
    service('ns', 'b', 'loadBalancer: {routingPreference: [], mode: Standard, healthPolicy: OnlyHealthy}'),
  ].join('\n')
  t.match(refused(text), [
    { entry: W, key: 'addresses', message: /protobuf name; write `workloadIps/ },
    { entry: W, key: 'tunnelProtocol', message: /write `protocol: TCP`/ },
    { entry: 'services[0] (ns/a)', key: 'loadBalancing', message: /write `loadBalancer/ },
    { entry: 'services[0] (ns/a)', key: 'subjectAltName', message: /subjectAltNames/ },
    { entry: 'services[1] (ns/b)', key: 'loadBalancer.routingPreference', message: /plural/ },
    { entry: 'services[1] (ns/b)', key: 'loadBalancer.routingPreferences', message: /missing required key/ },
  ])
})

t.test('§8.5 enum spellings are the Rust names, case-sensitive; proto spellings get the right one', async (t) => {
  const text = [
    'workloads:',
    workload(
      'a',
      'protocol: hbone\nstatus: UNHEALTHY\nnetworkMode: HOST_NETWORK\napplicationTunnel: {protocol: Proxy}',
    ),
    'services:',
    service(
      'ns',
      'a',
      'ipFamilies: IPV4_ONLY\nvisibility: NAMESPACE\nloadBalancer: {routingPreferences: [ZONE], mode: UNSPECIFIED_MODE, healthPolicy: ALLOW_ALL}',
    ),
    'policies:',
    policy('ns', 'p', '  scope: WORKLOAD_SELECTOR\n  action: ALLOW\n  dryRun: false', '  - []'),
  ].join('\n')
  const p = refused(text)
  const hint = (key: string): string | undefined =>
    /write (\S+) \(values are the Rust/.exec(p.find((x) => x.key === key)?.message ?? '')?.[1]
  t.same(
    [
      'protocol',
      'status',
      'networkMode',
      'applicationTunnel.protocol',
      'ipFamilies',
      'visibility',
      'loadBalancer.routingPreferences[0]',
      'loadBalancer.mode',
      'loadBalancer.healthPolicy',
      'scope',
      'action',
    ].map(hint),
    [
      'HBONE',
      'Unhealthy',
      'HostNetwork',
      'PROXY',
      'IPv4',
      'Namespace',
      'Zone',
      'Standard',
      'AllowAll',
      'WorkloadSelector',
      'Allow',
    ],
  )
  t.equal(p.length, 11)
})

t.test('§8.6 defaults differ from xDS: trustDomain, serviceAccount, clusterId stay ""', async (t) => {
  const w = parseMeshFile(`workloads:\n${workload('a')}\n`, 'm.yaml').config.workloads[0]
  t.match(w, { trustDomain: '', serviceAccount: '', clusterId: '', protocol: 'TCP', status: 'Healthy', capacity: 1 })
})

t.test('§8.7 workloads without uid would replace each other: a missing uid is an error', async (t) => {
  const text =
    'workloads:\n- name: x\n  namespace: a\n  workloadIps: []\n  services: {}\n- name: y\n  namespace: a\n  workloadIps: []\n  services: {}\n'
  t.match(refused(text), [
    { entry: 'workloads[0] (no uid, name x)', key: 'uid', line: 2, message: /missing `uid`.*replace each other/ },
    { entry: 'workloads[1] (no uid, name y)', key: 'uid', line: 6, message: /missing `uid`/ },
  ])
})

t.test('§8.8 required keys that look optional', async (t) => {
  const text = [
    'workloads:',
    '- uid: a',
    '  namespace: default',
    '  workloadIps: []',
    '  locality: {region: r}',
    '  waypoint: {destination: "ns/wp"}',
    'services:',
    service('ns', 'a', 'loadBalancer: {mode: Failover}'),
    'policies:',
    policy('ns', 'p', '  scope: Global\n  action: Deny', '  - []'),
  ].join('\n')
  t.match(refused(text), [
    { entry: W, key: 'services', message: /missing required key `services`; write `services: \{\}`/ },
    { entry: W, key: 'locality.zone', message: /missing required key `zone`.*all three keys/ },
    { entry: W, key: 'locality.subzone', message: /missing required key `subzone`/ },
    { entry: W, key: 'waypoint.hboneMtlsPort', message: /missing required key `hboneMtlsPort`/ },
    { entry: 'services[0] (ns/a)', key: 'loadBalancer.routingPreferences', message: /missing required key/ },
    { entry: 'services[0] (ns/a)', key: 'loadBalancer.healthPolicy', message: /missing required key/ },
    { entry: 'policies[0] (ns/p)', key: 'dryRun', message: /missing required key `dryRun`; it has no default/ },
  ])
})

t.test('§8.9 keys ztunnel silently ignores are refused here', async (t) => {
  t.test('a misspelt matcher in a DENY rule', async (t) => {
    const text = `policies:\n${policy('ns', 'deny', '  scope: Namespace\n  action: Deny\n  dryRun: false', '  - - - sourceIPs: ["10.0.0.0/8"]')}\n`
    t.match(refused(text, 'deny.yaml'), [
      {
        file: 'deny.yaml',
        entry: 'policies[0] (ns/deny)',
        key: 'rules[0][0][0].sourceIPs',
        line: 8,
        message: /unknown key `sourceIPs` \(ztunnel would silently ignore it.*did you mean `sourceIps`\?/,
      },
    ])
  })
  t.test('locality, cidrVips[] and serviceAccounts[] entries', async (t) => {
    const text = [
      'workloads:',
      workload('a', 'locality: {region: r, zone: z, subzone: "", zon: x}'),
      'services:',
      service('ns', 'a', 'cidrVips: [{network: "", cidr: "10.0.0.0/8", prefix: 8}]'),
      'policies:',
      policy(
        'ns',
        'p',
        '  scope: Global\n  action: Allow\n  dryRun: false',
        '  - - - serviceAccounts: [{namespace: a, serviceAccount: b, cluster: c}]',
      ),
    ].join('\n')
    t.match(refused(text), [
      { entry: W, key: 'locality.zon', message: /silently ignore/ },
      { entry: 'services[0] (ns/a)', key: 'cidrVips[0].prefix', message: /silently ignore/ },
      { entry: 'policies[0] (ns/p)', key: 'rules[0][0][0].serviceAccounts[0].cluster', message: /silently ignore/ },
    ])
  })
  t.test('an empty match object is accepted with a warning (it never matches)', async (t) => {
    const text = `policies:\n${policy('ns', 'p', '  scope: Namespace\n  action: Deny\n  dryRun: false', '  - - - {}')}\n`
    t.match(parseMeshFile(text, 'm.yaml').warnings, [
      { entry: 'policies[0] (ns/p)', key: 'rules[0][0][0]', line: 8, message: /never matches.*denies nothing/ },
    ])
  })
})

t.test('§8.10 string matchers need YAML tags', async (t) => {
  const rules = [
    '  - - - principals:',
    '        - {Exact: cluster.local/ns/a/sa/b}',
    '        - cluster.local/ns/a/sa/b',
    '        - !exact x',
    '        - !Presence [x]',
    '        - Presence',
  ].join('\n')
  const text = `policies:\n${policy('ns', 'p', '  scope: Global\n  action: Allow\n  dryRun: false', rules)}\n`
  const k = 'rules[0][0][0].principals'
  t.match(refused(text), [
    {
      key: `${k}[0]`,
      line: 9,
      message: /invalid type: map, expected a YAML tag starting with '!'; write `- !Exact cluster.local\/ns\/a\/sa\/b`/,
    },
    { key: `${k}[1]`, line: 10, message: /needs a YAML tag; write `- !Exact cluster.local\/ns\/a\/sa\/b`/ },
    { key: `${k}[2]`, line: 11, message: /unknown string matcher tag !exact.*write !Exact/ },
    { key: `${k}[3]`, line: 12, message: /!Presence takes no value/ },
    { key: `${k}[4]`, line: 13, message: /write `- !Presence \[\]`/ },
  ])
  const good = [
    '  - - - principals: [!Exact a, !Prefix b, !Suffix c, !Presence [], !Presence ]',
    '        notNamespaces:',
    '        - !Presence',
    '        namespaces: [!Presence]',
  ].join('\n')
  const r = parseMeshFile(
    `policies:\n${policy('ns', 'p', '  scope: Global\n  action: Allow\n  dryRun: false', good)}\n`,
    'm.yaml',
  )
  const m = r.config.policies[0]?.rules[0]?.[0]?.[0]
  t.same(m?.principals, [
    { kind: 'Exact', value: 'a' },
    { kind: 'Prefix', value: 'b' },
    { kind: 'Suffix', value: 'c' },
    { kind: 'Presence' },
    { kind: 'Presence' },
  ])
  t.same(m?.notNamespaces, [{ kind: 'Presence' }])
  t.match(r.warnings, [
    { key: 'rules[0][0][0].namespaces[0]', line: 11, message: /ztunnel cannot parse `\[!Presence\]`/ },
  ])
})

t.test('§8.11 network addresses need "/", CIDRs need a prefix, port keys must be unquoted', async (t) => {
  const text = [
    'services:',
    '- name: a',
    '  namespace: ns',
    '  hostname: a',
    '  vips: ["10.96.0.1", "/10.0.0.0/24"]',
    '  cidrVips: [{network: "", cidr: "10.0.0.1"}]',
    '  ports: {"80": 8080}',
    'policies:',
    policy('ns', 'p', '  scope: Global\n  action: Allow\n  dryRun: false', '  - - - sourceIps: ["192.168.1.1"]'),
  ].join('\n')
  t.match(refused(text), [
    { key: 'vips[0]', line: 5, message: /no network part; write "\/10.96.0.1"/ },
    { key: 'vips[1]', line: 5, message: /CIDR is not allowed here; use cidrVips/ },
    { key: 'cidrVips[0].cidr', line: 6, message: /prefix length is required; write "10.0.0.1\/32"/ },
    { key: 'ports.80', line: 7, message: /port key "80" is quoted/ },
    { key: 'rules[0][0][0].sourceIps[0]', message: /prefix length is required; write "192.168.1.1\/32"/ },
  ])
})

t.test('§8.12 references to objects not in the file are warnings (ztunnel loads such files)', async (t) => {
  const text = [
    'workloads:',
    workload(
      'a',
      'authorizationPolicies: ["ns/missing"]\nwaypoint: {destination: "ns/wp.ns.svc", hboneMtlsPort: 15008}\nnetworkGateway: {destination: "net2/192.0.2.1", hboneMtlsPort: 15008}',
      '{"ns/nosuch.ns.svc": {80: 80}}',
    ),
    'services:',
    service(
      'ns',
      'a',
      'endpoints:\n  ghost: {workloadUid: ghost, port: {80: 80}, status: Healthy}\nweightedWaypoints:\n- destination: {destination: "/10.9.9.9", hboneMtlsPort: 15008}\n  weight: 1',
    ),
    'policies:',
    policy('ns', 'sel', '  scope: WorkloadSelector\n  action: Allow\n  dryRun: false', '  - []'),
  ].join('\n')
  const { warnings } = parseMeshFile(text, 'refs.yaml')
  t.match(warnings, [
    { file: 'refs.yaml', entry: W, key: 'services["ns/nosuch.ns.svc"]', message: /no service "ns\/nosuch.ns.svc"/ },
    { entry: W, key: 'authorizationPolicies', message: /no policy "ns\/missing"/ },
    {
      entry: W,
      key: 'waypoint.destination',
      message: /no service or workload with namespace "ns" and hostname "wp.ns.svc"/,
    },
    {
      entry: W,
      key: 'networkGateway.destination',
      message: /no workload IP or service VIP "192.0.2.1" in network "net2"/,
    },
    { entry: 'services[0] (ns/a)', key: 'endpoints.ghost.workloadUid', message: /no workload with uid "ghost"/ },
    { entry: 'services[0] (ns/a)', key: 'weightedWaypoints[0].destination.destination', message: /"10.9.9.9"/ },
    { entry: 'policies[0] (ns/sel)', key: 'scope', message: /applies to nothing/ },
  ])
  t.equal(warnings.length, 7)
  t.ok(warnings.every((w) => typeof w.line === 'number'))
})
