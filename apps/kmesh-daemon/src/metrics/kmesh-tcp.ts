/**
 * Kmesh's TCP metrics from connection records (a TelemetrySink): the same family names and label sets as Kmesh
 * (pkg/controller/telemetry, docs/reference: metric names), so a Kmesh user's dashboards and alerts keep working.
 *
 *   workload:   kmesh_tcp_workload_connections_opened_total, …_closed_total, kmesh_tcp_workload_received_bytes_total,
 *               kmesh_tcp_workload_sent_bytes_total, kmesh_tcp_workload_conntections_failed_total (Kmesh's spelling),
 *               kmesh_tcp_retrans_total, kmesh_tcp_packet_loss_total
 *   service:    kmesh_tcp_connections_opened_total, …_closed_total, kmesh_tcp_received_bytes_total,
 *               kmesh_tcp_sent_bytes_total, kmesh_tcp_conntections_failed_total (Kmesh's spelling)
 *   connection: kmesh_tcp_connection_sent_bytes_total, kmesh_tcp_connection_received_bytes_total,
 *               kmesh_tcp_connection_packet_lost_total, kmesh_tcp_connection_retrans_total
 *
 * Kmesh declares every family a gauge; the workload and service families only grow, so they are counters here
 * (PromQL reads both the same; rate() is right for either). The connection families are gauges per connection:
 * a series appears when the connection opens, carries its totals at close, and is dropped a while after the close
 * (Kmesh drops them too), so the number of series stays bounded; past `maxConnections` live series new
 * connections are not given one and kmesh_ts_connection_series_skipped_total counts them.
 */
import { Counter, Gauge, type Registry } from 'prom-client'
import type { Workload } from '../model/index.js'
import type { ConnectionRecord, TelemetrySink } from '../telemetry/types.js'

const SOURCE_LABELS = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
] as const
const DESTINATION_WORKLOAD_LABELS = [
  'destination_workload',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_cluster',
] as const
const TRAILER = ['request_protocol', 'response_flags', 'connection_security_policy'] as const
const SERVICE = ['destination_service', 'destination_service_namespace', 'destination_service_name'] as const
const POD = ['destination_pod_address', 'destination_pod_namespace', 'destination_pod_name'] as const

/** Kmesh's label sets, in Kmesh's order. */
export const WORKLOAD_LABELS = [...SOURCE_LABELS, ...POD, ...DESTINATION_WORKLOAD_LABELS, ...TRAILER] as const
export const SERVICE_LABELS = [...SOURCE_LABELS, ...SERVICE, ...DESTINATION_WORKLOAD_LABELS, ...TRAILER] as const
export const CONNECTION_LABELS = [
  'reporter',
  'start_time',
  ...SOURCE_LABELS.slice(1),
  'source_address',
  'destination_address',
  ...POD,
  ...SERVICE,
  ...DESTINATION_WORKLOAD_LABELS,
  ...TRAILER,
] as const

type Labels<T extends readonly string[]> = Record<T[number], string>

/** Every Kmesh TCP family this sink exports, by level (the README lists them from here). */
export const KMESH_TCP_FAMILIES = {
  workload: [
    'kmesh_tcp_workload_connections_opened_total',
    'kmesh_tcp_workload_connections_closed_total',
    'kmesh_tcp_workload_received_bytes_total',
    'kmesh_tcp_workload_sent_bytes_total',
    'kmesh_tcp_workload_conntections_failed_total',
    'kmesh_tcp_retrans_total',
    'kmesh_tcp_packet_loss_total',
  ],
  service: [
    'kmesh_tcp_connections_opened_total',
    'kmesh_tcp_connections_closed_total',
    'kmesh_tcp_received_bytes_total',
    'kmesh_tcp_sent_bytes_total',
    'kmesh_tcp_conntections_failed_total',
  ],
  connection: [
    'kmesh_tcp_connection_sent_bytes_total',
    'kmesh_tcp_connection_received_bytes_total',
    'kmesh_tcp_connection_packet_lost_total',
    'kmesh_tcp_connection_retrans_total',
  ],
} as const

export interface KmeshTcpMetricsOptions {
  /** The mesh's workload by uid (canonical names, service account, cluster for the labels). */
  workload?: ((uid: string) => Workload | undefined) | undefined
  /**
   * Whether a service (`namespace/hostname`) is still in the mesh. With it (and `workload`), the series of
   * workloads and services that left the mesh are dropped at the next scrape, as Kmesh drops them.
   */
  service?: ((key: string) => boolean) | undefined
  /** Most connection series kept at once (default 10,000). */
  maxConnections?: number | undefined
  /** How long a closed connection's series stays (default 60 s: a few scrapes see its totals). */
  closedTtlMs?: number | undefined
}

/** A record as the sink reads it: the contract, and a failed connect when the kernel reports one. */
type Rec = ConnectionRecord & { failed?: boolean }

/** Totals of one workload or service series; its labels are made when first scraped, from the first record. */
interface Aggregate {
  rec: Rec
  labels?: Record<string, string>
  opened: number
  closed: number
  failed: number
  sent: number
  received: number
  retrans: number
  loss: number
}

/** One connection's series: its totals once closed. */
interface Connection {
  rec: Rec
  startMs: number
  labels?: Record<string, string>
  sent: number
  received: number
  loss: number
  retrans: number
  closedAt?: number
}

/**
 * Records are added to plain totals (a string key and a few additions: a few microseconds, so the sink keeps up
 * with the ring buffer at tens of thousands of connections a second); the Prometheus families are filled from the
 * totals when scraped (prom-client `collect`), where the 20-odd labels of each series are made once.
 */
export class KmeshTcpMetrics implements TelemetrySink {
  private readonly workloads = new Map<string, Aggregate>()
  private readonly services = new Map<string, Aggregate>()
  private readonly connections = new Map<string, Connection>()
  private readonly counts = { open: 0, close: 0, lost: 0, skipped: 0 }
  private readonly maxConnections: number
  private readonly maxSeries: number
  private readonly closedTtlMs: number
  private lastSweep = 0
  private lastDepartedSweep = 0

  constructor(
    registry: Registry,
    private readonly options: KmeshTcpMetricsOptions & { maxSeries?: number | undefined } = {},
  ) {
    this.maxConnections = options.maxConnections ?? 10_000
    this.maxSeries = options.maxSeries ?? 50_000
    this.closedTtlMs = options.closedTtlMs ?? 60_000
    const reg = [registry]
    const family = (
      name: string,
      help: string,
      labelNames: readonly string[],
      aggregates: Map<string, Aggregate>,
      labelsOf: (a: Aggregate) => Record<string, string>,
      value: (a: Aggregate) => number,
    ): void => {
      new Counter({
        name,
        help,
        labelNames,
        registers: reg,
        collect() {
          self.dropDeparted()
          this.reset()
          for (const a of aggregates.values()) this.inc(labelsOf(a), value(a))
        },
      })
    }
    const self = this
    const w = this.workloads
    const wl = (a: Aggregate) => (a.labels ??= this.workloadLabels(a.rec))
    const W = WORKLOAD_LABELS
    family(
      'kmesh_tcp_workload_connections_opened_total',
      'TCP connections opened to a workload',
      W,
      w,
      wl,
      (a) => a.opened,
    )
    family(
      'kmesh_tcp_workload_connections_closed_total',
      'TCP connections closed to a workload',
      W,
      w,
      wl,
      (a) => a.closed,
    )
    family(
      'kmesh_tcp_workload_received_bytes_total',
      'Bytes received over TCP connections with a workload',
      W,
      w,
      wl,
      (a) => a.received,
    )
    family(
      'kmesh_tcp_workload_sent_bytes_total',
      'Bytes sent over TCP connections with a workload',
      W,
      w,
      wl,
      (a) => a.sent,
    )
    family(
      'kmesh_tcp_workload_conntections_failed_total',
      "TCP connections to a workload that failed (Kmesh's spelling)",
      W,
      w,
      wl,
      (a) => a.failed,
    )
    family(
      'kmesh_tcp_retrans_total',
      'Retransmissions over TCP connections with a workload',
      W,
      w,
      wl,
      (a) => a.retrans,
    )
    family('kmesh_tcp_packet_loss_total', 'TCP packets lost between source and destination', W, w, wl, (a) => a.loss)
    const sv = this.services
    const sl = (a: Aggregate) => (a.labels ??= this.serviceLabels(a.rec))
    const S = SERVICE_LABELS
    family('kmesh_tcp_connections_opened_total', 'TCP connections opened to a service', S, sv, sl, (a) => a.opened)
    family('kmesh_tcp_connections_closed_total', 'TCP connections closed to a service', S, sv, sl, (a) => a.closed)
    family(
      'kmesh_tcp_received_bytes_total',
      'Bytes received over TCP connections to a service',
      S,
      sv,
      sl,
      (a) => a.received,
    )
    family('kmesh_tcp_sent_bytes_total', 'Bytes sent over TCP connections to a service', S, sv, sl, (a) => a.sent)
    family(
      'kmesh_tcp_conntections_failed_total',
      "TCP connections to a service that failed (Kmesh's spelling)",
      S,
      sv,
      sl,
      (a) => a.failed,
    )

    const connection = (name: string, help: string, value: (c: Connection) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: CONNECTION_LABELS,
        registers: reg,
        collect() {
          self.dropExpired(true)
          this.reset()
          for (const c of self.connections.values())
            this.set((c.labels ??= self.connectionLabels(c.rec, c.startMs)), value(c))
        },
      })
    }
    connection('kmesh_tcp_connection_sent_bytes_total', 'Bytes sent over this TCP connection', (c) => c.sent)
    connection(
      'kmesh_tcp_connection_received_bytes_total',
      'Bytes received over this TCP connection',
      (c) => c.received,
    )
    connection('kmesh_tcp_connection_packet_lost_total', 'Packets lost on this TCP connection', (c) => c.loss)
    connection('kmesh_tcp_connection_retrans_total', 'Retransmissions on this TCP connection', (c) => c.retrans)

    const counts = this.counts
    new Counter({
      name: 'kmesh_ts_telemetry_records_total',
      help: 'Connection records received from the kernel, by event (open, close)',
      labelNames: ['event'],
      registers: reg,
      collect() {
        this.reset()
        this.inc({ event: 'open' }, counts.open)
        this.inc({ event: 'close' }, counts.close)
      },
    })
    new Counter({
      name: 'kmesh_ts_telemetry_lost_records_total',
      help: 'Connection records the kernel could not deliver (ring buffer full)',
      registers: reg,
      collect() {
        this.reset()
        this.inc(counts.lost)
      },
    })
    new Counter({
      name: 'kmesh_ts_connection_series_skipped_total',
      help: 'Connections (or workload/service pairs) not given a series because the most series exist',
      registers: reg,
      collect() {
        this.reset()
        this.inc(counts.skipped)
      },
    })
  }

  record(r: Rec): void {
    if (r.event === 'open') this.counts.open++
    else this.counts.close++
    const src = r.srcWorkload?.uid ?? ''
    const dst = r.dstWorkload?.uid ?? ''
    const svc = r.dstService ? `${r.dstService.namespace}/${r.dstService.hostname}` : (r.originalDst ?? r.dst).ip
    for (const a of [
      this.aggregate(this.workloads, `${r.direction}|${src}|${dst}|${r.dst.ip}`, r),
      this.aggregate(this.services, `${r.direction}|${src}|${dst}|${svc}`, r),
    ]) {
      if (!a) continue
      if (r.failed) a.failed++
      if (r.event === 'open') {
        if (!r.failed) a.opened++
        continue
      }
      a.closed++
      a.sent += r.bytesSent
      a.received += r.bytesReceived
      a.retrans += r.retransmits
      a.loss += r.packetLoss
    }
    if (!r.failed || r.event === 'close') this.connection(r)
  }

  lost(n: number): void {
    this.counts.lost += n
  }

  /** Nothing runs between scrapes; kept for the daemon's disposal stack. */
  close(): void {
    this.connections.clear()
  }

  private aggregate(map: Map<string, Aggregate>, key: string, r: Rec): Aggregate | undefined {
    let a = map.get(key)
    if (!a) {
      if (map.size >= this.maxSeries) {
        this.counts.skipped++
        return undefined
      }
      a = { rec: r, opened: 0, closed: 0, failed: 0, sent: 0, received: 0, retrans: 0, loss: 0 }
      map.set(key, a)
    }
    return a
  }

  private connection(r: Rec): void {
    const key = `${r.direction} ${hostPort(r.src)} ${hostPort(r.dst)}`
    let c = this.connections.get(key)
    if (!c) {
      if (this.connections.size >= this.maxConnections) this.dropExpired()
      if (this.connections.size >= this.maxConnections) {
        this.counts.skipped++
        return
      }
      // A close without its open (opened before the daemon started, or the open record was lost) gets one too.
      c = {
        rec: r,
        startMs: r.event === 'open' ? r.at : r.at - r.durationMs,
        sent: 0,
        received: 0,
        loss: 0,
        retrans: 0,
      }
      this.connections.set(key, c)
    }
    if (r.event === 'close') {
      c.sent = r.bytesSent
      c.received = r.bytesReceived
      c.loss = r.packetLoss
      c.retrans = r.retransmits
      c.closedAt = Date.now()
    } else if (c.closedAt !== undefined) {
      // The same 4-tuple opened again: a new connection.
      this.connections.set(key, { rec: r, startMs: r.at, sent: 0, received: 0, loss: 0, retrans: 0 })
    }
  }

  /** Drops the workload and service series of workloads and services no longer in the mesh (once per scrape). */
  private dropDeparted(): void {
    const { workload, service } = this.options
    const now = Date.now()
    if (now - this.lastDepartedSweep < 100) return
    this.lastDepartedSweep = now
    const workloadGone = (r: Rec): boolean =>
      Boolean(
        workload &&
          ((r.srcWorkload && !workload(r.srcWorkload.uid)) || (r.dstWorkload && !workload(r.dstWorkload.uid))),
      )
    const serviceGone = (r: Rec): boolean =>
      Boolean(service && r.dstService && !service(`${r.dstService.namespace}/${r.dstService.hostname}`))
    for (const [key, a] of this.workloads) if (workloadGone(a.rec)) this.workloads.delete(key)
    for (const [key, a] of this.services) if (workloadGone(a.rec) || serviceGone(a.rec)) this.services.delete(key)
  }

  /**
   * Closed connections' series live closedTtlMs after the close. Swept at every scrape, and from the record path
   * (when the map is full) at most once a second: a sweep walks the whole map.
   */
  private dropExpired(force = false): void {
    const now = Date.now()
    if (!force && now - this.lastSweep < 1000) return
    this.lastSweep = now
    const before = now - this.closedTtlMs
    for (const [key, c] of this.connections)
      if (c.closedAt !== undefined && c.closedAt <= before) this.connections.delete(key)
  }

  private source(r: Rec): Labels<typeof SOURCE_LABELS> {
    const w = r.srcWorkload ? this.options.workload?.(r.srcWorkload.uid) : undefined
    return {
      reporter: r.direction === 'inbound' ? 'destination' : 'source',
      source_workload: w?.workloadName || r.srcWorkload?.name || '',
      source_canonical_service: w?.canonicalName ?? '',
      source_canonical_revision: w?.canonicalRevision ?? '',
      source_workload_namespace: r.srcWorkload?.namespace ?? '',
      source_principal: w ? principal(w) : '',
      source_app: w?.canonicalName ?? '',
      source_version: w?.canonicalRevision ?? '',
      source_cluster: w?.clusterId ?? '',
    }
  }

  private destination(r: Rec): Labels<typeof DESTINATION_WORKLOAD_LABELS> {
    const w = r.dstWorkload ? this.options.workload?.(r.dstWorkload.uid) : undefined
    return {
      destination_workload: w?.workloadName || r.dstWorkload?.name || '',
      destination_canonical_service: w?.canonicalName ?? '',
      destination_canonical_revision: w?.canonicalRevision ?? '',
      destination_workload_namespace: r.dstWorkload?.namespace ?? '',
      destination_principal: w ? principal(w) : '',
      destination_app: w?.canonicalName ?? '',
      destination_version: w?.canonicalRevision ?? '',
      destination_cluster: w?.clusterId ?? '',
    }
  }

  private pod(r: Rec): Labels<typeof POD> {
    return {
      destination_pod_address: r.dst.ip,
      destination_pod_namespace: r.dstWorkload?.namespace ?? '',
      destination_pod_name: r.dstWorkload?.name ?? '',
    }
  }

  /** As Kmesh: a destination that is no known service is named by its address. */
  private service(r: Rec): Labels<typeof SERVICE> {
    return {
      destination_service: r.dstService?.hostname ?? (r.originalDst ?? r.dst).ip,
      destination_service_namespace: r.dstService?.namespace ?? '',
      destination_service_name: r.dstService?.name ?? '',
    }
  }

  private workloadLabels(r: Rec): Labels<typeof WORKLOAD_LABELS> {
    return { ...this.source(r), ...this.pod(r), ...this.destination(r), ...TRAILER_VALUES }
  }

  private serviceLabels(r: Rec): Labels<typeof SERVICE_LABELS> {
    return { ...this.source(r), ...this.service(r), ...this.destination(r), ...TRAILER_VALUES }
  }

  private connectionLabels(r: Rec, startMs: number): Labels<typeof CONNECTION_LABELS> {
    return {
      ...this.source(r),
      start_time: new Date(startMs).toISOString(),
      source_address: hostPort(r.src),
      destination_address: hostPort(r.dst),
      ...this.pod(r),
      ...this.service(r),
      ...this.destination(r),
      ...TRAILER_VALUES,
    }
  }
}

/**
 * Kmesh writes mutual_tls; kmesh-ts carries plaintext TCP (no mTLS of its own), so `none`, Istio's value for it.
 * Kmesh leaves response_flags empty, as here.
 */
const TRAILER_VALUES = { request_protocol: 'tcp', response_flags: '', connection_security_policy: 'none' } as const

function principal(w: Workload): string {
  return `spiffe://${w.trustDomain || 'cluster.local'}/ns/${w.namespace}/sa/${w.serviceAccount || 'default'}`
}

function hostPort(e: { ip: string; port: number }): string {
  return e.ip.includes(':') ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`
}
