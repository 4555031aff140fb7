/**
 * Fields present in the file that the kmesh-ts data path does not act on yet. They are parsed and
 * validated like everything else; this list tells the operator which parts of the file have no effect.
 */
import type { MeshConfig, Service, Workload } from '../model/mesh.js'

const MAX_NAMED = 5

function named(names: string[]): string {
  const shown = names.slice(0, MAX_NAMED).join(', ')
  return names.length > MAX_NAMED ? `${shown}, and ${names.length - MAX_NAMED} more` : shown
}

function line(field: string, noun: string, names: string[], effect: string): string {
  const n = names.length
  return `${field}: ${n} ${noun}${n === 1 ? '' : 's'} (${named(names)}): ${effect}`
}

const wName = (w: Workload): string => w.uid
const sName = (s: Service): string => `${s.namespace}/${s.hostname}`

export function notEnforced(config: MeshConfig): string[] {
  const out: string[] = []
  const { workloads, services } = config

  const wl = (field: string, pick: (w: Workload) => boolean, effect: string, label = wName): void => {
    const names = workloads.filter(pick).map(label)
    if (names.length > 0) out.push(line(field, 'workload', names, effect))
  }
  const sv = (field: string, pick: (s: Service) => boolean, effect: string): void => {
    const names = services.filter(pick).map(sName)
    if (names.length > 0) out.push(line(field, 'service', names, effect))
  }

  sv('weightedWaypoints', (s) => s.weightedWaypoints.length > 0, 'not used yet')
  sv('cidrVips', (s) => s.cidrVips.length > 0, 'not used yet; only exact vips are intercepted')
  wl('applicationTunnel', (w) => w.applicationTunnel !== undefined, 'not used yet')
  wl('networkGateway', (w) => w.networkGateway !== undefined, 'not used yet; no cross-network routing')
  sv('visibility', (s) => s.visibility !== 'Public', 'not enforced yet; the service is reachable from every namespace')
  sv('subjectAltNames', (s) => s.subjectAltNames.length > 0, 'not used yet (no identity checks on the data path)')
  sv('ipFamilies', (s) => s.ipFamilies !== undefined, 'not used yet; every listed vip is served')
  wl(
    'hostname',
    (w) => w.workloadIps.length === 0 && w.hostname !== '',
    'hostname-only workloads are not resolved yet; they get no backend',
  )
  wl('nativeTunnel', (w) => w.nativeTunnel, 'not used yet')
  return out
}
