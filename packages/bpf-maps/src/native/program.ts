/**
 * Loaded programs and the links that attach them. Each handle owns one fd, independent of the bpf_object that
 * loaded it: closing a Collection does not invalidate a program handle or a link (cilium/ebpf semantics).
 */
import { openSync, closeSync, readlinkSync, unlinkSync } from 'node:fs'
import { BpfError, errnoName, SpecMismatchError } from './errors.js'
import { addressOf, closeFd, native, sizes } from './libbpf.js'
import type { BpfMap } from './map.js'

/** BPF_PROG_TYPE_SYSCALL: its test run writes the context back into ctx_in and takes no data or ctx_out. */
const PROG_TYPE_SYSCALL = 31

export interface TestRunOptions {
  ctxIn?: Buffer
  /** Bytes to reserve for the context the program leaves behind (ignored for syscall programs: see testRun). */
  ctxOutSize?: number
  dataIn?: Buffer
  dataOutSize?: number
  /** Runs the program this many times (the kernel averages the duration); default 1. */
  repeat?: number
}

export interface TestRunResult {
  retval: number
  ctxOut?: Buffer
  dataOut?: Buffer
  /** Average run time per repetition as the kernel measured it (0 for program types that do not time runs). */
  durationNs: number
}

export class BpfProgram implements Disposable {
  readonly name: string
  readonly sectionName: string
  /** BPF_PROG_TYPE_* */
  readonly type: number
  /** BPF_CGROUP_INET4_CONNECT … : what attach() uses. */
  readonly expectedAttachType: number
  #fd: number

  /** Wraps an fd this handle now owns. */
  constructor(fd: number, desc: { name: string; sectionName: string; type: number; expectedAttachType: number }) {
    this.#fd = fd
    this.name = desc.name
    this.sectionName = desc.sectionName
    this.type = desc.type
    this.expectedAttachType = desc.expectedAttachType
  }

  get fd(): number {
    if (this.#fd < 0) throw new Error(`program ${this.name} is closed`)
    return this.#fd
  }

  /**
   * Attaches to a cgroup v2 directory through a BPF link (what bpf_program__attach_cgroup does: bpf_link_create
   * with the program's expected attach type). The link detaches when its last fd closes, unless it is pinned.
   */
  attachCgroup(cgroupPath: string): BpfLink {
    let cgroupFd: number
    try {
      cgroupFd = openSync(cgroupPath, 'r')
    } catch (err) {
      throw new BpfError({
        op: 'attachCgroup',
        errno: (err as NodeJS.ErrnoException).errno ?? 2,
        message: `attachCgroup ${this.name}: cannot open cgroup ${cgroupPath}: ${(err as Error).message}`,
      })
    }
    try {
      const fd = native.bpf_link_create(this.fd, cgroupFd, this.expectedAttachType, null) as number
      if (fd < 0) {
        throw new BpfError({
          op: 'bpf_link_create',
          errno: fd,
          message: `attaching program ${this.name} (${this.sectionName}) to cgroup ${cgroupPath} failed: ${errnoName(fd)}`,
        })
      }
      return new BpfLink(fd, `${this.name} → ${cgroupPath}`)
    } finally {
      closeSync(cgroupFd)
    }
  }

  /**
   * Attaches to a map through a BPF link (bpf_link_create with the map as target and the program's expected attach
   * type): an sk_msg or sk_skb program on a sockmap/sockhash (links on sockmaps: kernel >= 6.10).
   */
  attachMap(map: BpfMap): BpfLink {
    const fd = native.bpf_link_create(this.fd, map.fd, this.expectedAttachType, null) as number
    if (fd < 0) {
      throw new BpfError({
        op: 'bpf_link_create',
        errno: fd,
        mapName: map.spec.name,
        message: `attaching program ${this.name} (${this.sectionName}) to map ${map.spec.name} failed: ${errnoName(fd)}`,
      })
    }
    return new BpfLink(fd, `${this.name} → ${map.spec.name}`)
  }

  /**
   * Runs the program once (or `repeat` times) on inputs the caller builds (BPF_PROG_TEST_RUN). For a syscall
   * program the kernel writes the context back over ctx_in: ctxOut is then that context after the run.
   */
  testRun(opts: TestRunOptions = {}): TestRunResult {
    const ctxIn = opts.ctxIn ? Buffer.from(opts.ctxIn) : undefined
    const isSyscall = this.type === PROG_TYPE_SYSCALL
    const ctxOut = !isSyscall && opts.ctxOutSize ? Buffer.alloc(opts.ctxOutSize) : undefined
    const dataOut = opts.dataOutSize ? Buffer.alloc(opts.dataOutSize) : undefined
    // struct bpf_test_run_opts (bpf.h, libbpf 1.1), 80 bytes; pointers are the Buffers' own memory.
    const o = Buffer.alloc(sizes.testRunOpts)
    o.writeBigUInt64LE(BigInt(sizes.testRunOpts), 0)
    if (opts.dataIn) {
      o.writeBigUInt64LE(addressOf(opts.dataIn), 8)
      o.writeUInt32LE(opts.dataIn.length, 24)
    }
    if (dataOut) {
      o.writeBigUInt64LE(addressOf(dataOut), 16)
      o.writeUInt32LE(dataOut.length, 28)
    }
    if (ctxIn) {
      o.writeBigUInt64LE(addressOf(ctxIn), 32)
      o.writeUInt32LE(ctxIn.length, 48)
    }
    if (ctxOut) {
      o.writeBigUInt64LE(addressOf(ctxOut), 40)
      o.writeUInt32LE(ctxOut.length, 52)
    }
    o.writeInt32LE(opts.repeat ?? 0, 60)
    const rc = native.bpf_prog_test_run_opts(this.fd, o) as number
    if (rc < 0)
      throw new BpfError({
        op: 'bpf_prog_test_run_opts',
        errno: rc,
        message: `test run of program ${this.name} (${this.sectionName}) failed: ${errnoName(rc)}`,
      })
    const result: TestRunResult = { retval: o.readUInt32LE(56), durationNs: o.readUInt32LE(64) }
    if (isSyscall && ctxIn) result.ctxOut = ctxIn
    if (ctxOut) result.ctxOut = ctxOut.subarray(0, o.readUInt32LE(52))
    if (dataOut) result.dataOut = dataOut.subarray(0, o.readUInt32LE(28))
    return result
  }

  /** Pins the program itself (bpf_obj_pin). */
  pin(path: string): void {
    const rc = native.bpf_obj_pin(this.fd, path) as number
    if (rc < 0)
      throw new BpfError({
        op: 'bpf_obj_pin',
        errno: rc,
        message: `bpf_obj_pin program ${this.name} at ${path} failed: ${errnoName(rc)}`,
      })
  }

  close(): void {
    if (this.#fd >= 0) closeFd(this.#fd)
    this.#fd = -1
  }

  [Symbol.dispose](): void {
    this.close()
  }
}

/** An attachment (bpf_link). Closing the last fd of an unpinned link detaches the program. */
export class BpfLink implements Disposable {
  readonly description: string
  #fd: number
  #pinPath: string | undefined

  constructor(fd: number, description: string, pinPath?: string) {
    this.#fd = fd
    this.description = description
    this.#pinPath = pinPath
  }

  /** Opens a link pinned in bpffs, e.g. one a previous daemon left behind. */
  static openPinned(path: string): BpfLink {
    const fd = native.bpf_obj_get(path) as number
    if (fd < 0)
      throw new BpfError({ op: 'bpf_obj_get', errno: fd, message: `bpf_obj_get ${path} failed: ${errnoName(fd)}` })
    let kind = ''
    try {
      kind = readlinkSync(`/proc/self/fd/${fd}`)
    } catch {
      /* no procfs */
    }
    if (kind && kind !== 'anon_inode:bpf-link' && kind !== 'anon_inode:bpf_link') {
      closeFd(fd)
      throw new SpecMismatchError('BpfLink.openPinned', `${path} is not a BPF link (${kind})`)
    }
    return new BpfLink(fd, path, path)
  }

  get fd(): number {
    if (this.#fd < 0) throw new Error(`link ${this.description} is closed`)
    return this.#fd
  }

  get pinPath(): string | undefined {
    return this.#pinPath
  }

  /** Pins the link so the attachment outlives this process. */
  pin(path: string): void {
    const rc = native.bpf_obj_pin(this.fd, path) as number
    if (rc < 0)
      throw new BpfError({
        op: 'bpf_obj_pin',
        errno: rc,
        message: `bpf_obj_pin link ${this.description} at ${path} failed: ${errnoName(rc)}`,
      })
    this.#pinPath = path
  }

  /** Removes the pin (the attachment stays while a fd is open). */
  unpin(): void {
    if (!this.#pinPath) return
    try {
      unlinkSync(this.#pinPath)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    this.#pinPath = undefined
  }

  /**
   * Replaces the link's program in place (BPF_LINK_UPDATE): one atomic swap, no instant without a program and
   * none with both. The new program must be of the link's type and attach type.
   */
  update(program: BpfProgram): void {
    const rc = native.bpf_link_update(this.fd, program.fd, null) as number
    if (rc < 0)
      throw new BpfError({
        op: 'bpf_link_update',
        errno: rc,
        message: `updating link ${this.description} to program ${program.name} failed: ${errnoName(rc)}`,
      })
  }

  /** Detaches the program now, even while the link is pinned or held elsewhere (BPF_LINK_DETACH). */
  detach(): void {
    const rc = native.bpf_link_detach(this.fd) as number
    if (rc < 0)
      throw new BpfError({
        op: 'bpf_link_detach',
        errno: rc,
        message: `detaching link ${this.description} failed: ${errnoName(rc)}`,
      })
  }

  /** Releases this handle; the program stays attached only if the link is pinned. */
  close(): void {
    if (this.#fd >= 0) closeFd(this.#fd)
    this.#fd = -1
  }

  [Symbol.dispose](): void {
    this.close()
  }
}

/** Installs a tail-call target: prog_array[index] = prog (value is the program fd, key a host-order u32). */
export function progArraySet(map: BpfMap, index: number, prog: BpfProgram): void {
  if (map.spec.type !== 3 /* BPF_MAP_TYPE_PROG_ARRAY */) {
    throw new SpecMismatchError(
      'progArraySet',
      `map ${map.spec.name} is not a program array (type ${map.spec.type})`,
      map.spec.name,
    )
  }
  const key = Buffer.alloc(4)
  key.writeUInt32LE(index)
  const value = Buffer.alloc(4)
  value.writeUInt32LE(prog.fd)
  map.put(key, value)
}

let statsFd = -1

/**
 * Turns the kernel's per-program run-time accounting on or off for as long as this process holds it
 * (bpf_enable_stats(BPF_STATS_RUN_TIME); the kernel turns it off again when the process exits).
 */
export function setStatsEnabled(on: boolean): void {
  if (on && statsFd < 0) {
    const fd = native.bpf_enable_stats(0) as number
    if (fd < 0) throw new BpfError({ op: 'bpf_enable_stats', errno: fd })
    statsFd = fd
  } else if (!on && statsFd >= 0) {
    closeFd(statsFd)
    statsFd = -1
  }
}

/** run_time_ns / run_cnt of a program (bpf_obj_get_info_by_fd): counted only while stats are enabled. */
export function programStats(prog: number | BpfProgram): { runTimeNs: bigint; runCount: bigint } {
  const fd = typeof prog === 'number' ? prog : prog.fd
  const info = Buffer.alloc(sizes.progInfo)
  const len = [info.length]
  const rc = native.bpf_obj_get_info_by_fd(fd, info, len) as number
  if (rc < 0) throw new BpfError({ op: 'bpf_obj_get_info_by_fd', errno: rc })
  // struct bpf_prog_info: run_time_ns at 192, run_cnt at 200 (linux/bpf.h).
  return { runTimeNs: info.readBigUInt64LE(192), runCount: info.readBigUInt64LE(200) }
}
