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
  /** Most connection series kept at once (default 10,000). */
  maxConnections?: number | undefined
  /** How long a closed connection's series stays (default 60 s: a few scrapes see its totals). */
  closedTtlMs?: number | undefined
}

/** A record as the sink reads it: the contract, and a failed connect when the kernel reports one. */
type Rec = ConnectionRecord & { failed?: boolean }

function counter<T extends readonly string[]>(registry: Registry, name: string, help: string, labels: T) {
  return new Counter<T[number]>({ name, help, labelNames: labels, registers: [registry] })
}
function gauge<T extends readonly string[]>(registry: Registry, name: string, help: string, labels: T) {
  return new Gauge<T[number]>({ name, help, labelNames: labels, registers: [registry] })
}

export class KmeshTcpMetrics implements TelemetrySink {
  private readonly w
  private readonly s
  private readonly c
  private readonly lostRecords: Counter
  private readonly skipped: Counter
  private readonly records: Counter<'event'>
  /** Connection series by connection key: their labels, and the timer that drops a closed one. */
  private readonly connections = new Map<string, { labels: Labels<typeof CONNECTION_LABELS>; drop?: NodeJS.Timeout }>()
  private readonly maxConnections: number
  private readonly closedTtlMs: number

  constructor(
    registry: Registry,
    private readonly options: KmeshTcpMetricsOptions = {},
  ) {
    this.maxConnections = options.maxConnections ?? 10_000
    this.closedTtlMs = options.closedTtlMs ?? 60_000
    const [wl, sl, cl] = [WORKLOAD_LABELS, SERVICE_LABELS, CONNECTION_LABELS]
    this.w = {
      opened: counter(
        registry,
        'kmesh_tcp_workload_connections_opened_total',
        'TCP connections opened to a workload',
        wl,
      ),
      closed: counter(
        registry,
        'kmesh_tcp_workload_connections_closed_total',
        'TCP connections closed to a workload',
        wl,
      ),
      received: counter(
        registry,
        'kmesh_tcp_workload_received_bytes_total',
        'Bytes received over TCP connections with a workload',
        wl,
      ),
      sent: counter(
        registry,
        'kmesh_tcp_workload_sent_bytes_total',
        'Bytes sent over TCP connections with a workload',
        wl,
      ),
      failed: counter(
        registry,
        'kmesh_tcp_workload_conntections_failed_total',
        "TCP connections to a workload that failed (Kmesh's spelling)",
        wl,
      ),
      retrans: counter(registry, 'kmesh_tcp_retrans_total', 'Retransmissions over TCP connections with a workload', wl),
      loss: counter(registry, 'kmesh_tcp_packet_loss_total', 'TCP packets lost between source and destination', wl),
    }
    this.s = {
      opened: counter(registry, 'kmesh_tcp_connections_opened_total', 'TCP connections opened to a service', sl),
      closed: counter(registry, 'kmesh_tcp_connections_closed_total', 'TCP connections closed to a service', sl),
      received: counter(
        registry,
        'kmesh_tcp_received_bytes_total',
        'Bytes received over TCP connections to a service',
        sl,
      ),
      sent: counter(registry, 'kmesh_tcp_sent_bytes_total', 'Bytes sent over TCP connections to a service', sl),
      failed: counter(
        registry,
        'kmesh_tcp_conntections_failed_total',
        "TCP connections to a service that failed (Kmesh's spelling)",
        sl,
      ),
    }
    this.c = {
      sent: gauge(registry, 'kmesh_tcp_connection_sent_bytes_total', 'Bytes sent over this TCP connection', cl),
      received: gauge(
        registry,
        'kmesh_tcp_connection_received_bytes_total',
        'Bytes received over this TCP connection',
        cl,
      ),
      loss: gauge(registry, 'kmesh_tcp_connection_packet_lost_total', 'Packets lost on this TCP connection', cl),
      retrans: gauge(registry, 'kmesh_tcp_connection_retrans_total', 'Retransmissions on this TCP connection', cl),
    }
    this.records = new Counter({
      name: 'kmesh_ts_telemetry_records_total',
      help: 'Connection records received from the kernel, by event (open, close)',
      labelNames: ['event'],
      registers: [registry],
    })
    this.lostRecords = new Counter({
      name: 'kmesh_ts_telemetry_lost_records_total',
      help: 'Connection records the kernel could not deliver (ring buffer full)',
      registers: [registry],
    })
    this.skipped = new Counter({
      name: 'kmesh_ts_connection_series_skipped_total',
      help: 'Connections not given kmesh_tcp_connection_* series because maxConnections series exist',
      registers: [registry],
    })
  }

  record(r: Rec): void {
    this.records.inc({ event: r.event })
    const wl = this.workloadLabels(r)
    const sl = this.serviceLabels(r)
    if (r.event === 'open') {
      if (r.failed) {
        this.w.failed.inc(wl)
        this.s.failed.inc(sl)
        return
      }
      this.w.opened.inc(wl)
      this.s.opened.inc(sl)
      this.connectionOpened(r)
      return
    }
    this.w.closed.inc(wl)
    this.s.closed.inc(sl)
    if (r.failed) {
      this.w.failed.inc(wl)
      this.s.failed.inc(sl)
    }
    this.w.sent.inc(wl, r.bytesSent)
    this.w.received.inc(wl, r.bytesReceived)
    this.w.retrans.inc(wl, r.retransmits)
    this.w.loss.inc(wl, r.packetLoss)
    this.s.sent.inc(sl, r.bytesSent)
    this.s.received.inc(sl, r.bytesReceived)
    this.connectionClosed(r)
  }

  lost(n: number): void {
    this.lostRecords.inc(n)
  }

  /** Drops the timers of closed connections' series (the daemon is stopping). */
  close(): void {
    for (const c of this.connections.values()) clearTimeout(c.drop)
    this.connections.clear()
  }

  private connectionOpened(r: Rec): void {
    const key = connectionKey(r)
    if (this.connections.has(key)) return
    if (this.connections.size >= this.maxConnections) {
      this.skipped.inc()
      return
    }
    const labels = this.connectionLabels(r, r.at)
    this.connections.set(key, { labels })
    for (const g of Object.values(this.c)) g.set(labels, 0)
  }

  private connectionClosed(r: Rec): void {
    const key = connectionKey(r)
    let entry = this.connections.get(key)
    if (!entry) {
      // Opened before the daemon started, or its open record was lost: a series for its totals all the same.
      if (this.connections.size >= this.maxConnections) return void this.skipped.inc()
      entry = { labels: this.connectionLabels(r, r.at - r.durationMs) }
      this.connections.set(key, entry)
    }
    const { labels } = entry
    this.c.sent.set(labels, r.bytesSent)
    this.c.received.set(labels, r.bytesReceived)
    this.c.loss.set(labels, r.packetLoss)
    this.c.retrans.set(labels, r.retransmits)
    clearTimeout(entry.drop)
    entry.drop = setTimeout(() => {
      for (const g of Object.values(this.c)) g.remove(labels)
      this.connections.delete(key)
    }, this.closedTtlMs)
    entry.drop.unref()
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

function connectionKey(r: ConnectionRecord): string {
  return `${r.direction} ${hostPort(r.src)} ${hostPort(r.dst)}`
}
