// DeltaDiscoveryResponses read from the bytes of a gRPC stream as they arrive, chunk by chunk, never joined into
// one buffer: a full push of a big mesh is one message of tens of megabytes, and joining it (what a gRPC client
// does before handing a message over) is one allocation and copy of all of it in a single turn of the event loop
// — ~80 ms for 22 MB in a big daemon's heap. Here each top-level field (one per resource) is read where it lies,
// in the chunk that holds it; only a field cut by a chunk boundary is copied, alone. The fields are read by the
// same code as decodeDeltaResponse (wire.ts: readResponseField), so the result is the same, field for field.
import { emptyDeltaResponse, readResponseField, type DeltaDiscoveryResponse } from './wire.js'
import { FIXED32, FIXED64, LENGTH_DELIMITED, VARINT, WireFormatError, WireReader } from './wire-reader.js'

/** gRPC's length prefix: a compressed flag and a 4-byte big-endian length (grpc/PROTOCOL-HTTP2.md). */
const PREFIX = 5

/** A message larger than the limit, refused before any of it is kept (gRPC's RESOURCE_EXHAUSTED). */
export class MessageTooLargeError extends Error {
  override name = 'MessageTooLargeError'
}

export class ResponseStreamReader {
  /** bytes of a length prefix, or of a field, cut by a chunk boundary */
  #carry: Buffer[] = []
  #carried = 0
  /** the carried field's whole length, once its tag and length are known (0: not yet known) */
  #fieldSize = 0
  /** message bytes still to come (-1: between messages, reading a prefix) */
  #left = -1
  #size = 0
  #out: DeltaDiscoveryResponse = emptyDeltaResponse()

  constructor(
    private readonly maxMessageBytes: number,
    /** each complete response, with the size of its message */
    private readonly onResponse: (res: DeltaDiscoveryResponse, bytes: number) => void,
  ) {}

  /** Whether the bytes so far end between messages (a stream that ends elsewhere was cut short). */
  get atBoundary(): boolean {
    return this.#left === -1 && this.#carried === 0
  }

  /** Reads one chunk; throws WireFormatError (or MessageTooLargeError) when the bytes are not a valid stream. */
  push(chunk: Buffer): void {
    let at = 0
    while (at < chunk.length) {
      if (this.#left === -1) {
        at = this.#prefix(chunk, at)
        continue
      }
      const lastOfMessage = this.#left <= chunk.length - at
      const end = at + Math.min(this.#left, chunk.length - at)
      const stop = this.#fields(chunk, at, end, lastOfMessage)
      if (stop < end) this.#keep(chunk.subarray(stop, end)) // a field cut by the chunk's end: the rest comes next
      this.#left -= end - at
      at = end
      if (this.#left === 0) this.#finish()
    }
  }

  /** Reads (or keeps part of) a length prefix; returns where the message's bytes begin. */
  #prefix(chunk: Buffer, at: number): number {
    const take = Math.min(PREFIX - this.#carried, chunk.length - at)
    this.#keep(chunk.subarray(at, at + take))
    if (this.#carried < PREFIX) return at + take
    const prefix = this.#takeCarry()
    if (prefix[0] !== 0) throw new WireFormatError('compressed message, but no compression was agreed')
    const size = prefix.readUInt32BE(1)
    if (size > this.maxMessageBytes)
      throw new MessageTooLargeError(`Received message larger than max (${size} vs. ${this.maxMessageBytes})`)
    this.#left = size
    this.#size = size
    if (size === 0) this.#finish()
    return at + take
  }

  /**
   * Reads the complete fields of chunk[at, end) (message bytes), the carried one first; returns where the first
   * field not complete in this chunk begins (end when all were). `lastOfMessage`: the message ends at `end`, so a
   * field that runs past it is malformed.
   */
  #fields(chunk: Buffer, at: number, end: number, lastOfMessage: boolean): number {
    // A field that runs past the end of its message: read what there is as the whole-message decoder would, so
    // the error is the same one ("length N runs past the end of the message", "truncated varint").
    const cut = (from: number): never => {
      const rest = Buffer.concat([...this.#carry, chunk.subarray(from, end)])
      this.#read(rest, 0, rest.length)
      throw new WireFormatError('a field runs past the end of the message')
    }
    if (this.#carried > 0) {
      // the rest of a cut field: its size from its head, then the field read from one small buffer
      if (this.#fieldSize === 0) {
        const head = Buffer.concat([...this.#carry, chunk.subarray(at, Math.min(end, at + 24))])
        this.#fieldSize = fieldSize(head, 0, head.length)
        if (this.#fieldSize === 0) {
          if (lastOfMessage) cut(at)
          this.#keep(chunk.subarray(at, end))
          return end
        }
      }
      const need = this.#fieldSize - this.#carried
      if (need > end - at) {
        if (lastOfMessage) cut(at)
        this.#keep(chunk.subarray(at, end))
        return end
      }
      this.#keep(chunk.subarray(at, at + need))
      const field = this.#takeCarry()
      this.#read(field, 0, field.length)
      at += need
    }
    while (at < end) {
      const size = fieldSize(chunk, at, end)
      if (size === 0 || at + size > end) {
        if (lastOfMessage) cut(at)
        return at
      }
      this.#read(chunk, at, at + size)
      at += size
    }
    return at
  }

  #read(buf: Buffer, start: number, end: number): void {
    const r = new WireReader(buf, start, end)
    const t = r.rawTag()
    readResponseField(this.#out, t, r)
    if (r.pos !== end) throw new WireFormatError('a field runs past its length')
  }

  #keep(part: Buffer): void {
    this.#carry.push(part)
    this.#carried += part.length
  }

  #takeCarry(): Buffer {
    const all = this.#carry.length === 1 ? (this.#carry[0] as Buffer) : Buffer.concat(this.#carry)
    this.#carry = []
    this.#carried = 0
    this.#fieldSize = 0
    return all
  }

  #finish(): void {
    const res = this.#out
    const bytes = this.#size
    this.#out = emptyDeltaResponse()
    this.#left = -1
    this.#size = 0
    this.onResponse(res, bytes)
  }
}

/**
 * The whole length (tag included) of the field that starts at buf[at], or 0 when its tag and length are not
 * complete before `end`. Throws WireFormatError for a wire type no message field has.
 */
function fieldSize(buf: Uint8Array, at: number, end: number): number {
  let p = at
  const varint = (): number => {
    let result = 0
    let scale = 1
    for (let i = 0; i < 10; i++) {
      if (p >= end) return -1
      const b = buf[p++] as number
      result += (b & 0x7f) * scale
      if (b < 0x80) return result
      scale *= 128
    }
    throw new WireFormatError('varint longer than 10 bytes')
  }
  const tag = varint()
  if (tag < 0) return 0
  if (tag < 8) throw new WireFormatError('field number 0')
  switch (tag % 8) {
    case VARINT:
      return varint() < 0 ? 0 : p - at
    case FIXED64:
      return p + 8 - at
    case FIXED32:
      return p + 4 - at
    case LENGTH_DELIMITED: {
      const length = varint()
      return length < 0 ? 0 : p + length - at
    }
    default:
      throw new WireFormatError(`unsupported wire type ${tag % 8}`)
  }
}
