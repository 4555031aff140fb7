/**
 * Observability sinks and the metrics registry. The daemon makes one `Observability` at start:
 *   - `registry`: prom-client registry with process metrics (event-loop lag included), the daemon's own
 *     families (daemon-metrics.ts) and Kmesh's kmesh_tcp_* families (kmesh-tcp.ts);
 *   - `sink`: the TelemetrySink the telemetry reader feeds (metrics, then the access log);
 *   - `accessLog`: switched off/text/json at runtime by the admin endpoint.
 */
import { collectDefaultMetrics, Registry } from 'prom-client'
import type { Workload } from '../model/index.js'
import type { ConnectionRecord, TelemetrySink } from '../telemetry/types.js'
import { AccessLog, type AccessLogMode } from './access-log.js'
import { DaemonMetrics, type DaemonMetricsSource } from './daemon-metrics.js'
import { KmeshTcpMetrics } from './kmesh-tcp.js'
import { ConnectionTotals } from './totals.js'

export { AccessLog, ACCESS_LOG_MODES, isAccessLogMode, type AccessLogMode } from './access-log.js'
export { DaemonMetrics, type DaemonMetricsSource } from './daemon-metrics.js'
export { KmeshTcpMetrics, KMESH_TCP_FAMILIES } from './kmesh-tcp.js'
export { startMetricsServer, METRICS_PATHS } from './server.js'
export { ConnectionTotals } from './totals.js'

export interface Observability {
  registry: Registry
  daemon: DaemonMetrics
  tcp: KmeshTcpMetrics
  accessLog: AccessLog
  /** Connections and bytes per service and backend, for the live page. */
  totals: ConnectionTotals
  /** Every sink in one: what the telemetry reader is given. */
  sink: TelemetrySink
  close(): void
}

export interface ObservabilityOptions {
  source: DaemonMetricsSource
  /** The mesh's workload by uid, for the Kmesh labels (canonical names, principal, cluster). */
  workload?: ((uid: string) => Workload | undefined) | undefined
  /** Whether a service (`namespace/hostname`) is in the mesh: series of departed services are dropped. */
  service?: ((key: string) => boolean) | undefined
  accessLog?: AccessLogMode | undefined
  /** Where access-log lines go (default stdout, as Kmesh prints them). */
  accessLogOut?: { write(s: string): unknown } | undefined
  /** Process metrics (default true; tests that make many registries turn them off). */
  processMetrics?: boolean | undefined
}

export function createObservability(options: ObservabilityOptions): Observability {
  const registry = new Registry()
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry })
  const daemon = new DaemonMetrics(registry, options.source)
  const tcp = new KmeshTcpMetrics(registry, { workload: options.workload, service: options.service })
  const accessLog = new AccessLog(options.accessLog ?? 'off', options.accessLogOut)
  const totals = new ConnectionTotals()
  const sink = createTelemetrySinks([tcp, totals, accessLog])
  return { registry, daemon, tcp, accessLog, totals, sink, close: () => tcp.close() }
}

/**
 * One sink that hands each record to every sink in order. A sink that throws does not keep the record from the
 * others (a metrics bug must not stop the access log).
 */
export function createTelemetrySinks(sinks: readonly TelemetrySink[]): TelemetrySink {
  return {
    record(r: ConnectionRecord) {
      for (const s of sinks)
        try {
          s.record(r)
        } catch {
          // the other sinks still get it
        }
    },
    lost(n: number) {
      for (const s of sinks)
        try {
          s.lost(n)
        } catch {
          // the other sinks still get it
        }
    },
  }
}
