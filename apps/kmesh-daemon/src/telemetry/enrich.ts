/**
 * From the kernel's conn_record to the daemon's ConnectionRecord: times in ms since the epoch, IPv4-mapped addresses
 * shown as IPv4 (the mesh model holds them so), and the workloads and service the addresses belong to.
 */
import type { ConnRecord } from '@kmesh-ts/bpf-maps/codecs'
import { TELEMETRY_DIR_INBOUND } from '@kmesh-ts/kernel-abi'
import type { Service, Workload } from '../model/index.js'
import type { ConnectionRecord, Endpoint } from './types.js'

/** Who claims an address in the mesh held now (WorkloadProcessor.lookupIp). */
export interface MeshLookup {
  lookupIp(ip: string): { workloads: readonly Workload[]; services: readonly Service[] }
}

/** CLOCK_MONOTONIC (bpf_ktime_get_ns, process.hrtime) to wall-clock ms: the offset between the two clocks now. */
export function monotonicToEpochOffsetMs(): number {
  return Date.now() - Number(process.hrtime.bigint()) / 1e6
}

/** `::ffff:a.b.c.d` -> `a.b.c.d`: an AF_INET6 socket's view of an IPv4 peer. */
export function unmapV4(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip
}

function endpoint(ip: string, port: number): Endpoint {
  return { ip: unmapV4(ip), port }
}

function workloadLabel(w: Workload | undefined): ConnectionRecord['srcWorkload'] {
  return w ? { uid: w.uid, name: w.name, namespace: w.namespace } : undefined
}

export function toConnectionRecord(
  r: ConnRecord,
  epochOffsetMs: number,
  mesh: MeshLookup | undefined,
): ConnectionRecord {
  const record: ConnectionRecord = {
    event: r.event,
    direction: r.direction === TELEMETRY_DIR_INBOUND ? 'inbound' : 'outbound',
    src: endpoint(r.src, r.srcPort),
    dst: endpoint(r.dst, r.dstPort),
    bytesSent: Number(r.bytesSent),
    bytesReceived: Number(r.bytesReceived),
    srttUs: r.srttUs,
    minRttUs: r.minRttUs,
    retransmits: r.totalRetrans,
    packetLoss: r.lostOut,
    durationMs: Number(r.durationNs) / 1e6,
    at: Math.round(Number(r.atNs) / 1e6 + epochOffsetMs),
  }
  if (r.originalDst !== undefined) record.originalDst = endpoint(r.originalDst, r.originalPort ?? 0)
  if (!mesh) return record
  const src = mesh.lookupIp(record.src.ip)
  const dst = mesh.lookupIp(record.dst.ip)
  const dialled = record.originalDst ? mesh.lookupIp(record.originalDst.ip) : dst
  const srcWorkload = workloadLabel(src.workloads[0])
  const dstWorkload = workloadLabel(dst.workloads[0])
  const service = dialled.services[0] ?? dst.services[0]
  if (srcWorkload) record.srcWorkload = srcWorkload
  if (dstWorkload) record.dstWorkload = dstWorkload
  if (service) record.dstService = { name: service.name, namespace: service.namespace, hostname: service.hostname }
  return record
}
