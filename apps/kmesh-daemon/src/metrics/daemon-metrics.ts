/**
 * The daemon's own metrics: xDS (stream state, responses and bytes, ACK/NACK by type and reason, reconnects, time
 * to apply a response), the BPF maps (entries and capacity, Kmesh's kmesh_map_entry_count too), mesh-file loads
 * and refusals, ids, the held mesh, IPsec, authorization decisions per policy, readiness and the build. Gauges are
 * read from the daemon's parts when scraped (collect), so a scrape costs what the parts' status calls cost and
 * nothing runs between scrapes; counters of events are incremented as the events happen.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { XdsClientEvent } from '@kmesh-ts/xds-client'
import type { AuthzStatus } from '../processor/authz.js'
import type { MeshFileStatus, ReloadResult } from '../sources/local-mesh.js'

export interface IpsecGauges {
  states: number
  policies: number
  cidrs: number
  spi: number
  /** Remote nodes the last plan could not make rules for. */
  planErrors: number
}

/** What the metrics read when scraped; each part is absent until it started (or in a mode without it). */
export interface DaemonMetricsSource {
  nodeName?: string | undefined
  version: string
  ready(): boolean
  /** Per map name: entries now and capacity. */
  maps?(): Record<string, { entries: number; capacity: number }> | undefined
  ids?(): number | undefined
  held?(): { workloads: number; services: number; policies: number } | undefined
  meshFile?(): MeshFileStatus | undefined
  authz?(): AuthzStatus | undefined
  ipsec?(): IpsecGauges | undefined
}

/** The last segment of a type URL (`type.googleapis.com/istio.workload.Address` → `istio.workload.Address`). */
export function shortType(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1) || typeUrl
}

/** Distinct NACK reasons kept as label values; the rest are `other` (a reason names resources: unbounded). */
const MAX_REASONS = 50

/**
 * A NACK reason as a label value: the first rejection's reason with resource names, addresses and numbers taken
 * out, so reasons of one kind share a series.
 */
export function reasonClass(reason: string): string {
  return reason
    .replace(/"[^"]*"|'[^']*'|`[^`]*`/g, '…')
    .replace(/\b[\w.-]+\/[\w./:-]+/g, '…')
    .replace(/\d+(\.\d+)*/g, 'N')
    .slice(0, 100)
}

export class DaemonMetrics {
  private readonly xds
  private readonly meshLoads: Counter<'outcome'>
  private readonly reasons = new Set<string>()
  private lastSpi: number | undefined
  private meshRefusedNow = 0
  private rotations: Counter

  constructor(registry: Registry, source: DaemonMetricsSource) {
    const reg = [registry]
    const node = source.nodeName ?? ''
    new Gauge({
      name: 'kmesh_ts_build_info',
      help: 'The running kmesh-daemon (always 1)',
      labelNames: ['version'],
      registers: reg,
      collect() {
        this.set({ version: source.version }, 1)
      },
    })
    new Gauge({
      name: 'kmesh_ts_ready',
      help: '1 once the first mesh (file or istiod push) is in the maps',
      registers: reg,
      collect() {
        this.set(source.ready() ? 1 : 0)
      },
    })
    this.xds = {
      connected: new Gauge({
        name: 'kmesh_ts_xds_connected',
        help: '1 while a stream to istiod is open and has delivered a response',
        registers: reg,
      }),
      connects: new Counter({
        name: 'kmesh_ts_xds_connects_total',
        help: 'Streams opened to istiod (the first connect and every reconnect)',
        registers: reg,
      }),
      disconnects: new Counter({
        name: 'kmesh_ts_xds_disconnects_total',
        help: 'Streams that ended; benign="true" for routine closes (istiod GOAWAY, max connection age)',
        labelNames: ['benign'],
        registers: reg,
      }),
      errors: new Counter({
        name: 'kmesh_ts_xds_errors_total',
        help: 'Errors before a stream opened (token, CA) or while handling a response',
        registers: reg,
      }),
      messages: new Counter({
        name: 'kmesh_ts_xds_messages_total',
        help: 'Responses received from istiod, by type',
        labelNames: ['type'],
        registers: reg,
      }),
      bytes: new Counter({
        name: 'kmesh_ts_xds_received_bytes_total',
        help: 'Bytes of the responses received from istiod (serialized), by type',
        labelNames: ['type'],
        registers: reg,
      }),
      resources: new Counter({
        name: 'kmesh_ts_xds_resources_total',
        help: 'Resources received (updated) and removed, by type',
        labelNames: ['type', 'change'],
        registers: reg,
      }),
      acks: new Counter({
        name: 'kmesh_ts_xds_acks_total',
        help: 'Responses applied and ACKed, by type',
        labelNames: ['type'],
        registers: reg,
      }),
      nacks: new Counter({
        name: 'kmesh_ts_xds_nacks_total',
        help: 'Responses NACKed, by type and the class of the first rejection reason',
        labelNames: ['type', 'reason'],
        registers: reg,
      }),
      apply: new Histogram({
        name: 'kmesh_ts_xds_apply_seconds',
        help: 'Time to apply one response from istiod to the maps, by type',
        labelNames: ['type'],
        buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        registers: reg,
      }),
    }
    for (const c of [this.xds.connects, this.xds.errors]) c.inc(0)
    this.xds.connected.set(0)

    // Kmesh's map families (node_name, map_name), and ours with the capacity.
    const maps = () => source.maps?.() ?? {}
    new Gauge({
      name: 'kmesh_map_entry_count',
      help: "Entries in a BPF map (Kmesh's family)",
      labelNames: ['node_name', 'map_name'],
      registers: reg,
      collect() {
        for (const [name, m] of Object.entries(maps())) this.set({ node_name: node, map_name: name }, m.entries)
      },
    })
    new Gauge({
      name: 'kmesh_map_count_total',
      help: "BPF maps the daemon holds (Kmesh's family)",
      labelNames: ['node_name'],
      registers: reg,
      collect() {
        this.set({ node_name: node }, Object.keys(maps()).length)
      },
    })
    new Gauge({
      name: 'kmesh_ts_map_entries',
      help: 'Entries in a BPF map',
      labelNames: ['map'],
      registers: reg,
      collect() {
        for (const [name, m] of Object.entries(maps())) this.set({ map: name }, m.entries)
      },
    })
    new Gauge({
      name: 'kmesh_ts_map_capacity',
      help: 'Capacity (max_entries) of a BPF map now (the maps grow online up to --map-size-max)',
      labelNames: ['map'],
      registers: reg,
      collect() {
        for (const [name, m] of Object.entries(maps())) this.set({ map: name }, m.capacity)
      },
    })

    new Gauge({
      name: 'kmesh_ts_ids',
      help: 'Stable ids allocated (workloads and services)',
      registers: reg,
      collect() {
        this.set(source.ids?.() ?? 0)
      },
    })
    new Gauge({
      name: 'kmesh_ts_mesh_resources',
      help: 'Resources held, by kind (workload, service, policy)',
      labelNames: ['kind'],
      registers: reg,
      collect() {
        const h = source.held?.()
        if (!h) return
        this.set({ kind: 'workload' }, h.workloads)
        this.set({ kind: 'service' }, h.services)
        this.set({ kind: 'policy' }, h.policies)
      },
    })

    this.meshLoads = new Counter({
      name: 'kmesh_ts_mesh_file_loads_total',
      help: 'Mesh file reloads by outcome (applied, refused)',
      labelNames: ['outcome'],
      registers: reg,
    })
    const self = this
    new Gauge({
      name: 'kmesh_ts_mesh_file_refused',
      help: '1 while the last mesh file read was refused (the last good state stays in force)',
      registers: reg,
      collect() {
        this.set(self.meshRefusedNow)
      },
    })
    new Gauge({
      name: 'kmesh_ts_mesh_file_last_applied_timestamp_seconds',
      help: 'When a mesh file was last applied (unix seconds; absent before the first)',
      registers: reg,
      collect() {
        const at = source.meshFile?.()?.lastApplied?.at
        if (at) this.set(Date.parse(at) / 1000)
      },
    })

    // Authorization: the kernel's counters per policy key, read at scrape time (absolute values).
    new Counter({
      name: 'kmesh_ts_authz_decisions_total',
      help: 'Authorization decisions by policy (namespace/name; "default" when no policy matched) and decision',
      labelNames: ['policy', 'decision'],
      registers: reg,
      collect() {
        const s = source.authz?.()
        if (!s) return
        this.reset()
        const add = (policy: string, c: { allow: number; deny: number; dryRunDeny: number }): void => {
          this.inc({ policy, decision: 'allow' }, c.allow)
          this.inc({ policy, decision: 'deny' }, c.deny)
          this.inc({ policy, decision: 'dry_run_deny' }, c.dryRunDeny)
        }
        for (const [policy, c] of Object.entries(s.counters ?? {})) add(policy, c)
        if (s.defaults) add('default', s.defaults)
      },
    })
    new Gauge({
      name: 'kmesh_ts_authz_policies',
      help: 'Authorization policies held; enforced="true" once a compiled set is in the kernel',
      labelNames: ['enforced'],
      registers: reg,
      collect() {
        const s = source.authz?.()
        if (!s) return
        this.reset()
        this.set({ enforced: String(s.enforced) }, s.policies)
      },
    })

    // IPsec: rules installed, the key in use and its rotations.
    this.rotations = new Counter({
      name: 'kmesh_ts_ipsec_key_rotations_total',
      help: 'Changes of the IPsec key (SPI) in use, as seen by scrapes',
      registers: reg,
    })
    new Gauge({
      name: 'kmesh_ts_ipsec',
      help: 'IPsec state: xfrm states and policies installed, remote pod CIDRs, the SPI in use, plan errors',
      labelNames: ['item'],
      registers: reg,
      collect() {
        const s = source.ipsec?.()
        if (!s) return
        if (self.lastSpi !== undefined && self.lastSpi !== s.spi) self.rotations.inc()
        self.lastSpi = s.spi
        this.set({ item: 'xfrm_states' }, s.states)
        this.set({ item: 'xfrm_policies' }, s.policies)
        this.set({ item: 'remote_cidrs' }, s.cidrs)
        this.set({ item: 'spi' }, s.spi)
        this.set({ item: 'plan_errors' }, s.planErrors)
      },
    })
  }

  /** The XdsClient's onEvent, for metrics (the daemon's own handler logs). */
  xdsEvent(e: XdsClientEvent): void {
    const x = this.xds
    switch (e.type) {
      case 'connecting':
        x.connects.inc()
        break
      case 'response':
        x.connected.set(1)
        x.messages.inc({ type: shortType(e.typeUrl) })
        x.bytes.inc({ type: shortType(e.typeUrl) }, e.bytes)
        x.resources.inc({ type: shortType(e.typeUrl), change: 'updated' }, e.resources)
        x.resources.inc({ type: shortType(e.typeUrl), change: 'removed' }, e.removed)
        break
      case 'ack':
        x.acks.inc({ type: shortType(e.typeUrl) })
        break
      case 'nack': {
        let reason = reasonClass(e.rejections[0]?.reason ?? e.message)
        if (!this.reasons.has(reason)) {
          if (this.reasons.size >= MAX_REASONS) reason = 'other'
          else this.reasons.add(reason)
        }
        x.nacks.inc({ type: shortType(e.typeUrl), reason })
        break
      }
      case 'disconnected':
        x.connected.set(0)
        x.disconnects.inc({ benign: String(e.benign) })
        break
      case 'error':
        x.errors.inc()
        if (e.retryInMs !== undefined) x.connected.set(0)
        break
    }
  }

  /** Wraps the xDS batch handler to time each response's application. */
  timedHandler<B extends { typeUrl: string }, R>(handler: (batch: B) => Promise<R>): (batch: B) => Promise<R> {
    return async (batch) => {
      const end = this.xds.apply.startTimer({ type: shortType(batch.typeUrl) })
      try {
        return await handler(batch)
      } finally {
        end()
      }
    }
  }

  /** LocalMesh's onResult. */
  meshFileResult(r: ReloadResult): void {
    if (!r.ok && r.error?.message.startsWith('the daemon is stopping')) return
    this.meshLoads.inc({ outcome: r.ok ? 'applied' : 'refused' })
    this.meshRefusedNow = r.ok ? 0 : 1
  }
}
