/**
 * Checks across entries: duplicate keys (ztunnel silently keeps the later entry, reference §1
 * "Duplicates"), references to objects not in the file (ztunnel accepts them and fails later, §8
 * item 12: warnings here), and the kmesh-ts kernel record limits.
 */
import type { EntryLines } from './entry-lines.js'
import { destinationText } from './gateway-address.js'
import { workloadServicesProblem } from '../processor/kernel-fit.js'
import { joinKey, type Sink } from './reader.js'
import { policyKeyOf, serviceKeyOf } from '../model/keys.js'
import type { GatewayAddress, Policy, Service, Workload } from '../model/mesh.js'

/** An entry read without problems, with what is needed to point at it. */
export interface ReadEntry<T> {
  value: T
  index: number
  entry: string
  lines: EntryLines
}

/** The key of an entry as written, also for entries that have other problems. */
export interface EntryKey {
  key: string | undefined
  entry: string
  lines: EntryLines
}

export interface ReadConfig {
  workloads: ReadEntry<Workload>[]
  services: ReadEntry<Service>[]
  policies: ReadEntry<Policy>[]
  keys: { workloads: EntryKey[]; services: EntryKey[]; policies: EntryKey[] }
}

/** A subjectAltName ztunnel uses: `spiffe://<trust domain>/ns/<ns>/sa/<sa>` (any other it ignores). */
export const SPIFFE_SAN = /^spiffe:\/\/[^/]+\/ns\/[^/]+\/sa\/[^/]+$/

function checkDuplicates(sink: Sink, keys: EntryKey[], keyName: string, what: string): void {
  const first = new Map<string, EntryKey>()
  for (const e of keys) {
    if (e.key === undefined) continue
    const earlier = first.get(e.key)
    if (!earlier) {
      first.set(e.key, e)
      continue
    }
    sink.addAtLine(
      'error',
      e.entry,
      keyName,
      `${what} "${e.key}" is already used by ${earlier.entry.split(' ')[0]}; ztunnel would silently keep only the later entry`,
      e.lines.at(keyName),
    )
  }
}

export function crossCheck(sink: Sink, rc: ReadConfig): void {
  checkDuplicates(sink, rc.keys.workloads, 'uid', 'uid')
  checkDuplicates(sink, rc.keys.services, 'hostname', 'service namespace/hostname')
  checkDuplicates(sink, rc.keys.policies, 'name', 'policy namespace/name')

  const services = new Map(rc.services.map((e) => [serviceKeyOf(e.value), e]))
  const policies = new Map(rc.policies.map((e) => [policyKeyOf(e.value), e]))
  const uids = new Set(rc.workloads.map((e) => e.value.uid))

  // Kernel record limit, counting explicit `endpoints` too (the workload's own map is checked on read).
  const explicitMembership = new Map<string, Set<string>>()
  for (const e of rc.services) {
    for (const ep of Object.values(e.value.endpoints)) {
      const set = explicitMembership.get(ep.workloadUid) ?? new Set<string>()
      set.add(serviceKeyOf(e.value))
      explicitMembership.set(ep.workloadUid, set)
    }
  }
  for (const e of rc.workloads) {
    const explicit = explicitMembership.get(e.value.uid)
    const own = Object.keys(e.value.services)
    // the keys of one map are distinct: only explicit endpoints can repeat one
    const count = explicit ? new Set([...own, ...explicit]).size : own.length
    const problem = workloadServicesProblem(count)
    if (problem) sink.addAtLine('error', e.entry, 'services', problem, e.lines.at('services'))
  }

  // References (warnings: ztunnel loads such files).
  for (const e of rc.workloads) {
    for (const key of Object.keys(e.value.services)) {
      if (!services.has(key)) {
        sink.addAtLine(
          'warning',
          e.entry,
          joinKey('services', key),
          `no service "${key}" in the file; this endpoint is never used`,
          e.lines.at('services', key),
        )
      }
    }
    for (const key of e.value.authorizationPolicies) {
      if (!policies.has(key)) {
        sink.addAtLine(
          'warning',
          e.entry,
          'authorizationPolicies',
          `no policy "${key}" in the file; ztunnel skips it with a warning at evaluation time`,
          e.lines.at('authorizationPolicies'),
        )
      }
    }
  }
  for (const e of rc.services) {
    for (const [key, ep] of Object.entries(e.value.endpoints)) {
      if (!uids.has(ep.workloadUid)) {
        sink.addAtLine(
          'warning',
          e.entry,
          joinKey(joinKey('endpoints', key), 'workloadUid'),
          `no workload with uid "${ep.workloadUid}" in the file; this endpoint cannot be used`,
          e.lines.at('endpoints', key),
        )
      }
    }
  }
  const attached = new Set(rc.workloads.flatMap((w) => w.value.authorizationPolicies))
  for (const e of rc.policies) {
    if (e.value.scope !== 'WorkloadSelector') continue
    const key = policyKeyOf(e.value)
    if (!attached.has(key)) {
      sink.addAtLine(
        'warning',
        e.entry,
        'scope',
        `WorkloadSelector policy "${key}" is listed in no workload's authorizationPolicies, so it applies to nothing`,
        e.lines.at('scope'),
      )
    }
  }

  checkGateways(sink, rc, services)
  checkAddresses(sink, rc)
  for (const e of rc.services) {
    e.value.subjectAltNames.forEach((san, i) => {
      if (!SPIFFE_SAN.test(san)) {
        sink.addAtLine(
          'warning',
          e.entry,
          `subjectAltNames[${i}]`,
          `"${san}" is not spiffe://<trust domain>/ns/<ns>/sa/<sa>; ztunnel ignores it`,
          e.lines.at('subjectAltNames'),
        )
      }
    })
  }
}

/** §4.1: a gateway destination must resolve to something in the file. */
function checkGateways(sink: Sink, rc: ReadConfig, services: Map<string, ReadEntry<Service>>): void {
  const anyGateway =
    rc.workloads.some((w) => w.value.waypoint || w.value.networkGateway) ||
    rc.services.some((s) => s.value.waypoint || s.value.weightedWaypoints.length > 0)
  if (!anyGateway) return // nothing to resolve: no index to build (a big generated mesh often has none)
  // Indexes, so that a file with thousands of workloads stays linear.
  const byHostname = new Set(rc.workloads.map((w) => `${w.value.namespace}/${w.value.hostname}`))
  const addresses = new Set<string>()
  for (const w of rc.workloads) for (const ip of w.value.workloadIps) addresses.add(`${w.value.network}/${ip}`)
  for (const s of rc.services) for (const v of s.value.vips) addresses.add(`${v.network}/${v.ip}`)
  const members = new Map<string, Workload[]>()
  const uidToWorkload = new Map(rc.workloads.map((w) => [w.value.uid, w.value]))
  const addMember = (svc: string, w: Workload | undefined): void => {
    if (!w) return
    const list = members.get(svc) ?? []
    list.push(w)
    members.set(svc, list)
  }
  for (const w of rc.workloads) for (const svc of Object.keys(w.value.services)) addMember(svc, w.value)
  for (const s of rc.services) {
    for (const ep of Object.values(s.value.endpoints))
      addMember(serviceKeyOf(s.value), uidToWorkload.get(ep.workloadUid))
  }
  const resolves = (g: GatewayAddress): boolean => {
    const d = g.destination
    if (d.kind === 'hostname') {
      const k = `${d.namespace}/${d.hostname}`
      return services.has(k) || byHostname.has(k)
    }
    return addresses.has(`${d.network}/${d.ip}`)
  }
  const check = (
    e: ReadEntry<Workload | Service>,
    key: string,
    path: string[],
    g: GatewayAddress | undefined,
  ): void => {
    if (!g) return
    if (!resolves(g)) {
      const d = g.destination
      const what =
        d.kind === 'hostname'
          ? `no service or workload with namespace "${d.namespace}" and hostname "${d.hostname}"`
          : `no workload IP or service VIP "${d.ip}" in network "${d.network}"`
      sink.addAtLine(
        'warning',
        e.entry,
        key,
        `destination "${destinationText(g)}": ${what} in the file`,
        e.lines.at(...path),
      )
      return
    }
    // A waypoint reached through a service needs hboneMtlsPort among the service's ports, unless the
    // waypoint workloads use applicationTunnel (§4.1); otherwise ztunnel filters the endpoints out.
    const d = g.destination
    if (d.kind !== 'hostname') return
    const svc = services.get(`${d.namespace}/${d.hostname}`)
    if (!svc || g.hboneMtlsPort in svc.value.ports) return
    const svcKey = `${d.namespace}/${d.hostname}`
    const ws = members.get(svcKey) ?? []
    if (ws.length > 0 && ws.every((w) => w.applicationTunnel !== undefined)) return
    sink.addAtLine(
      'warning',
      e.entry,
      key,
      `service "${svcKey}" does not list port ${g.hboneMtlsPort} (hboneMtlsPort) in its ports, ` +
        `so its endpoints are filtered out when used as a waypoint`,
      e.lines.at(...path),
    )
  }
  for (const e of rc.workloads) {
    check(e, 'waypoint.destination', ['waypoint', 'destination'], e.value.waypoint)
    check(e, 'networkGateway.destination', ['networkGateway', 'destination'], e.value.networkGateway)
  }
  for (const e of rc.services) {
    check(e, 'waypoint.destination', ['waypoint', 'destination'], e.value.waypoint)
    e.value.weightedWaypoints.forEach((ww, i) =>
      check(e, `weightedWaypoints[${i}].destination.destination`, ['weightedWaypoints'], ww.destination),
    )
  }
}

/** Two owners of one address: ztunnel picks one by rule; the kernel frontend map holds one per IP. */
function checkAddresses(sink: Sink, rc: ReadConfig): void {
  const byIp = new Map<string, ReadEntry<Workload>>()
  for (const e of rc.workloads) {
    if (e.value.networkMode === 'HostNetwork') continue // never indexed by IP (§4)
    for (const ip of e.value.workloadIps) {
      const k = `${e.value.network}/${ip}`
      const earlier = byIp.get(k)
      if (!earlier) {
        byIp.set(k, e)
        continue
      }
      sink.addAtLine(
        'warning',
        e.entry,
        'workloadIps',
        `${ip} (network "${e.value.network}") is also an address of ${earlier.entry}; ztunnel resolves the ` +
          `address to one of them (a uid containing //Pod/ wins, then HBONE)`,
        e.lines.at('workloadIps'),
      )
    }
  }
  const byVip = new Map<string, ReadEntry<Service>>()
  for (const e of rc.services) {
    for (const v of e.value.vips) {
      const k = `${v.network}/${v.ip}`
      const earlier = byVip.get(k)
      if (!earlier) {
        byVip.set(k, e)
        continue
      }
      if (earlier === e) continue
      sink.addAtLine(
        'warning',
        e.entry,
        'vips',
        `VIP "${k}" also belongs to ${earlier.entry}; ztunnel prefers the client's namespace, then canonical`,
        e.lines.at('vips'),
      )
    }
  }
}
