import { XfrmCodecError } from '../errors.js'
import { errnoName } from '../errno.js'
import {
  NLA_HDRLEN,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSGERR_ATTR_MSG,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
} from './constants.js'

/** One netlink message: `struct nlmsghdr` fields and the payload after the header. */
export interface NetlinkMessage {
  type: number
  flags: number
  seq: number
  pid: number
  payload: Buffer
}

export const align4 = (n: number): number => (n + 3) & ~3

/** One netlink attribute: type (without the nested/byte-order bits) and value. */
export interface NetlinkAttribute {
  type: number
  value: Buffer
}

/** Encodes attributes, each padded to 4 bytes (`struct nlattr`). */
export function encodeAttributes(attrs: readonly NetlinkAttribute[]): Buffer {
  const parts: Buffer[] = []
  for (const a of attrs) {
    const len = NLA_HDRLEN + a.value.length
    const b = Buffer.alloc(align4(len))
    b.writeUInt16LE(len, 0)
    b.writeUInt16LE(a.type, 2)
    a.value.copy(b, NLA_HDRLEN)
    parts.push(b)
  }
  return Buffer.concat(parts)
}

/** Splits a run of attributes. */
export function decodeAttributes(buf: Buffer): NetlinkAttribute[] {
  const out: NetlinkAttribute[] = []
  let off = 0
  while (off + NLA_HDRLEN <= buf.length) {
    const len = buf.readUInt16LE(off)
    const type = buf.readUInt16LE(off + 2) & 0x3fff
    if (len < NLA_HDRLEN || off + len > buf.length)
      throw new XfrmCodecError(`attribute at offset ${off} has length ${len}, beyond the ${buf.length}-byte buffer`)
    out.push({ type, value: buf.subarray(off + NLA_HDRLEN, off + len) })
    off += align4(len)
  }
  return out
}

/** Frames one message: header (`nlmsg_len` covers header + payload) then the payload. */
export function encodeMessage(m: Omit<NetlinkMessage, 'pid'> & { pid?: number }): Buffer {
  const b = Buffer.alloc(NLMSG_HDRLEN + align4(m.payload.length))
  b.writeUInt32LE(NLMSG_HDRLEN + m.payload.length, 0)
  b.writeUInt16LE(m.type, 4)
  b.writeUInt16LE(m.flags, 6)
  b.writeUInt32LE(m.seq >>> 0, 8)
  b.writeUInt32LE((m.pid ?? 0) >>> 0, 12)
  m.payload.copy(b, NLMSG_HDRLEN)
  return b.subarray(0, NLMSG_HDRLEN + m.payload.length)
}

/** Splits one datagram into its messages. */
export function decodeMessages(buf: Buffer): NetlinkMessage[] {
  const out: NetlinkMessage[] = []
  let off = 0
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off)
    if (len < NLMSG_HDRLEN || off + len > buf.length)
      throw new XfrmCodecError(
        `netlink message at offset ${off} has length ${len}, beyond the ${buf.length}-byte datagram`,
      )
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    })
    off += align4(len)
  }
  return out
}

/** The content of an NLMSG_ERROR (an ack when errno is 0). */
export interface NetlinkError {
  /** Positive errno; 0 for an ack. */
  errno: number
  /** `EEXIST`, …; undefined for an ack. */
  code: string | undefined
  /** The extended-ack message, when the kernel sent one. */
  kernelMessage: string | undefined
  /** Header of the request this answers. */
  request: { type: number; seq: number }
}

/** Decodes the payload of an NLMSG_ERROR message (`struct nlmsgerr` + optional extended-ack attributes). */
export function decodeError(m: NetlinkMessage): NetlinkError {
  if (m.type !== NLMSG_ERROR) throw new XfrmCodecError(`message type ${m.type} is not NLMSG_ERROR`)
  if (m.payload.length < 4 + NLMSG_HDRLEN)
    throw new XfrmCodecError(`NLMSG_ERROR payload of ${m.payload.length} bytes is too short`)
  const error = m.payload.readInt32LE(0)
  const errno = -error
  const requestLen = m.payload.readUInt32LE(4)
  let kernelMessage: string | undefined
  if (m.flags & NLM_F_ACK_TLVS) {
    const tlvStart = 4 + (m.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align4(requestLen))
    for (const a of decodeAttributes(m.payload.subarray(Math.min(tlvStart, m.payload.length)))) {
      if (a.type === NLMSGERR_ATTR_MSG) kernelMessage = cString(a.value)
    }
  }
  return {
    errno,
    code: errno === 0 ? undefined : errnoName(errno),
    kernelMessage,
    request: { type: m.payload.readUInt16LE(8), seq: m.payload.readUInt32LE(12) },
  }
}

/** The error a dump's NLMSG_DONE carries (0 when the dump completed). */
export function doneErrno(m: NetlinkMessage): number {
  if (m.type !== NLMSG_DONE) throw new XfrmCodecError(`message type ${m.type} is not NLMSG_DONE`)
  return m.payload.length >= 4 ? -m.payload.readInt32LE(0) : 0
}

/** A NUL-terminated string from a fixed-size field. */
export function cString(b: Buffer): string {
  const nul = b.indexOf(0)
  return b.toString('utf8', 0, nul < 0 ? b.length : nul)
}
