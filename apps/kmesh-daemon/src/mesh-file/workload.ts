/** Workload entries (docs/reference/local-config.md §4, with the flatten rules of §2.4). */
import { isSeq } from 'yaml'

import { MAX_NAME_LENGTH } from './bounds.js'
import { workloadServicesProblem } from '../processor/kernel-fit.js'
import { readGatewayAddress } from './gateway-address.js'
import {
  At,
  isNone,
  readBool,
  readEnum,
  readMap,
  readName,
  readParsedList,
  readPortMap,
  readString,
  readStringList,
  readStruct,
  readUint,
  keyText,
  rawText,
  type Sink,
  type YNode,
} from './reader.js'
import type { ApplicationTunnel, Locality, PortMap, Workload } from '../model/mesh.js'
import { blankWorkload } from '../model/defaults.js'
import { parseIp, parseNamespacedHostname } from './values.js'

const STRING_FIELDS = [
  'uid',
  'name',
  'namespace',
  'hostname',
  'network',
  'trustDomain',
  'serviceAccount',
  'clusterId',
  'node',
  'workloadName',
  'workloadType',
  'canonicalName',
  'canonicalRevision',
] as const

/** Kubernetes names: at most MAX_NAME_LENGTH characters. */
const NAME_FIELDS: ReadonlySet<string> = new Set(['name', 'namespace', 'hostname'])

const FIELDS = [
  ...STRING_FIELDS,
  'workloadIps',
  'protocol',
  'networkMode',
  'status',
  'capacity',
  'locality',
  'waypoint',
  'networkGateway',
  'nativeTunnel',
  'applicationTunnel',
  'authorizationPolicies',
  'services',
] as const

/** Proto or `/config_dump` names people paste by mistake (§4 "Keys that look plausible but are rejected"). */
const HINTS: Record<string, string> = {
  addresses: 'that is the protobuf name; write `workloadIps: ["10.0.0.1"]`',
  workloadIPs: 'write `workloadIps` (camelCase, lower-case "ps")',
  tunnelProtocol: 'that is the protobuf name; write `protocol: TCP` or `protocol: HBONE`',
  extensions: 'the local file has no `extensions`',
  loadBalancing: '`loadBalancer` belongs to service entries, not workloads',
}

export const WORKLOAD_ENTRY_FIELDS: readonly string[] = FIELDS

/** `workloads[2] (uid X)`, named before the entry is read so every problem carries it. */
export function workloadLabel(sink: Sink, index: number, raw: YNode): string {
  const uid = rawText(sink, raw, 'uid')
  if (uid !== undefined && uid !== '') return `workloads[${index}] (uid ${uid})`
  const name = rawText(sink, raw, 'name')
  return `workloads[${index}] (no uid${name !== undefined ? `, name ${name}` : ''})`
}

function readLocality(at: At, raw: YNode): Locality | undefined {
  const f = readStruct(at, raw, {
    fields: ['region', 'zone', 'subzone'],
    required: ['region', 'zone', 'subzone'],
    unknown: 'ignoredUpstream',
    missingHints: {
      region: 'once locality is present all three keys are required; use "" for unused levels',
      zone: 'once locality is present all three keys are required; use "" for unused levels',
      subzone: 'once locality is present all three keys are required; use "" for unused levels',
    },
  })
  if (!f) return undefined
  const get = (k: string): string | undefined => {
    const e = f.get(k)
    return e ? readString(at.field(k, e.keyNode), e.value) : undefined
  }
  const region = get('region')
  const zone = get('zone')
  const subzone = get('subzone')
  if (region === undefined || zone === undefined || subzone === undefined) return undefined
  return { region, zone, subzone }
}

function readApplicationTunnel(at: At, raw: YNode): ApplicationTunnel | undefined {
  const f = readStruct(at, raw, { fields: ['protocol', 'port'], required: ['protocol'], unknown: 'reject' })
  if (!f) return undefined
  const p = f.get('protocol')
  const protocol = p ? readEnum(at.field('protocol', p.keyNode), p.value, ['NONE', 'PROXY'] as const) : undefined
  const portEntry = f.get('port')
  let port: number | undefined
  let good = protocol !== undefined
  if (portEntry && !isNone(at.sink, portEntry.value)) {
    port = readUint(at.field('port', portEntry.keyNode), portEntry.value, 16)
    if (port === undefined) good = false
  }
  if (!good || protocol === undefined) return undefined
  return port === undefined ? { protocol } : { protocol, port }
}

/** The workload's `services` map: owned by the outer `LocalWorkload`, so not flattened (§2.4 item 1). */
function readServicesMap(at: At, raw: YNode): Record<string, PortMap> | undefined {
  const node = at.sink.deref(raw)
  if (node && isSeq(node)) {
    at.error(
      'expected a mapping "namespace/hostname": {servicePort: targetPort}, found a list ' +
        '(the list form shown by /config_dump cannot be written in the local file, reference §8 item 1)',
      node,
    )
    return undefined
  }
  const direct = at.direct()
  const entries = readMap(direct, node)
  if (!entries) return undefined
  const out: Record<string, PortMap> = {}
  let good = true
  for (const e of entries) {
    const key = keyText(direct, e)
    if (key === undefined) {
      good = false
      continue
    }
    const here = direct.field(key, e.keyNode)
    const nh = parseNamespacedHostname(key)
    if (!nh.ok) {
      here.error(`${nh.message}; keys are "<namespace>/<hostname>" of a service`, e.keyNode)
      good = false
      continue
    }
    if (nh.value.namespace.length > MAX_NAME_LENGTH || nh.value.hostname.length > MAX_NAME_LENGTH) {
      here.error(
        `the namespace or hostname is longer than ${MAX_NAME_LENGTH} characters (the Kubernetes limit)`,
        e.keyNode,
      )
      good = false
      continue
    }
    if (key in out) {
      here.error(`service "${key}" is listed twice`, e.keyNode)
      good = false
      continue
    }
    const ports = readPortMap(here, e.value)
    if (!ports) {
      good = false
      continue
    }
    out[key] = ports
  }
  return good ? out : undefined
}

/** One workload entry; `undefined` when it has problems (all of them recorded). */
export function readWorkload(sink: Sink, index: number, raw: YNode): Workload | undefined {
  const node = sink.deref(raw)
  const at = new At(sink, workloadLabel(sink, index, node), '', true, node)
  const before = sink.errorCount
  const f = readStruct(at, node, {
    fields: FIELDS,
    required: ['namespace', 'workloadIps', 'services'],
    unknown: 'reject',
    hints: HINTS,
    missingHints: {
      services: 'write `services: {}` for a workload that belongs to no service',
      workloadIps: 'write `workloadIps: []` for a workload without addresses',
    },
  })
  if (!f) return undefined
  if (!f.has('uid')) {
    at.field('uid', node).error(
      'missing `uid`: ztunnel defaults it to "" and workloads without a uid silently replace each other ' +
        '(reference §8 item 7); give every workload a unique uid',
      node,
    )
  }

  const w: Workload = blankWorkload()
  const fieldAt = (k: string): At => at.field(k, f.get(k)?.keyNode)
  const value = (k: string): YNode => f.get(k)?.value

  for (const k of STRING_FIELDS) {
    if (!f.has(k)) continue
    const s = NAME_FIELDS.has(k) ? readName(fieldAt(k), value(k)) : readString(fieldAt(k), value(k))
    if (k === 'uid' && s === '') {
      fieldAt('uid').error(
        'uid is "": ztunnel treats it like a missing uid, and workloads without a uid silently replace each ' +
          'other (reference §8 item 7); give every workload a unique uid',
        sink.deref(value('uid')),
      )
    }
    if (s !== undefined) w[k] = s
  }
  if (f.has('workloadIps')) {
    const ips = readParsedList(fieldAt('workloadIps'), value('workloadIps'), (s) => {
      const r = parseIp(s)
      return r.ok ? { ok: true, value: r.value.ip } : r
    })
    if (ips) w.workloadIps = ips
  }
  if (f.has('protocol')) {
    const p = readEnum(fieldAt('protocol'), value('protocol'), ['TCP', 'HBONE'] as const)
    if (p) w.protocol = p
  }
  if (f.has('networkMode')) {
    const m = readEnum(fieldAt('networkMode'), value('networkMode'), ['Standard', 'HostNetwork'] as const)
    if (m) w.networkMode = m
  }
  if (f.has('status')) {
    const s = readEnum(fieldAt('status'), value('status'), ['Healthy', 'Unhealthy'] as const)
    if (s) w.status = s
  }
  if (f.has('capacity')) {
    const c = readUint(fieldAt('capacity'), value('capacity'), 32)
    if (c !== undefined) w.capacity = c
  }
  if (f.has('nativeTunnel')) {
    const b = readBool(fieldAt('nativeTunnel'), value('nativeTunnel'))
    if (b !== undefined) w.nativeTunnel = b
  }
  if (f.has('locality') && !isNone(sink, value('locality'))) {
    const l = readLocality(fieldAt('locality'), value('locality'))
    if (l) w.locality = l
  }
  for (const k of ['waypoint', 'networkGateway'] as const) {
    if (f.has(k) && !isNone(sink, value(k))) {
      const g = readGatewayAddress(fieldAt(k), value(k))
      if (g) w[k] = g
    }
  }
  if (f.has('applicationTunnel') && !isNone(sink, value('applicationTunnel'))) {
    const t = readApplicationTunnel(fieldAt('applicationTunnel'), value('applicationTunnel'))
    if (t) w.applicationTunnel = t
  }
  if (f.has('authorizationPolicies')) {
    const ps = readStringList(fieldAt('authorizationPolicies'), value('authorizationPolicies'))
    if (ps) w.authorizationPolicies = ps
  }
  if (f.has('services')) {
    const s = readServicesMap(fieldAt('services'), value('services'))
    if (s) w.services = s
    const problem = workloadServicesProblem(Object.keys(s ?? {}).length)
    if (problem) fieldAt('services').error(problem)
  }
  return sink.errorCount === before ? w : undefined
}
