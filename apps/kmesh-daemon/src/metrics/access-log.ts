/**
 * The access log: one line per closed connection, in Kmesh's field set (pkg/controller/telemetry/accesslog.go),
 * as text (Kmesh's `accesslog: <time> src.addr=…, …` line) or as one JSON object per line with the same keys.
 * Off, text or JSON is switched at runtime (the admin endpoint's `POST /accesslog`). Unknown values are `-`, as
 * Kmesh writes them. Only addresses, names and counters are written: never connection payloads.
 */
import type { ConnectionRecord, TelemetrySink } from '../telemetry/types.js'

export const ACCESS_LOG_MODES = ['off', 'text', 'json'] as const
export type AccessLogMode = (typeof ACCESS_LOG_MODES)[number]

export function isAccessLogMode(m: string): m is AccessLogMode {
  return (ACCESS_LOG_MODES as readonly string[]).includes(m)
}

/** Kmesh's fields, in Kmesh's order. */
export const ACCESS_LOG_FIELDS = [
  'src.addr',
  'src.workload',
  'src.namespace',
  'dst.addr',
  'dst.service',
  'dst.workload',
  'dst.namespace',
  'start_time',
  'direction',
  'sent_bytes',
  'received_bytes',
  'packet_loss',
  'retransmissions',
  'srtt',
  'min_rtt',
  'duration',
] as const

export type AccessLogEntry = Record<(typeof ACCESS_LOG_FIELDS)[number], string | number> & { time: string }

const UNKNOWN = '-'

function hostPort(e: { ip: string; port: number }): string {
  return e.ip.includes(':') ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`
}

/** The access-log fields of a closed connection. */
export function accessLogEntry(r: ConnectionRecord): AccessLogEntry {
  return {
    time: new Date(r.at).toISOString(),
    'src.addr': hostPort(r.src),
    'src.workload': r.srcWorkload?.name || UNKNOWN,
    'src.namespace': r.srcWorkload?.namespace || UNKNOWN,
    'dst.addr': hostPort(r.dst),
    // As Kmesh: the service the client dialled (from the original destination), else the address.
    'dst.service': r.dstService?.hostname || UNKNOWN,
    'dst.workload': r.dstWorkload?.name || UNKNOWN,
    'dst.namespace': r.dstService?.namespace || r.dstWorkload?.namespace || UNKNOWN,
    start_time: new Date(r.at - r.durationMs).toISOString(),
    direction: r.direction.toUpperCase(),
    sent_bytes: r.bytesSent,
    received_bytes: r.bytesReceived,
    packet_loss: r.packetLoss,
    retransmissions: r.retransmits,
    srtt: r.srttUs,
    min_rtt: r.minRttUs,
    duration: r.durationMs,
  }
}

/** Kmesh's text line: `accesslog: <time> src.addr=…, src.workload=…, …, srtt=Nus, min_rtt=Nus, duration=Nms`. */
export function formatAccessLogText(e: AccessLogEntry): string {
  const unit = (k: string, v: string | number): string =>
    k === 'srtt' || k === 'min_rtt' ? `${v}us` : k === 'duration' ? `${v}ms` : String(v)
  return `accesslog: ${e.time} ${ACCESS_LOG_FIELDS.map((k) => `${k}=${unit(k, e[k])}`).join(', ')}\n`
}

export function formatAccessLogJson(e: AccessLogEntry): string {
  return `${JSON.stringify({ accesslog: true, ...e })}\n`
}

export class AccessLog implements TelemetrySink {
  #mode: AccessLogMode
  #lines = 0

  constructor(
    mode: AccessLogMode = 'off',
    private readonly out: { write(s: string): unknown } = process.stdout,
  ) {
    this.#mode = mode
  }

  get mode(): AccessLogMode {
    return this.#mode
  }

  /** Lines written since start. */
  get lines(): number {
    return this.#lines
  }

  setMode(mode: string): void {
    if (!isAccessLogMode(mode)) throw new Error(`access log ${mode}: expected one of ${ACCESS_LOG_MODES.join(', ')}`)
    this.#mode = mode
  }

  record(r: ConnectionRecord): void {
    if (this.#mode === 'off' || r.event !== 'close') return
    const e = accessLogEntry(r)
    this.out.write(this.#mode === 'json' ? formatAccessLogJson(e) : formatAccessLogText(e))
    this.#lines++
  }

  lost(): void {
    // Counted by the metrics (kmesh_ts_telemetry_lost_records_total) and the telemetry reader's log.
  }
}
