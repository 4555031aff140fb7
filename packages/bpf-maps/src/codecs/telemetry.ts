/**
 * Connection telemetry records (include/telemetry.h): `struct conn_record`, 112 bytes, natural alignment, written by
 * the sockops program into the km_telemetry ring buffer; and the km_tel_lost per-CPU counter of records the ring
 * buffer had no room for. Addresses are read by the socket's family (an AF_INET6 socket reports an IPv4 peer as
 * ::ffff:a.b.c.d, kept so here; the daemon decides how to show it).
 */
import { TELEMETRY_EVENT_CLOSE, TELEMETRY_EVENT_OPEN, mapNames } from '@kmesh-ts/kernel-abi'
import { formatIpv4, formatIpv6 } from '@kmesh-ts/ip'
import { type Codec, hostIsLittleEndian, readU32, readU64, writeU32, writeU64 } from './codec.js'
import { encodeIpAddr } from './ip.js'
import { MapType } from './maps.js'

const AF_INET = 2
const AF_INET6 = 10

export interface ConnRecord {
  /** bpf_ktime_get_ns() at the event (CLOCK_MONOTONIC, ns). */
  atNs: bigint
  /** close: ns since established; open: 0. */
  durationNs: bigint
  /** tcp_sock.bytes_acked. */
  bytesSent: bigint
  /** tcp_sock.bytes_received. */
  bytesReceived: bigint
  srttUs: number
  minRttUs: number
  totalRetrans: number
  /** tcp_sock.lost_out at the event. */
  lostOut: number
  family: 4 | 6
  src: string
  srcPort: number
  dst: string
  dstPort: number
  /** The destination the application dialled, when the connect was rewritten. */
  originalDst?: string
  originalPort?: number
  event: 'open' | 'close'
  /** 1 inbound, 2 outbound (TELEMETRY_DIR_*). */
  direction: number
}

function readU16(buf: Uint8Array, off: number): number {
  return hostIsLittleEndian ? buf[off]! + buf[off + 1]! * 0x100 : buf[off]! * 0x100 + buf[off + 1]!
}

function writeU16(buf: Uint8Array, off: number, v: number): void {
  if (hostIsLittleEndian) {
    buf[off] = v & 0xff
    buf[off + 1] = v >>> 8
  } else {
    buf[off] = v >>> 8
    buf[off + 1] = v & 0xff
  }
}

const at = {
  atNs: 0,
  durationNs: 8,
  bytesSent: 16,
  bytesReceived: 24,
  srttUs: 32,
  minRttUs: 36,
  totalRetrans: 40,
  lostOut: 44,
  src: 48,
  dst: 64,
  originalDst: 80,
  srcPort: 96,
  dstPort: 98,
  originalPort: 100,
  family: 102,
  event: 103,
  direction: 104,
  hasOriginal: 105,
  pad: 106,
} as const

function readAddr(buf: Uint8Array, off: number, family: 4 | 6): string {
  return family === 4 ? formatIpv4(buf, off) : formatIpv6(buf, off)
}

export const connRecord: Codec<ConnRecord> = {
  cStruct: 'conn_record',
  size: 112,
  encode: (v, buf, off = 0) => {
    buf.fill(0, off, off + 112)
    writeU64(buf, off + at.atNs, v.atNs)
    writeU64(buf, off + at.durationNs, v.durationNs)
    writeU64(buf, off + at.bytesSent, v.bytesSent)
    writeU64(buf, off + at.bytesReceived, v.bytesReceived)
    writeU32(buf, off + at.srttUs, v.srttUs)
    writeU32(buf, off + at.minRttUs, v.minRttUs)
    writeU32(buf, off + at.totalRetrans, v.totalRetrans)
    writeU32(buf, off + at.lostOut, v.lostOut)
    encodeIpAddr(v.src, buf, off + at.src)
    encodeIpAddr(v.dst, buf, off + at.dst)
    if (v.originalDst !== undefined) encodeIpAddr(v.originalDst, buf, off + at.originalDst)
    writeU16(buf, off + at.srcPort, v.srcPort)
    writeU16(buf, off + at.dstPort, v.dstPort)
    writeU16(buf, off + at.originalPort, v.originalPort ?? 0)
    buf[off + at.family] = v.family === 4 ? AF_INET : AF_INET6
    buf[off + at.event] = v.event === 'open' ? TELEMETRY_EVENT_OPEN : TELEMETRY_EVENT_CLOSE
    buf[off + at.direction] = v.direction
    buf[off + at.hasOriginal] = v.originalDst !== undefined ? 1 : 0
  },
  decode: (buf, off = 0) => {
    const family = buf[off + at.family] === AF_INET ? 4 : 6
    const record: ConnRecord = {
      atNs: readU64(buf, off + at.atNs),
      durationNs: readU64(buf, off + at.durationNs),
      bytesSent: readU64(buf, off + at.bytesSent),
      bytesReceived: readU64(buf, off + at.bytesReceived),
      srttUs: readU32(buf, off + at.srttUs),
      minRttUs: readU32(buf, off + at.minRttUs),
      totalRetrans: readU32(buf, off + at.totalRetrans),
      lostOut: readU32(buf, off + at.lostOut),
      family,
      src: readAddr(buf, off + at.src, family),
      srcPort: readU16(buf, off + at.srcPort),
      dst: readAddr(buf, off + at.dst, family),
      dstPort: readU16(buf, off + at.dstPort),
      event: buf[off + at.event] === TELEMETRY_EVENT_OPEN ? 'open' : 'close',
      direction: buf[off + at.direction]!,
    }
    if (buf[off + at.hasOriginal]) {
      record.originalDst = readAddr(buf, off + at.originalDst, family)
      record.originalPort = readU16(buf, off + at.originalPort)
    }
    return record
  },
}

/** The telemetry maps: the ring buffer (no key or value, max_entries = its size in bytes) and the lost counter. */
export const telemetryMaps = {
  ringBuffer: { name: mapNames.telemetry, type: MapType.RingBuf },
  lost: { name: mapNames.telemetryLost, type: MapType.PercpuArray, keySize: 4, valueSize: 8 },
} as const

/** Every telemetry record with the C struct and field offsets it must equal (BTF of sockops.o). */
export const telemetryRecordLayouts: Record<string, { codec: Codec<never>; fields: Record<string, number> }> = {
  conn_record: {
    codec: connRecord as Codec<never>,
    fields: {
      at_ns: at.atNs,
      duration_ns: at.durationNs,
      bytes_sent: at.bytesSent,
      bytes_received: at.bytesReceived,
      srtt_us: at.srttUs,
      min_rtt_us: at.minRttUs,
      total_retrans: at.totalRetrans,
      lost_out: at.lostOut,
      src: at.src,
      dst: at.dst,
      original_dst: at.originalDst,
      src_port: at.srcPort,
      dst_port: at.dstPort,
      original_port: at.originalPort,
      family: at.family,
      event: at.event,
      direction: at.direction,
      has_original: at.hasOriginal,
      pad: at.pad,
    },
  },
}
