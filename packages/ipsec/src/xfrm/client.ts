import { closeSync, openSync } from 'node:fs'
import { XfrmError } from '../errors.js'
import { errnoName } from '../errno.js'
import { decodePolicyPayload, decodeStatePayload, request } from './codec.js'
import {
  AF_NETLINK,
  CLONE_NEWNET,
  MSG_PEEK,
  MSG_TRUNC,
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  NETLINK_XFRM,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  SOCK_CLOEXEC,
  SOCK_RAW,
  SOL_NETLINK,
  SOL_SOCKET,
  SO_RCVTIMEO,
  XFRM_MSG,
} from './constants.js'
import { libc, type Libc } from './libc.js'
import { decodeError, decodeMessages, doneErrno, type NetlinkMessage } from './netlink.js'
import type { XfrmPolicy, XfrmPolicyId, XfrmPolicyInfo, XfrmState, XfrmStateId, XfrmStateInfo } from './types.js'

export interface XfrmClientOptions {
  /**
   * Path of a network namespace (`/run/netns/NAME`, `/proc/PID/ns/net`) to work in. The socket is created inside it
   * (see `openSocket`) and stays there; without it the client works in the calling thread's namespace.
   */
  netns?: string
  /** Upper bound on waiting for the kernel's answer; the kernel answers XFRM requests synchronously, so this is a guard. */
  timeoutMs?: number
}

const defaults = { timeoutMs: 5000 } as const

/**
 * XFRM (IPsec) states and policies over a NETLINK_XFRM socket, through libc via koffi.
 *
 * Calls are synchronous: the kernel handles an XFRM request inside `sendto()` and builds dump parts inside `recv()`,
 * so there is nothing to wait for, and SO_RCVTIMEO bounds the unexpected. Errors are XfrmError with the errno name.
 */
export class XfrmClient {
  readonly #c: Libc
  #fd: number
  #seq: number
  readonly #buf: { b: Buffer }

  private constructor(c: Libc, fd: number) {
    this.#c = c
    this.#fd = fd
    this.#seq = (Date.now() / 1000) >>> 0
    this.#buf = { b: Buffer.alloc(64 * 1024) }
  }

  static open(options: XfrmClientOptions = {}): XfrmClient {
    const timeoutMs = options.timeoutMs ?? defaults.timeoutMs
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
      throw new RangeError(`XfrmClient.open: option timeoutMs must be a positive number, got ${timeoutMs}`)
    const c = libc()
    const fd = options.netns === undefined ? openSocket(c) : inNetns(c, options.netns, () => openSocket(c))
    try {
      const tv = Buffer.alloc(16)
      tv.writeBigInt64LE(BigInt(Math.floor(timeoutMs / 1000)), 0)
      tv.writeBigInt64LE(BigInt((timeoutMs % 1000) * 1000), 8)
      check(c, 'setsockopt SO_RCVTIMEO', c.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16))
      const one = Buffer.alloc(4)
      one.writeInt32LE(1, 0)
      // Extended acks carry the kernel's reason text; capped acks do not echo our request back.
      check(c, 'setsockopt NETLINK_EXT_ACK', c.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, one, 4))
      check(c, 'setsockopt NETLINK_CAP_ACK', c.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, one, 4))
      const sa = Buffer.alloc(12)
      sa.writeUInt16LE(AF_NETLINK, 0)
      check(c, 'bind', c.bind(fd, sa, 12))
    } catch (err) {
      c.close(fd)
      throw err
    }
    return new XfrmClient(c, fd)
  }

  addState(s: XfrmState): void {
    this.#ack('add state', (seq) => request.addState(s, seq))
  }
  /** Replaces the state with the same (dst, spi, proto), or adds it. */
  updateState(s: XfrmState): void {
    this.#ack('update state', (seq) => request.updateState(s, seq))
  }
  deleteState(id: XfrmStateId): void {
    this.#ack('delete state', (seq) => request.deleteState(id, seq))
  }
  /** The state, or undefined when the kernel has none (ESRCH). */
  getState(id: XfrmStateId): XfrmStateInfo | undefined {
    const m = this.#get('get state', (seq) => request.getState(id, seq), XFRM_MSG.NEWSA)
    return m && decodeStatePayload(m.payload)
  }
  dumpStates(): XfrmStateInfo[] {
    return this.#dump('dump states', (seq) => request.dumpStates(seq), XFRM_MSG.NEWSA).map((m) =>
      decodeStatePayload(m.payload),
    )
  }

  addPolicy(p: XfrmPolicy): void {
    this.#ack('add policy', (seq) => request.addPolicy(p, seq))
  }
  /** Replaces the policy with the same (selector, dir, mark), or adds it. */
  updatePolicy(p: XfrmPolicy): void {
    this.#ack('update policy', (seq) => request.updatePolicy(p, seq))
  }
  deletePolicy(id: XfrmPolicyId): void {
    this.#ack('delete policy', (seq) => request.deletePolicy(id, seq))
  }
  /** The policy, or undefined when the kernel has none (ENOENT). */
  getPolicy(id: XfrmPolicyId): XfrmPolicyInfo | undefined {
    const m = this.#get('get policy', (seq) => request.getPolicy(id, seq), XFRM_MSG.NEWPOLICY)
    return m && decodePolicyPayload(m.payload)
  }
  dumpPolicies(): XfrmPolicyInfo[] {
    return this.#dump('dump policies', (seq) => request.dumpPolicies(seq), XFRM_MSG.NEWPOLICY).map((m) =>
      decodePolicyPayload(m.payload),
    )
  }

  close(): void {
    if (this.#fd < 0) return
    this.#c.close(this.#fd)
    this.#fd = -1
  }
  [Symbol.dispose](): void {
    this.close()
  }

  // ---- transport ----

  #send(op: string, build: (seq: number) => Buffer): number {
    if (this.#fd < 0) throw new XfrmError(op, 9, 'EBADF', 'client is closed')
    const seq = (this.#seq = (this.#seq + 1) >>> 0)
    const msg = build(seq)
    const kernel = Buffer.alloc(12)
    kernel.writeUInt16LE(AF_NETLINK, 0)
    const n = this.#c.sendto(this.#fd, msg, msg.length, 0, kernel, 12)
    if (n < 0) throw sysError(this.#c, op)
    return seq
  }

  /** Receives one datagram, sized with MSG_PEEK|MSG_TRUNC first so no message is cut. */
  #recv(op: string): NetlinkMessage[] {
    const c = this.#c
    const size = c.recv(this.#fd, this.#buf.b, 0, MSG_PEEK | MSG_TRUNC)
    if (size < 0) throw sysError(c, op)
    if (size > this.#buf.b.length) this.#buf.b = Buffer.alloc(size)
    const n = c.recv(this.#fd, this.#buf.b, this.#buf.b.length, 0)
    if (n < 0) throw sysError(c, op)
    return decodeMessages(Buffer.from(this.#buf.b.subarray(0, n)))
  }

  /** Messages answering `seq`; stale answers to earlier requests (after a timeout) are dropped. */
  *#answers(op: string, seq: number): Generator<NetlinkMessage> {
    for (;;) for (const m of this.#recv(op)) if (m.seq === seq && m.type !== NLMSG_NOOP) yield m
  }

  #ack(op: string, build: (seq: number) => Buffer): void {
    const seq = this.#send(op, build)
    for (const m of this.#answers(op, seq)) {
      if (m.type !== NLMSG_ERROR) continue
      const e = decodeError(m)
      if (e.errno === 0) return
      throw new XfrmError(op, e.errno, e.code!, e.kernelMessage)
    }
  }

  #get(op: string, build: (seq: number) => Buffer, answerType: number): NetlinkMessage | undefined {
    const seq = this.#send(op, build)
    for (const m of this.#answers(op, seq)) {
      if (m.type === answerType) return m
      if (m.type !== NLMSG_ERROR) continue
      const e = decodeError(m)
      if (e.code === 'ESRCH' || e.code === 'ENOENT') return undefined
      if (e.errno !== 0) throw new XfrmError(op, e.errno, e.code!, e.kernelMessage)
    }
    return undefined
  }

  #dump(op: string, build: (seq: number) => Buffer, entryType: number): NetlinkMessage[] {
    const seq = this.#send(op, build)
    const out: NetlinkMessage[] = []
    for (const m of this.#answers(op, seq)) {
      if (m.type === NLMSG_DONE) {
        const errno = doneErrno(m)
        if (errno !== 0) throw new XfrmError(op, errno, errnoName(errno))
        return out
      }
      if (m.type === NLMSG_ERROR) {
        const e = decodeError(m)
        throw new XfrmError(op, e.errno, e.code ?? 'EIO', e.kernelMessage)
      }
      if (m.type === entryType) out.push(m)
    }
    return out
  }
}

function openSocket(c: Libc): number {
  const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_XFRM)
  if (fd < 0) throw sysError(c, 'socket(AF_NETLINK, NETLINK_XFRM)')
  return fd
}

/**
 * Runs `fn` with the calling thread switched into the network namespace at `path`, then switches back.
 * A socket keeps the namespace it was created in, so only its creation needs the switch. setns(CLONE_NEWNET)
 * affects only the calling thread (here Node's main thread), and nothing else runs on it in between: the
 * whole window is synchronous. If switching back fails the process cannot know which namespace its main thread
 * is in, so it aborts rather than continue in the wrong one.
 */
export function inNetns<T>(c: Libc, path: string, fn: () => T): T {
  const home = openSync('/proc/thread-self/ns/net', 'r')
  let target: number
  try {
    target = openSync(path, 'r')
  } catch (err) {
    closeSync(home)
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO'
    throw new XfrmError(`open netns ${path}`, 0, code)
  }
  try {
    if (c.setns(target, CLONE_NEWNET) < 0) throw sysError(c, `setns ${path}`)
    try {
      return fn()
    } finally {
      if (c.setns(home, CLONE_NEWNET) < 0) {
        process.stderr.write(
          `kmesh ipsec: cannot return the main thread to its network namespace (${errnoName(c.errno())}); aborting\n`,
        )
        process.abort()
      }
    }
  } finally {
    closeSync(target)
    closeSync(home)
  }
}

function check(c: Libc, op: string, rc: number): void {
  if (rc < 0) throw sysError(c, op)
}

function sysError(c: Libc, op: string): XfrmError {
  const errno = c.errno()
  // SO_RCVTIMEO expiry shows up as EAGAIN: report it as the timeout it is.
  if (errnoName(errno) === 'EAGAIN')
    return new XfrmError(op, 110, 'ETIMEDOUT', 'no answer from the kernel within the timeout')
  return new XfrmError(op, errno, errnoName(errno))
}
