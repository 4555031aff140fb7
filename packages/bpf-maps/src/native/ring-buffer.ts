/**
 * The consumer side of a BPF ring buffer (BPF_MAP_TYPE_RINGBUF) through libbpf's ring_buffer__* API. Records are
 * handed to `onRecord` as a view of the ring's memory, valid only during the call (decode or copy them there).
 *
 * The event loop stays free: `start()` watches libbpf's epoll fd with libuv (no thread, no blocking poll) and
 * drains at most `budget` records per turn; a level-triggered fd that still has data fires again on the next turn,
 * so a flood is consumed in slices between other work. A slow timer drains too, in case a wakeup is missed (the
 * kernel wakes a consumer only when it had caught up).
 */
import { BpfError, errnoName } from './errors.js'
import {
  type Ptr,
  lastErrno,
  native,
  pollReadable,
  RingBufferSampleFn,
  registerCallback,
  unregisterCallback,
  viewOf,
} from './libbpf.js'
import type { BpfMap } from './map.js'

const RINGBUF_TYPE = 27
/** What the sample callback returns to stop a consume once the slice's budget is spent (any negative does). */
const STOP = -125

export interface RingBufferOptions {
  /** Records per event-loop turn (default 4096). */
  budget?: number
  /** Backup drain period in ms (default 200). */
  intervalMs?: number
}

export class RingBuffer implements Disposable {
  readonly mapName: string
  readonly sizeBytes: number
  #rb: Ptr | null
  #callback: unknown
  #onRecord: (bytes: Uint8Array) => void
  #left = 0
  #poll: { close(): void; unref(): void } | undefined
  #timer: NodeJS.Timeout | undefined
  #budget: number
  #intervalMs: number
  #error: unknown

  constructor(map: BpfMap, onRecord: (bytes: Uint8Array) => void, options: RingBufferOptions = {}) {
    if (map.spec.type !== RINGBUF_TYPE)
      throw new TypeError(`RingBuffer: map ${map.spec.name} is not a ring buffer (type ${map.spec.type})`)
    this.mapName = map.spec.name
    this.sizeBytes = map.spec.maxEntries
    this.#onRecord = onRecord
    this.#budget = options.budget ?? 4096
    this.#intervalMs = options.intervalMs ?? 200
    this.#callback = registerCallback((_ctx: unknown, data: unknown, size: number | bigint) => {
      try {
        this.#onRecord(viewOf(data, Number(size)))
      } catch (err) {
        this.#error ??= err // reported by drain(); the record is consumed either way
      }
      return --this.#left > 0 ? 0 : STOP
    }, RingBufferSampleFn)
    const rb = native.ring_buffer__new(map.fd, this.#callback, null, null) as Ptr | null
    if (!rb) {
      const errno = lastErrno()
      unregisterCallback(this.#callback)
      throw new BpfError({
        op: 'ring_buffer__new',
        errno,
        mapName: map.spec.name,
        message: `ring_buffer__new on map ${map.spec.name} failed: ${errnoName(errno)}`,
      })
    }
    this.#rb = rb
  }

  /**
   * Consumes up to `max` records now (synchronously) and returns how many; an exception thrown by onRecord is
   * rethrown after the slice.
   */
  drain(max = this.#budget): number {
    if (!this.#rb) throw new Error(`RingBuffer ${this.mapName} is closed`)
    this.#left = max
    const rc = native.ring_buffer__consume(this.#rb) as number
    const consumed = max - Math.max(this.#left, 0)
    if (rc < 0 && rc !== STOP) throw new BpfError({ op: 'ring_buffer__consume', errno: rc, mapName: this.mapName })
    const err = this.#error
    this.#error = undefined
    if (err) throw err
    return consumed
  }

  /** Drains as records arrive, `budget` per event-loop turn; errors go to onError. The handle does not keep the process alive. */
  start(onError: (err: unknown) => void = () => {}): void {
    if (!this.#rb) throw new Error(`RingBuffer ${this.mapName} is closed`)
    if (this.#poll) return
    const drain = () => {
      try {
        if (this.#rb) this.drain()
      } catch (err) {
        onError(err)
      }
    }
    this.#poll = pollReadable(native.ring_buffer__epoll_fd(this.#rb) as number, drain)
    this.#poll.unref()
    this.#timer = setInterval(drain, this.#intervalMs)
    this.#timer.unref()
  }

  stop(): void {
    this.#poll?.close()
    this.#poll = undefined
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
  }

  close(): void {
    this.stop()
    if (this.#rb) {
      native.ring_buffer__free(this.#rb)
      this.#rb = null
      unregisterCallback(this.#callback)
    }
  }

  [Symbol.dispose](): void {
    this.close()
  }
}
