/**
 * The connection record the kernel's sockops program reports (through a ring buffer) and the daemon enriches from
 * the mesh model. This is the contract between the telemetry reader and its consumers (metrics, access log, admin
 * page): keep it stable, add optional fields only.
 */

export interface Endpoint {
  ip: string
  port: number
}

export interface ConnectionRecord {
  event: 'open' | 'close'
  /** outbound: the managed socket connected out; inbound: a managed listener accepted it. */
  direction: 'outbound' | 'inbound'
  src: Endpoint
  /** The address actually connected (the backend after a rewrite). */
  dst: Endpoint
  /** The VIP the application dialled, when the connect was rewritten. */
  originalDst?: Endpoint
  bytesSent: number
  bytesReceived: number
  srttUs: number
  minRttUs: number
  retransmits: number
  packetLoss: number
  /** Close only (0 on open). */
  durationMs: number
  /** ms since epoch. */
  at: number
  // filled by the daemon from the mesh model (undefined when the address is not in the mesh):
  srcWorkload?: { uid: string; name: string; namespace: string }
  dstWorkload?: { uid: string; name: string; namespace: string }
  dstService?: { name: string; namespace: string; hostname: string }
}

export interface TelemetrySink {
  record(r: ConnectionRecord): void
  /** n records the kernel could not deliver (ring buffer full); counted, never silent. */
  lost(n: number): void
}

export interface TelemetryStats {
  records: number
  lost: number
  ringBufferBytes: number
}

/** A sink that discards everything (the default when nobody consumes records). */
export const noopSink: TelemetrySink = {
  record() {},
  lost() {},
}
