// A protobuf wire-format reader over one buffer, for the messages on the hot path that do not need a graph of
// objects: a full push of a big mesh is one DeltaDiscoveryResponse of tens of megabytes, and only the envelope
// (names, versions, payload byte ranges) is needed before each payload is looked at on its own.
// Wire format: https://protobuf.dev/programming-guides/encoding/ (varints, tags = field << 3 | wire type).

export const VARINT = 0
export const FIXED64 = 1
export const LENGTH_DELIMITED = 2
export const FIXED32 = 5

export class WireFormatError extends Error {
  override name = 'WireFormatError'
}

export class WireReader {
  pos: number
  constructor(
    readonly buf: Uint8Array,
    start = 0,
    /** one past the last byte of this message (narrowed by enter() while a sub-message is read in place) */
    public end = buf.length,
  ) {
    this.pos = start
  }

  get done(): boolean {
    return this.pos >= this.end
  }

  /** An unsigned varint up to 2^53 (field numbers, lengths, enum values, int32/int64/uint64 of sane size). */
  varint(): number {
    const { buf, end } = this
    let result = 0
    let scale = 1
    for (let i = 0; i < 10; i++) {
      if (this.pos >= end) throw new WireFormatError('truncated varint')
      const b = buf[this.pos++]!
      result += (b & 0x7f) * scale
      if (b < 0x80) return result
      scale *= 128
    }
    throw new WireFormatError('varint longer than 10 bytes')
  }

  /** An int32 (negative values are sign-extended to ten bytes on the wire): the low 32 bits, signed. */
  int32(): number {
    const { buf, end } = this
    let low = 0
    for (let i = 0; i < 10; i++) {
      if (this.pos >= end) throw new WireFormatError('truncated varint')
      const b = buf[this.pos++]!
      if (i < 5) low |= (b & 0x7f) << (7 * i)
      if (b < 0x80) return low | 0
    }
    throw new WireFormatError('varint longer than 10 bytes')
  }

  /** An int64 as a number (exact up to 2^53; negative values as two's complement). */
  int64(): number {
    const v = this.varint()
    return v >= 2 ** 63 ? v - 2 ** 64 : v
  }

  /** The next tag as [field number, wire type]. */
  tag(): [number, number] {
    const t = this.rawTag()
    return [Math.floor(t / 8), t % 8]
  }

  /** The next tag as field number * 8 + wire type (the hot loops compare it whole, with no pair to build). */
  rawTag(): number {
    const t = this.varint()
    if (t < 8) throw new WireFormatError('field number 0')
    return t
  }

  /**
   * Narrows the reader to the length-delimited sub-message that comes next, to read it in place (no reader per
   * message); returns the end to give back to leave() once it is read.
   */
  enter(): number {
    const length = this.varint()
    if (length > this.end - this.pos) throw new WireFormatError(`length ${length} runs past the end of the message`)
    const outer = this.end
    this.end = this.pos + length
    return outer
  }

  leave(outer: number): void {
    this.end = outer
  }

  /** The [start, end) of the next length-delimited value, which the reader steps over. */
  range(): [number, number] {
    const len = this.varint()
    const start = this.pos
    if (len > this.end - start) throw new WireFormatError(`length ${len} runs past the end of the message`)
    this.pos = start + len
    return [start, this.pos]
  }

  /** A length-delimited value as a view (no copy) into the buffer. */
  bytes(): Uint8Array {
    const [s, e] = this.range()
    return this.buf.subarray(s, e)
  }

  string(): string {
    const [s, e] = this.range()
    return utf8(this.buf, s, e)
  }

  /**
   * string(), answering `prev` itself when the bytes are its (ASCII) text: a value every entry repeats (a type URL)
   * is then one string, not one per entry.
   */
  stringLike(prev: string): string {
    const [s, e] = this.range()
    const buf = this.buf
    if (e - s === prev.length) {
      let i = 0
      while (i < prev.length && buf[s + i]! < 0x80 && buf[s + i] === prev.charCodeAt(i)) i++
      if (i === prev.length) return prev
    }
    return utf8(buf, s, e)
  }

  /** Steps over a value of the given wire type (unknown fields are skipped, as every protobuf reader does). */
  skip(wireType: number): void {
    switch (wireType) {
      case VARINT:
        this.varint()
        return
      case FIXED64:
        this.advance(8)
        return
      case LENGTH_DELIMITED:
        this.range()
        return
      case FIXED32:
        this.advance(4)
        return
      default:
        throw new WireFormatError(`unsupported wire type ${wireType}`)
    }
  }

  /** A reader over the embedded message that comes next. */
  message(): WireReader {
    const [s, e] = this.range()
    return new WireReader(this.buf, s, e)
  }

  private advance(n: number): void {
    if (n > this.end - this.pos) throw new WireFormatError('truncated fixed-size value')
    this.pos += n
  }
}

const decoder = new TextDecoder()

/** UTF-8 text of buf[start, end): short ASCII strings (names, type URLs) without a decoder call. */
export function utf8(buf: Uint8Array, start: number, end: number): string {
  if (end - start <= 64) {
    let ascii = true
    for (let i = start; i < end; i++) if (buf[i]! >= 0x80) ascii = false
    if (ascii) return String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[])
  }
  return decoder.decode(buf.subarray(start, end))
}
