/**
 * A codec knows one record's byte size and writes or reads it at an offset of a caller's buffer, so batch
 * writers can pack many records into one buffer without copies (conventions.md §9).
 */
export interface Codec<T> {
  /** Name of the C struct this codec equals (checked against the BTF of the compiled objects). */
  readonly cStruct: string
  readonly size: number
  encode(value: T, buf: Uint8Array, offset?: number): void
  decode(buf: Uint8Array, offset?: number): T
}

/**
 * Encodes into fresh zeroed bytes of exactly codec.size. A Uint8Array, so the codecs run where there is no Node;
 * the native entry's `encodeToBuffer` gives the same bytes as a Buffer.
 */
export function encodeRecord<T>(codec: Codec<T>, value: T): Uint8Array {
  const buf = new Uint8Array(codec.size)
  codec.encode(value, buf, 0)
  return buf
}

/** BPF map records use the host's byte order for plain integers; addresses and ports are network order. */
export const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

export function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
}

function checkFits(buf: Uint8Array, offset: number, size: number): void {
  if (!(offset >= 0 && offset + size <= buf.length)) {
    throw new RangeError(`${size} bytes at offset ${offset} do not fit in ${buf.length}`)
  }
}

// Byte by byte, as Node's own Buffer.readUInt32LE does: no DataView per call (that would make garbage on every
// field of every record), and plain Uint8Array indexing works in every JavaScript runtime.
export function writeU32(buf: Uint8Array, offset: number, value: number): void {
  checkFits(buf, offset, 4)
  const v = value >>> 0
  if (hostIsLittleEndian) {
    buf[offset] = v
    buf[offset + 1] = v >>> 8
    buf[offset + 2] = v >>> 16
    buf[offset + 3] = v >>> 24
  } else {
    buf[offset] = v >>> 24
    buf[offset + 1] = v >>> 16
    buf[offset + 2] = v >>> 8
    buf[offset + 3] = v
  }
}

export function readU32(buf: Uint8Array, offset: number): number {
  checkFits(buf, offset, 4)
  const a = buf[offset]!
  const b = buf[offset + 1]!
  const c = buf[offset + 2]!
  const d = buf[offset + 3]!
  return hostIsLittleEndian ? a + b * 0x100 + c * 0x10000 + d * 0x1000000 : d + c * 0x100 + b * 0x10000 + a * 0x1000000
}

export function writeU64(buf: Uint8Array, offset: number, value: bigint): void {
  checkFits(buf, offset, 8)
  const v = BigInt.asUintN(64, value)
  const lo = Number(v & 0xffffffffn)
  const hi = Number(v >> 32n)
  writeU32(buf, offset + (hostIsLittleEndian ? 0 : 4), lo)
  writeU32(buf, offset + (hostIsLittleEndian ? 4 : 0), hi)
}

export function readU64(buf: Uint8Array, offset: number): bigint {
  checkFits(buf, offset, 8)
  const lo = readU32(buf, offset + (hostIsLittleEndian ? 0 : 4))
  const hi = readU32(buf, offset + (hostIsLittleEndian ? 4 : 0))
  return (BigInt(hi) << 32n) | BigInt(lo)
}

export function checkRange(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be an integer in 0..${max}, got ${value}`)
  }
}
