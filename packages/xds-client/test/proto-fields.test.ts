// Every field number, type and enum value of the protos we wrote, against tables transcribed from
// docs/reference/istio-workload-api.md §1.2, §1.3 and §2.1. A row is `number name type`, with `repeated`, `map<K>`,
// `optional` or `oneof:<name>` before the type where the reference says so.
import t from 'tap'
import type protobuf from 'protobufjs'
import { protoRoot, PROTO_ENUMS } from '../src/index.js'

const MESSAGES: Record<string, string[]> = {
  // §1.2 workload.proto
  'istio.workload.Address': ['1 workload oneof:type Workload', '2 service oneof:type Service'],
  'istio.workload.Service': [
    '1 name string',
    '2 namespace string',
    '3 hostname string',
    '4 addresses repeated NetworkAddress',
    '5 ports repeated Port',
    '6 subject_alt_names repeated string',
    '7 waypoint GatewayAddress',
    '8 load_balancing LoadBalancing',
    '9 ip_families IPFamilies',
    '10 extensions repeated Extension',
    '11 canonical bool',
    '12 ingress_use_waypoint bool',
    '13 weighted_waypoints repeated WeightedWaypoint',
    '14 visibility Service.Visibility',
  ],
  'istio.workload.Workload': [
    '20 uid string',
    '1 name string',
    '2 namespace string',
    '3 addresses repeated bytes',
    '21 hostname string',
    '4 network string',
    '5 tunnel_protocol TunnelProtocol',
    '6 trust_domain string',
    '7 service_account string',
    '8 waypoint GatewayAddress',
    '19 network_gateway GatewayAddress',
    '9 node string',
    '10 canonical_name string',
    '11 canonical_revision string',
    '12 workload_type WorkloadType',
    '13 workload_name string',
    '14 native_tunnel bool',
    '23 application_tunnel ApplicationTunnel',
    '22 services map<string> PortList',
    '16 authorization_policies repeated string',
    '17 status WorkloadStatus',
    '18 cluster_id string',
    '24 locality Locality',
    '25 network_mode NetworkMode',
    '26 extensions repeated Extension',
    '27 capacity google.protobuf.UInt32Value',
  ],
  'istio.workload.LoadBalancing': [
    '1 routing_preference repeated LoadBalancing.Scope',
    '2 mode LoadBalancing.Mode',
    '3 health_policy LoadBalancing.HealthPolicy',
  ],
  'istio.workload.Locality': ['1 region string', '2 zone string', '3 subzone string'],
  'istio.workload.PortList': ['1 ports repeated Port'],
  'istio.workload.Port': ['1 service_port uint32', '2 target_port uint32', '3 app_protocol AppProtocol'],
  'istio.workload.NetworkAddress': ['1 network string', '2 address bytes', '3 length optional uint32'],
  'istio.workload.NamespacedHostname': ['1 namespace string', '2 hostname string'],
  'istio.workload.GatewayAddress': [
    '1 hostname oneof:destination NamespacedHostname',
    '2 address oneof:destination NetworkAddress',
    '3 hbone_mtls_port uint32',
  ],
  'istio.workload.WeightedWaypoint': ['1 destination GatewayAddress', '2 weight uint32'],
  'istio.workload.ApplicationTunnel': ['1 protocol ApplicationTunnel.Protocol', '2 port uint32'],
  'istio.workload.Extension': ['1 name string', '2 config google.protobuf.Any'],
  // §1.3 authorization.proto
  'istio.security.Authorization': [
    '1 name string',
    '2 namespace string',
    '3 scope Scope',
    '4 action Action',
    '5 rules repeated Rule',
    '6 dry_run bool',
    '7 extensions repeated istio.workload.Extension',
  ],
  'istio.security.Rule': ['1 clauses repeated Clause'],
  'istio.security.Clause': ['2 matches repeated Match'],
  'istio.security.Match': [
    '1 namespaces repeated StringMatch',
    '2 not_namespaces repeated StringMatch',
    '11 service_accounts repeated ServiceAccountMatch',
    '12 not_service_accounts repeated ServiceAccountMatch',
    '3 principals repeated StringMatch',
    '4 not_principals repeated StringMatch',
    '5 source_ips repeated Address',
    '6 not_source_ips repeated Address',
    '7 destination_ips repeated Address',
    '8 not_destination_ips repeated Address',
    '9 destination_ports repeated uint32',
    '10 not_destination_ports repeated uint32',
    '13 extensions repeated istio.workload.Extension',
  ],
  'istio.security.Address': ['1 address bytes', '2 length uint32'],
  'istio.security.ServiceAccountMatch': ['1 namespace string', '2 serviceAccount string'],
  'istio.security.StringMatch': [
    '1 exact oneof:match_type string',
    '2 prefix oneof:match_type string',
    '3 suffix oneof:match_type string',
    '4 presence oneof:match_type google.protobuf.Empty',
  ],
  // §2.1 delta discovery
  'envoy.service.discovery.v3.DeltaDiscoveryRequest': [
    '1 node envoy.config.core.v3.Node',
    '2 type_url string',
    '3 resource_names_subscribe repeated string',
    '4 resource_names_unsubscribe repeated string',
    '8 resource_locators_subscribe repeated ResourceLocator',
    '9 resource_locators_unsubscribe repeated ResourceLocator',
    '5 initial_resource_versions map<string> string',
    '6 response_nonce string',
    '7 error_detail google.rpc.Status',
  ],
  'envoy.service.discovery.v3.DeltaDiscoveryResponse': [
    '1 system_version_info string',
    '2 resources repeated Resource',
    '4 type_url string',
    '6 removed_resources repeated string',
    '8 removed_resource_names repeated ResourceName',
    '5 nonce string',
    '7 control_plane envoy.config.core.v3.ControlPlane',
    '9 resource_errors repeated ResourceError',
  ],
  'envoy.service.discovery.v3.Resource': [
    '3 name string',
    '8 resource_name ResourceName',
    '4 aliases repeated string',
    '1 version string',
    '2 resource google.protobuf.Any',
    '6 ttl google.protobuf.Duration',
    '7 cache_control Resource.CacheControl',
    '9 metadata envoy.config.core.v3.Metadata',
  ],
  'envoy.service.discovery.v3.Resource.CacheControl': ['1 do_not_cache bool'],
  'envoy.service.discovery.v3.ResourceLocator': ['1 name string', '2 dynamic_parameters map<string> string'],
  'envoy.service.discovery.v3.ResourceName': [
    '1 name string',
    '2 dynamic_parameter_constraints DynamicParameterConstraints',
  ],
  'envoy.service.discovery.v3.ResourceError': ['1 resource_name ResourceName', '2 error_detail google.rpc.Status'],
  'google.rpc.Status': ['1 code int32', '2 message string', '3 details repeated google.protobuf.Any'],
  // Not tabled in the reference (envoy config/core/v3/base.proto); the subset we send, checked so it cannot drift.
  'envoy.config.core.v3.Node': [
    '1 id string',
    '2 cluster string',
    '3 metadata google.protobuf.Struct',
    '4 locality Locality',
    '5 user_agent_name string',
    '7 user_agent_version oneof:user_agent_version_type string',
    '11 client_features repeated string',
  ],
}

const ENUMS: Record<string, Record<string, number>> = {
  'istio.workload.LoadBalancing.Scope': {
    UNSPECIFIED_SCOPE: 0,
    REGION: 1,
    ZONE: 2,
    SUBZONE: 3,
    NODE: 4,
    CLUSTER: 5,
    NETWORK: 6,
  },
  'istio.workload.LoadBalancing.Mode': { UNSPECIFIED_MODE: 0, STRICT: 1, FAILOVER: 2, PASSTHROUGH: 3 },
  'istio.workload.LoadBalancing.HealthPolicy': { ONLY_HEALTHY: 0, ALLOW_ALL: 1 },
  'istio.workload.Service.Visibility': { PUBLIC: 0, NAMESPACE: 1 },
  'istio.workload.AppProtocol': { UNKNOWN: 0, HTTP11: 1, HTTP2: 2, GRPC: 3, TCP: 4, TLS: 5 },
  'istio.workload.ApplicationTunnel.Protocol': { NONE: 0, PROXY: 1 },
  'istio.workload.NetworkMode': { STANDARD: 0, HOST_NETWORK: 1 },
  'istio.workload.IPFamilies': { AUTOMATIC: 0, IPV4_ONLY: 1, IPV6_ONLY: 2, DUAL: 3 },
  'istio.workload.WorkloadStatus': { HEALTHY: 0, UNHEALTHY: 1 },
  'istio.workload.WorkloadType': { DEPLOYMENT: 0, CRONJOB: 1, POD: 2, JOB: 3 },
  'istio.workload.TunnelProtocol': { NONE: 0, HBONE: 1, LEGACY_ISTIO_MTLS: 2 },
  'istio.security.Scope': { GLOBAL: 0, NAMESPACE: 1, WORKLOAD_SELECTOR: 2 },
  'istio.security.Action': { ALLOW: 0, DENY: 1 },
}

const camel = (s: string): string => s.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase())

/** Full name of a field's type as resolved by protobufjs, or the scalar name. */
function typeName(f: protobuf.Field): string {
  return f.resolvedType ? f.resolvedType.fullName.slice(1) : f.type
}

/** Resolve a table type name relative to the message's package, as protoc would. */
function expectedType(pkg: string, name: string): string {
  const scalars = new Set(['string', 'bytes', 'bool', 'uint32', 'int32', 'uint64', 'int64', 'double', 'float'])
  if (scalars.has(name)) return name
  if (/^(google|envoy|istio)\./.test(name)) return name
  return `${pkg}.${name}`
}

t.test('every message field has the number, type and label of the reference table', async (t) => {
  const root = protoRoot()
  for (const [fullName, rows] of Object.entries(MESSAGES)) {
    const type = root.lookupType(fullName)
    const pkg = fullName
      .split('.')
      .slice(0, fullName.startsWith('envoy.') ? 4 : 2)
      .join('.')
    const seen = new Set<string>()
    for (const row of rows) {
      const parts = row.split(' ')
      const id = Number(parts[0])
      const name = parts[1]!
      const mods = parts.slice(2, -1)
      const tname = parts[parts.length - 1]!
      const f = type.fields[camel(name)]
      if (!f) {
        t.fail(`${fullName}.${name} is missing`)
        continue
      }
      seen.add(f.name)
      t.equal(f.id, id, `${fullName}.${name} number`)
      t.equal(typeName(f), expectedType(pkg, tname), `${fullName}.${name} type`)
      t.equal(f.repeated, mods.includes('repeated'), `${fullName}.${name} repeated`)
      const mapMod = mods.find((m) => m.startsWith('map<'))
      t.equal(f.map, !!mapMod, `${fullName}.${name} map`)
      if (mapMod)
        t.equal((f as unknown as protobuf.MapField).keyType, mapMod.slice(4, -1), `${fullName}.${name} map key`)
      const oneof = mods.find((m) => m.startsWith('oneof:'))
      if (oneof) t.equal(f.partOf?.name, camel(oneof.slice(6)), `${fullName}.${name} in oneof ${oneof.slice(6)}`)
      else if (mods.includes('optional'))
        t.equal(f.partOf?.isProto3Optional, true, `${fullName}.${name} is proto3 optional`)
      else t.equal(f.partOf?.name ?? null, null, `${fullName}.${name} is in no oneof`)
    }
    const extra = Object.keys(type.fields).filter((n) => !seen.has(n))
    t.same(extra, [], `${fullName} has no field the table lacks`)
  }
})

t.test('reserved numbers stay reserved', async (t) => {
  const root = protoRoot()
  const reserved = (n: string): unknown[] => root.lookupType(n).reserved ?? []
  t.ok(
    reserved('istio.workload.Workload').some((r) => Array.isArray(r) && r[0] === 15),
    'Workload reserves 15',
  )
  t.ok(
    reserved('istio.workload.GatewayAddress').some((r) => Array.isArray(r) && r[0] === 4),
    'GatewayAddress reserves 4',
  )
  t.ok(reserved('istio.workload.GatewayAddress').includes('hbone_single_tls_port'), 'and its old name')
})

t.test('every enum has exactly the values of the reference, and the TS enums agree', async (t) => {
  const root = protoRoot()
  for (const [fullName, values] of Object.entries(ENUMS)) {
    t.same(root.lookupEnum(fullName).values, values, `${fullName} in the .proto`)
    t.same(PROTO_ENUMS[fullName as keyof typeof PROTO_ENUMS], values, `${fullName} in enums.ts`)
  }
  t.same(Object.keys(PROTO_ENUMS).sort(), Object.keys(ENUMS).sort(), 'enums.ts covers every enum')
})

t.test('the service has the delta method with streams both ways', async (t) => {
  const svc = protoRoot().lookupService('envoy.service.discovery.v3.AggregatedDiscoveryService')
  const m = svc.methods['DeltaAggregatedResources']!
  t.equal(m.requestType, 'DeltaDiscoveryRequest')
  t.equal(m.responseType, 'DeltaDiscoveryResponse')
  t.ok(m.requestStream && m.responseStream)
})
