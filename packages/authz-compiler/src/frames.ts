/**
 * @kmesh-ts/authz-compiler/testing — Ethernet frames of TCP segments, as a client's SYN arrives at a workload's
 * interface, and a reader for the RST the XDP program answers with. For BPF_PROG_TEST_RUN in tests and benchmarks.
 */
import { parseIp } from '@kmesh-ts/ip'

export interface SegmentSpec {
  /** Text or bytes; a 16-byte address makes an IPv6 packet (v4-mapped included), 4 bytes IPv4. */
  src: string | Uint8Array
  dst: string | Uint8Array
  srcPort: number
  dstPort: number
  /** TCP flags byte; default SYN (0x02) */
  flags?: number
  seq?: number
  /** IPv4 options bytes (a multiple of 4, at most 40) */
  ipv4Options?: Uint8Array
  /** IPv6 extension headers before TCP, each as [next-header-number-of-THIS-header, total length in bytes] */
  ipv6Extensions?: Array<{ type: 0 | 43 | 60 | 44; length: number }>
  /** TCP options bytes (a multiple of 4); a real SYN carries MSS, SACK-permitted, timestamps, window scale */
  tcpOptions?: Uint8Array
}

export const TCP = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const
/** What Linux puts in a SYN: MSS 1460, SACK permitted, timestamps, NOP, window scale 7 (20 bytes). */
export const LINUX_SYN_OPTIONS = Uint8Array.from([2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7])

const bytesOf = (a: string | Uint8Array) => (typeof a === 'string' ? parseIp(a) : a)

/** The one's-complement sum of 16-bit words (big-endian), not yet folded or inverted. */
function sum16(bytes: Uint8Array, start = 0, end = bytes.length, acc = 0): number {
  for (let i = start; i < end; i += 2) acc += ((bytes[i] as number) << 8) | (i + 1 < end ? (bytes[i + 1] as number) : 0)
  return acc
}
function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + (acc >>> 16)
  return ~acc & 0xffff
}

/** The TCP checksum over the pseudo-header; over a segment whose checksum field is set, 0 means it verifies. */
function tcpChecksum(src: Uint8Array, dst: Uint8Array, tcp: Uint8Array): number {
  return fold(sum16(tcp, 0, tcp.length, sum16(pseudoOf(src, dst, tcp.length))))
}

/** An Ethernet frame carrying one TCP segment (valid IPv4 and TCP checksums). */
export function tcpFrame(spec: SegmentSpec): Uint8Array {
  const src = bytesOf(spec.src)
  const dst = bytesOf(spec.dst)
  if (src.length !== dst.length) throw new RangeError('source and destination must be of one family')
  const opts = spec.tcpOptions ?? new Uint8Array(0)
  const tcp = new Uint8Array(20 + opts.length)
  const dv = new DataView(tcp.buffer)
  dv.setUint16(0, spec.srcPort)
  dv.setUint16(2, spec.dstPort)
  dv.setUint32(4, spec.seq ?? 0x12345678)
  tcp[12] = ((20 + opts.length) / 4) << 4
  tcp[13] = spec.flags ?? TCP.SYN
  dv.setUint16(14, 64240)
  tcp.set(opts, 20)
  dv.setUint16(16, tcpChecksum(src, dst, tcp))

  let l3: Uint8Array
  let etherType: number
  if (src.length === 4) {
    const options = spec.ipv4Options ?? new Uint8Array(0)
    const ihl = 20 + options.length
    l3 = new Uint8Array(ihl + tcp.length)
    const v = new DataView(l3.buffer)
    l3[0] = 0x40 | (ihl / 4)
    v.setUint16(2, l3.length)
    v.setUint16(6, 0x4000)
    l3[8] = 64
    l3[9] = 6
    l3.set(src, 12)
    l3.set(dst, 16)
    l3.set(options, 20)
    v.setUint16(10, fold(sum16(l3, 0, ihl)))
    l3.set(tcp, ihl)
    etherType = 0x0800
  } else {
    const exts = spec.ipv6Extensions ?? []
    const extBytes = exts.reduce((n, e) => n + e.length, 0)
    l3 = new Uint8Array(40 + extBytes + tcp.length)
    const v = new DataView(l3.buffer)
    l3[0] = 0x60
    v.setUint16(4, extBytes + tcp.length)
    l3[6] = exts[0]?.type ?? 6
    l3[7] = 64
    l3.set(src, 8)
    l3.set(dst, 24)
    let at = 40
    exts.forEach((e, i) => {
      l3[at] = exts[i + 1]?.type ?? 6 // next header
      if (e.type === 44)
        l3[at + 1] = 0 // fragment header: reserved; offset 0 (first fragment)
      else l3[at + 1] = e.length / 8 - 1
      at += e.length
    })
    l3.set(tcp, at)
    etherType = 0x86dd
  }
  const frame = new Uint8Array(14 + l3.length)
  frame.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1], 0)
  frame[12] = etherType >> 8
  frame[13] = etherType & 0xff
  frame.set(l3, 14)
  return frame
}

export interface ParsedSegment {
  family: 4 | 6
  srcMac: string
  dstMac: string
  src: Uint8Array
  dst: Uint8Array
  srcPort: number
  dstPort: number
  seq: number
  ack: number
  flags: number
  /** IPv4 header checksum verifies (always true for IPv6) */
  ipChecksumOk: boolean
  tcpChecksumOk: boolean
  totalLength: number
}

/** Reads back a frame with a plain header chain (what the RST answer is). */
export function parseSegment(frame: Uint8Array): ParsedSegment {
  const mac = (o: number) => Array.from(frame.subarray(o, o + 6), (b) => b.toString(16).padStart(2, '0')).join(':')
  const etherType = (frame[12] as number) * 256 + (frame[13] as number)
  const l3 = frame.subarray(14)
  const dv = new DataView(l3.buffer, l3.byteOffset, l3.byteLength)
  let src: Uint8Array
  let dst: Uint8Array
  let tcp: Uint8Array
  let ipChecksumOk = true
  let family: 4 | 6
  if (etherType === 0x0800) {
    family = 4
    const ihl = ((l3[0] as number) & 0xf) * 4
    src = l3.slice(12, 16)
    dst = l3.slice(16, 20)
    ipChecksumOk = fold(sum16(l3, 0, ihl)) === 0
    tcp = l3.subarray(ihl, dv.getUint16(2))
  } else {
    family = 6
    src = l3.slice(8, 24)
    dst = l3.slice(24, 40)
    tcp = l3.subarray(40, 40 + dv.getUint16(4))
  }
  const tv = new DataView(tcp.buffer, tcp.byteOffset, tcp.byteLength)
  return {
    family,
    dstMac: mac(0),
    srcMac: mac(6),
    src,
    dst,
    srcPort: tv.getUint16(0),
    dstPort: tv.getUint16(2),
    seq: tv.getUint32(4),
    ack: tv.getUint32(8),
    flags: tcp[13] as number,
    ipChecksumOk,
    tcpChecksumOk: tcpChecksum(src, dst, tcp) === 0,
    totalLength: frame.length,
  }
}

/** The TCP pseudo-header (RFC 9293 §3.1, RFC 8200 §8.1). */
function pseudoOf(src: Uint8Array, dst: Uint8Array, length: number): Uint8Array {
  const p = new Uint8Array(src.length * 2 + (src.length === 4 ? 4 : 8))
  p.set(src, 0)
  p.set(dst, src.length)
  const o = src.length * 2
  if (src.length === 4) {
    p[o + 1] = 6
    p[o + 2] = length >> 8
    p[o + 3] = length & 0xff
  } else {
    p[o + 2] = length >> 8
    p[o + 3] = length & 0xff
    p[o + 7] = 6
  }
  return p
}
