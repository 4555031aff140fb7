/**
 * Connection and byte totals per service and per backend address since start, for the live page and the config
 * dump (the Prometheus families carry the same with Kmesh's labels; this is the page's cheap view of them).
 * Bounded: at most `max` keys per kind; past that, records are added to `other`.
 */
import type { ConnectionRecord, TelemetrySink } from '../telemetry/types.js'

export interface Totals {
  opened: number
  closed: number
  /** open now (opened − closed, as seen since start) */
  active: number
  bytesSent: number
  bytesReceived: number
}

export class ConnectionTotals implements TelemetrySink {
  readonly services = new Map<string, Totals>()
  readonly backends = new Map<string, Totals>()
  lostRecords = 0
  records = 0

  constructor(private readonly max = 10_000) {}

  record(r: ConnectionRecord): void {
    this.records++
    const backend = r.dst.ip.includes(':') ? `[${r.dst.ip}]:${r.dst.port}` : `${r.dst.ip}:${r.dst.port}`
    const service = r.dstService ? `${r.dstService.namespace}/${r.dstService.hostname}` : undefined
    for (const [map, key] of [
      [this.backends, backend],
      [this.services, service],
    ] as const) {
      if (key === undefined) continue
      const t = this.entry(map, key)
      if (r.event === 'open') {
        t.opened++
        t.active++
      } else {
        t.closed++
        t.active = Math.max(0, t.active - 1)
        t.bytesSent += r.bytesSent
        t.bytesReceived += r.bytesReceived
      }
    }
  }

  lost(n: number): void {
    this.lostRecords += n
  }

  private entry(map: Map<string, Totals>, key: string): Totals {
    let t = map.get(key)
    if (!t) {
      if (map.size >= this.max) key = 'other'
      t = map.get(key) ?? { opened: 0, closed: 0, active: 0, bytesSent: 0, bytesReceived: 0 }
      map.set(key, t)
    }
    return t
  }
}
