/**
 * What the admin endpoint and the metrics read from a running daemon, built from the daemon's status view (the
 * parts as they start one after another: each is undefined until it started). Kept here so daemon.ts only hands
 * its view over.
 */
import { basename } from 'node:path'
import type { Authorization } from '@kmesh-ts/xds-client'
import { mapSpecs } from '@kmesh-ts/bpf-maps/codecs'
import type { Dataplane } from '../dataplane/dataplane.js'
import type { AuthzDataplane } from '../dataplane/authz-dataplane.js'
import type { IdTable } from '../ids/id-table.js'
import type { IpsecController } from '../ipsec/index.js'
import type { Logger } from '../log.js'
import type { Observability } from '../metrics/index.js'
import type { DaemonMetricsSource, IpsecGauges } from '../metrics/daemon-metrics.js'
import type { NodeMode } from '../node/node-mode.js'
import type { AuthzProcessor } from '../processor/authz.js'
import type { WorkloadProcessor } from '../processor/processor.js'
import type { ClusterMesh } from '../sources/cluster/cluster-mesh.js'
import type { LocalMesh } from '../sources/local-mesh.js'
import type { TelemetryStats } from '../telemetry/types.js'
import { version, versionInfo } from '../version.js'
import { listOf, type DumpList } from './config-dump.js'
import type { AdminSource, Route } from './server.js'
import type { XdsStatusRecorder } from './xds-status.js'
import { uiRoutes } from './ui.js'

/** The daemon's status view, as far as these readers need it. */
export interface DaemonView {
  mode: 'local' | 'cluster'
  ready: boolean
  nodeName?: string | undefined
  pinRoot: string
  dataplane?: Dataplane | undefined
  processor?: WorkloadProcessor | undefined
  ids?: IdTable | undefined
  source?: { mesh?: LocalMesh | undefined; cluster?: ClusterMesh | undefined } | undefined
  node?: NodeMode | undefined
  authz?: AuthzProcessor | undefined
  authzDataplane?: AuthzDataplane | undefined
  ipsec?: IpsecController | undefined
  telemetry?: { stats(): TelemetryStats } | undefined
  xds?: XdsStatusRecorder | undefined
  observability?: Observability | undefined
}

/**
 * Ready once a mesh is in the maps: the first one applied (the source's promise), or in local mode any later
 * file after a refused first one (the operator fixed it: the daemon serves it, so it is ready).
 */
export function isReady(v: DaemonView): boolean {
  return v.ready || Boolean(v.source?.mesh?.status().lastApplied)
}

export function notReadyReason(v: DaemonView): string {
  const refusal = v.source?.mesh?.status().lastRefusal
  if (refusal) return `mesh file ${v.source!.mesh!.status().file} refused at ${refusal.at}: ${refusal.reason}`
  const nack = v.xds?.status.lastNack
  if (v.mode === 'cluster' && nack)
    return `waiting for istiod: last NACK at ${nack.at} (${nack.rejected} rejected): ${nack.message}`
  if (v.mode === 'cluster') return 'waiting for the first push from istiod'
  return 'the mesh file is not applied yet'
}

/** Per map name: entries now and capacity (the load-balancing maps and km_manage). */
export function mapStats(v: DaemonView): Record<string, { entries: number; capacity: number }> | undefined {
  const d = v.dataplane
  if (!d) return undefined
  const counts = d.mirrorCounts()
  const capacity = d.capacities()
  const out: Record<string, { entries: number; capacity: number }> = {}
  for (const [role, entries] of Object.entries(counts)) {
    const name = mapSpecs[role as keyof typeof mapSpecs]?.name ?? role
    out[name] = { entries, capacity: capacity[name] ?? 0 }
  }
  try {
    out[mapSpecs.manage.name] = { entries: d.maps.manage.count(), capacity: capacity[mapSpecs.manage.name] ?? 0 }
  } catch {
    // closed while scraped: left out
  }
  return out
}

/** The policies the daemon holds (the policy store's read-only view). */
function policies(v: DaemonView): ReadonlyMap<string, Authorization> {
  return v.authz?.policyList() ?? new Map()
}

function ipsecGauges(v: DaemonView): IpsecGauges | undefined {
  const c = v.ipsec
  if (!c) return undefined
  const i = c.installed
  return {
    states: i.states.size,
    policies: i.policies.size,
    cidrs: i.cidrs.size,
    spi: c.local.spi,
    planErrors: c.lastPlan?.errors.size ?? 0,
  }
}

export function metricsSourceOf(v: DaemonView): DaemonMetricsSource {
  return {
    nodeName: v.nodeName,
    version: version(),
    ready: () => isReady(v),
    maps: () => mapStats(v),
    ids: () => v.ids?.size,
    held: () => {
      const h = v.processor?.held
      return h ? { workloads: h.workloads.size, services: h.services.size, policies: policies(v).size } : undefined
    },
    meshFile: () => v.source?.mesh?.status(),
    authz: () => v.authz?.status(),
    ipsec: () => ipsecGauges(v),
  }
}

/** The admin endpoint's view of the daemon; `routes` default to the live page's (ui.ts). */
export function adminSourceOf(v: DaemonView, log: Logger, routes: Route[] = uiRoutes(v)): AdminSource {
  return {
    ready: () => isReady(v),
    notReadyReason: () => notReadyReason(v),
    version: versionInfo,
    log,
    accessLog: v.observability?.accessLog,
    pinRoot: v.pinRoot,
    routes,
    dump: () => {
      const ipsec = v.ipsec
      return {
        version: version(),
        mode: v.mode,
        ready: isReady(v),
        ...(isReady(v) ? {} : { notReady: notReadyReason(v) }),
        maps: v.dataplane?.mirrorCounts() ?? {},
        mapStats: mapStats(v) ?? {},
        ...(v.source?.cluster ? { resources: v.source.cluster.counts } : {}),
        ...(v.source?.mesh ? { meshFile: v.source.mesh.status() } : {}),
        ...(v.xds ? { xds: v.xds.status } : {}),
        ...(v.node ? { node: v.node.status() } : {}),
        ...(v.authz ? { authz: { ...v.authz.status(), attached: v.authzDataplane?.attachments() ?? [] } } : {}),
        ...(ipsec
          ? {
              ipsec: {
                node: ipsec.local,
                source: ipsec.nodeInfoSource.description,
                ...ipsecGauges(v),
                planErrors: Object.fromEntries(ipsec.lastPlan?.errors ?? []),
                // Remote address -> the mark its inbound ESP gets (per-peer IN states), and where tc runs.
                peerMarks: Object.fromEntries(
                  [...(ipsec.installed.peers ?? [])].map(([a, m]) => [a, `0x${m.toString(16)}`]),
                ),
                tc: ipsec.tcAttachments.map((a) => ({ dev: a.dev, program: basename(a.pin) })),
              },
            }
          : {}),
        ...(v.telemetry ? { telemetry: v.telemetry.stats() } : {}),
        ...(v.observability ? { accessLog: v.observability.accessLog.mode } : {}),
      }
    },
    lists: (): Record<string, DumpList> => {
      const held = v.processor?.held
      return {
        workloads: listOf(
          () => held?.workloads.values() ?? [],
          undefined,
          () => held?.workloads.size ?? 0,
        ),
        services: listOf(
          () => held?.services.values() ?? [],
          undefined,
          () => held?.services.size ?? 0,
        ),
        policies: listOf(
          () => policies(v).values(),
          undefined,
          () => policies(v).size,
        ),
        ids: listOf(
          () => v.ids?.entries() ?? [],
          ([name, id]) => ({ name, id }),
          () => v.ids?.size ?? 0,
        ),
      }
    },
  }
}
