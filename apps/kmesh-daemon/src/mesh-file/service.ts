/** Service entries (docs/reference/local-config.md §5). Not flattened: string fields take any scalar's text. */
import { isScalar } from 'yaml'

import { readGatewayAddress } from './gateway-address.js'
import { servicePortsProblem } from '../processor/kernel-fit.js'
import {
  At,
  isNone,
  keyText,
  rawText,
  readBool,
  readEnum,
  readMap,
  readName,
  readParsedList,
  readPortMap,
  readSeq,
  readString,
  readStringList,
  readStruct,
  readUint,
  type Sink,
  type YNode,
} from './reader.js'
import type { CidrVip, Endpoint, LoadBalancer, RoutingPreference, Service, WeightedWaypoint } from '../model/mesh.js'
import { parseCidr, parseNetworkAddress } from './values.js'

const FIELDS = [
  'name',
  'namespace',
  'hostname',
  'vips',
  'cidrVips',
  'ports',
  'endpoints',
  'subjectAltNames',
  'waypoint',
  'weightedWaypoints',
  'loadBalancer',
  'ipFamilies',
  'canonical',
  'visibility',
] as const

const HINTS: Record<string, string> = {
  loadBalancing: 'that is the protobuf name; write `loadBalancer: {routingPreferences, mode, healthPolicy}`',
  addresses: 'that is the protobuf name; write `vips: ["/10.96.0.1"]` (and `cidrVips` for ranges)',
  subjectAltName: 'write `subjectAltNames` (a list)',
  ingressUseWaypoint: 'the local file has no `ingressUseWaypoint`',
  extensions: 'the local file has no `extensions`',
}

const ROUTING: readonly RoutingPreference[] = ['Region', 'Zone', 'Subzone', 'Node', 'Cluster', 'Network']

/** `services[0] (default/echo.default.svc.cluster.local)`. */
export function serviceLabel(sink: Sink, index: number, raw: YNode): string {
  const ns = rawText(sink, raw, 'namespace')
  const host = rawText(sink, raw, 'hostname')
  return ns !== undefined && host !== undefined ? `services[${index}] (${ns}/${host})` : `services[${index}]`
}

function readLoadBalancer(at: At, raw: YNode): LoadBalancer | undefined {
  const all = ['routingPreferences', 'mode', 'healthPolicy'] as const
  const f = readStruct(at, raw, {
    fields: all,
    required: all,
    unknown: 'reject',
    hints: { routingPreference: 'write `routingPreferences` (plural; the protobuf name is singular)' },
    missingHints: {
      routingPreferences: 'all three loadBalancer keys are required; write `routingPreferences: []` for none',
      mode: 'all three loadBalancer keys are required (Standard, Strict, Failover or Passthrough)',
      healthPolicy: 'all three loadBalancer keys are required (OnlyHealthy or AllowAll)',
    },
  })
  if (!f) return undefined
  const e = (k: string): { at: At; v: YNode } | undefined => {
    const x = f.get(k)
    return x ? { at: at.field(k, x.keyNode), v: x.value } : undefined
  }
  const rp = e('routingPreferences')
  let routingPreferences: RoutingPreference[] | undefined
  if (rp) {
    const items = readSeq(rp.at, rp.v)
    if (items) {
      const prefs = items.map((item, i) => readEnum(rp.at.index(i, at.sink.deref(item)), item, ROUTING))
      if (prefs.every((p) => p !== undefined)) routingPreferences = prefs as RoutingPreference[]
    }
  }
  const m = e('mode')
  const mode = m ? readEnum(m.at, m.v, ['Standard', 'Strict', 'Failover', 'Passthrough'] as const) : undefined
  const h = e('healthPolicy')
  const healthPolicy = h ? readEnum(h.at, h.v, ['OnlyHealthy', 'AllowAll'] as const) : undefined
  if (!routingPreferences || !mode || !healthPolicy) return undefined
  return { routingPreferences, mode, healthPolicy }
}

function readCidrVips(at: At, raw: YNode): CidrVip[] | undefined {
  const items = readSeq(at, raw)
  if (!items) return undefined
  const out: CidrVip[] = []
  let good = true
  items.forEach((item, i) => {
    const here = at.index(i, at.sink.deref(item))
    const f = readStruct(here, item, {
      fields: ['network', 'cidr'],
      required: ['network', 'cidr'],
      unknown: 'ignoredUpstream',
    })
    if (!f) {
      good = false
      return
    }
    const n = f.get('network')
    const c = f.get('cidr')
    const network = n ? readString(here.field('network', n.keyNode), n.value) : undefined
    let cidr: string | undefined
    if (c) {
      const cAt = here.field('cidr', c.keyNode)
      const text = readString(cAt, c.value)
      if (text !== undefined) {
        const r = parseCidr(text)
        if (r.ok) cidr = r.value
        else cAt.error(r.message, at.sink.deref(c.value))
      }
    }
    if (network === undefined || cidr === undefined) good = false
    else out.push({ network, cidr })
  })
  return good ? out : undefined
}

function readEndpoints(at: At, raw: YNode): Record<string, Endpoint> | undefined {
  const entries = readMap(at, raw)
  if (!entries) return undefined
  const out: Record<string, Endpoint> = {}
  let good = true
  for (const e of entries) {
    const key = keyText(at, e)
    if (key === undefined) {
      good = false
      continue
    }
    const here = at.field(key, e.keyNode)
    if (key in out) {
      here.error(`endpoint "${key}" is listed twice`, e.keyNode)
      good = false
      continue
    }
    const all = ['workloadUid', 'port', 'status'] as const
    const f = readStruct(here, e.value, { fields: all, required: all, unknown: 'reject' })
    if (!f) {
      good = false
      continue
    }
    const u = f.get('workloadUid')
    const p = f.get('port')
    const s = f.get('status')
    const workloadUid = u ? readString(here.field('workloadUid', u.keyNode), u.value) : undefined
    const port = p ? readPortMap(here.field('port', p.keyNode), p.value) : undefined
    const status = s ? readEnum(here.field('status', s.keyNode), s.value, ['Healthy', 'Unhealthy'] as const) : undefined
    if (workloadUid === undefined || port === undefined || status === undefined) {
      good = false
      continue
    }
    if (workloadUid !== key) {
      here
        .field('workloadUid', u?.keyNode)
        .warn(
          `the key "${key}" and workloadUid "${workloadUid}" differ: ztunnel checks membership by the key and ` +
            `looks the workload up by workloadUid; keep them identical`,
          u?.keyNode,
        )
    }
    out[key] = { workloadUid, port, status }
  }
  return good ? out : undefined
}

function readWeightedWaypoints(at: At, raw: YNode): WeightedWaypoint[] | undefined {
  const items = readSeq(at, raw)
  if (!items) return undefined
  const out: WeightedWaypoint[] = []
  let good = true
  items.forEach((item, i) => {
    const here = at.index(i, at.sink.deref(item))
    const f = readStruct(here, item, {
      fields: ['destination', 'weight'],
      required: ['destination', 'weight'],
      unknown: 'reject',
      hints: {
        hboneMtlsPort: 'hboneMtlsPort goes inside `destination` (destination.destination is the address string)',
      },
    })
    if (!f) {
      good = false
      return
    }
    const d = f.get('destination')
    const w = f.get('weight')
    let destination
    if (d) {
      const dAt = here.field('destination', d.keyNode)
      const dNode = at.sink.deref(d.value)
      if (dNode && isScalar(dNode)) {
        dAt.error(
          `expected a GatewayAddress mapping, found a string; the key is nested: ` +
            `destination: {destination: "${String(dNode.value)}", hboneMtlsPort: 15008}`,
          dNode,
        )
      } else {
        destination = readGatewayAddress(dAt, dNode)
      }
    }
    const weight = w ? readUint(here.field('weight', w.keyNode), w.value, 32) : undefined
    if (!destination || weight === undefined) good = false
    else out.push({ destination, weight })
  })
  return good ? out : undefined
}

/** One service entry; `undefined` when it has problems (all of them recorded). */
export function readService(sink: Sink, index: number, raw: YNode): Service | undefined {
  const node = sink.deref(raw)
  const at = new At(sink, serviceLabel(sink, index, node), '', false, node)
  const before = sink.errorCount
  const f = readStruct(at, node, {
    fields: FIELDS,
    required: ['name', 'namespace', 'hostname', 'vips', 'ports'],
    unknown: 'reject',
    hints: HINTS,
    missingHints: { vips: 'write `vips: []` for a headless service', ports: 'write `ports: {}` for none' },
  })
  if (!f) return undefined
  const s: Service = {
    name: '',
    namespace: '',
    hostname: '',
    vips: [],
    cidrVips: [],
    ports: {},
    endpoints: {},
    subjectAltNames: [],
    weightedWaypoints: [],
    canonical: false,
    visibility: 'Public',
  }
  const fieldAt = (k: string): At => at.field(k, f.get(k)?.keyNode)
  const value = (k: string): YNode => f.get(k)?.value
  for (const k of ['name', 'namespace', 'hostname'] as const) {
    if (!f.has(k)) continue
    const v = readName(fieldAt(k), value(k))
    if (v !== undefined) s[k] = v
  }
  if (f.has('vips')) {
    const v = readParsedList(fieldAt('vips'), value('vips'), parseNetworkAddress)
    if (v) s.vips = v
  }
  if (f.has('cidrVips')) {
    const v = readCidrVips(fieldAt('cidrVips'), value('cidrVips'))
    if (v) s.cidrVips = v
  }
  if (f.has('ports')) {
    const p = readPortMap(fieldAt('ports'), value('ports'), 'endpointMapping')
    if (p) s.ports = p
    const problem = servicePortsProblem(Object.keys(p ?? {}).length)
    if (problem) fieldAt('ports').error(problem)
  }
  if (f.has('endpoints')) {
    const e = readEndpoints(fieldAt('endpoints'), value('endpoints'))
    if (e) s.endpoints = e
  }
  if (f.has('subjectAltNames')) {
    const v = readStringList(fieldAt('subjectAltNames'), value('subjectAltNames'))
    if (v) s.subjectAltNames = v
  }
  if (f.has('waypoint') && !isNone(sink, value('waypoint'))) {
    const g = readGatewayAddress(fieldAt('waypoint'), value('waypoint'))
    if (g) s.waypoint = g
  }
  if (f.has('weightedWaypoints')) {
    const v = readWeightedWaypoints(fieldAt('weightedWaypoints'), value('weightedWaypoints'))
    if (v) s.weightedWaypoints = v
  }
  if (f.has('loadBalancer') && !isNone(sink, value('loadBalancer'))) {
    const lb = readLoadBalancer(fieldAt('loadBalancer'), value('loadBalancer'))
    if (lb) s.loadBalancer = lb
  }
  if (f.has('ipFamilies') && !isNone(sink, value('ipFamilies'))) {
    const v = readEnum(fieldAt('ipFamilies'), value('ipFamilies'), ['IPv4', 'IPv6', 'Dual'] as const)
    if (v) s.ipFamilies = v
  }
  if (f.has('canonical')) {
    const b = readBool(fieldAt('canonical'), value('canonical'))
    if (b !== undefined) s.canonical = b
  }
  if (f.has('visibility')) {
    const v = readEnum(fieldAt('visibility'), value('visibility'), ['Public', 'Namespace'] as const)
    if (v) s.visibility = v
  }
  return sink.errorCount === before ? s : undefined
}
