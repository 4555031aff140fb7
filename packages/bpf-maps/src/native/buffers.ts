/**
 * The Node boundary of the codecs: they work on Uint8Array (so they run in a browser); the libbpf calls and
 * Node callers that want Buffer methods get a Buffer over the same memory, never a copy.
 */
import { encodeRecord, type Codec } from '../codecs/codec.js'

/** The same bytes as a Buffer (no copy); a Buffer is returned as it is. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** Encodes into a fresh zeroed Buffer of exactly codec.size bytes (`encodeRecord` as a Buffer). */
export function encodeToBuffer<T>(codec: Codec<T>, value: T): Buffer {
  return asBuffer(encodeRecord(codec, value))
}
