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

/** Encodes into a fresh zeroed buffer of exactly codec.size bytes. */
export function encodeToBuffer<T>(codec: Codec<T>, value: T): Buffer {
  const buf = Buffer.alloc(codec.size)
  codec.encode(value, buf, 0)
  return buf
}

/** BPF map records use the host's byte order for plain integers; addresses and ports are network order. */
export const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

export function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
}

// Buffers (the common case: every encodeToBuffer and every map read) use their own methods; a DataView per call
// would make garbage on every field of every record.
export function writeU32(buf: Uint8Array, offset: number, value: number): void {
  if (buf instanceof Buffer) {
    if (hostIsLittleEndian) buf.writeUInt32LE(value >>> 0, offset)
    else buf.writeUInt32BE(value >>> 0, offset)
  } else view(buf).setUint32(offset, value >>> 0, hostIsLittleEndian)
}

export function readU32(buf: Uint8Array, offset: number): number {
  if (buf instanceof Buffer) return hostIsLittleEndian ? buf.readUInt32LE(offset) : buf.readUInt32BE(offset)
  return view(buf).getUint32(offset, hostIsLittleEndian)
}

export function writeU64(buf: Uint8Array, offset: number, value: bigint): void {
  view(buf).setBigUint64(offset, value, hostIsLittleEndian)
}

export function readU64(buf: Uint8Array, offset: number): bigint {
  return view(buf).getBigUint64(offset, hostIsLittleEndian)
}

export function checkRange(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be an integer in 0..${max}, got ${value}`)
  }
}
