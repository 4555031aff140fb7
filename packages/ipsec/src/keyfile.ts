import { readFileSync, statSync } from 'node:fs'
import { inspect } from 'node:util'
import { KeyFileError } from './errors.js'

/**
 * One IPsec key as Kmesh's key file carries it (reference: issue 6, "Key file"):
 * `{"spi": int, "aeadKeyName": string, "aeadKey": base64, "length": int}`.
 * The key bytes are kept out of `JSON.stringify`, `util.inspect` and string conversion so that a log line
 * that prints a key by mistake shows `[redacted]` instead of the material.
 */
export class IpsecKey {
  readonly #aeadKey: Buffer
  constructor(
    /** Security parameter index; rotating the key means a new SPI. */
    readonly spi: number,
    /** Kernel AEAD algorithm name, e.g. `rfc4106(gcm(aes))`. */
    readonly aeadKeyName: string,
    aeadKey: Uint8Array,
    /** ICV length in bits (e.g. 128). */
    readonly length: number,
  ) {
    this.#aeadKey = Buffer.from(aeadKey)
  }

  /** A copy of the raw key bytes. */
  get aeadKey(): Buffer {
    return Buffer.from(this.#aeadKey)
  }

  /** Same SPI, algorithm, ICV length and key bytes. */
  equals(other: IpsecKey): boolean {
    return (
      this.spi === other.spi &&
      this.aeadKeyName === other.aeadKeyName &&
      this.length === other.length &&
      this.#aeadKey.equals(other.#aeadKey)
    )
  }

  toJSON(): { spi: number; aeadKeyName: string; length: number; aeadKey: '[redacted]' } {
    return { spi: this.spi, aeadKeyName: this.aeadKeyName, length: this.length, aeadKey: '[redacted]' }
  }

  toString(): string {
    return `IpsecKey(spi=${this.spi}, ${this.aeadKeyName}, ${this.#aeadKey.length * 8}-bit key, icv ${this.length})`
  }

  [inspect.custom](): string {
    return this.toString()
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** SHA-512 yields 64 bytes and the per-pair key is a prefix of it, so no raw key can be longer. */
export const MAX_KEY_BYTES = 64

/**
 * Parses the text of a Kmesh key file. `file` only names the source in errors. Throws KeyFileError for
 * anything unusable; the error text never quotes the file's content.
 */
export function parseKeyFile(text: string, file = '<key file>'): IpsecKey {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    // V8's message quotes the text around the fault, which may be key material: keep only the position.
    const at = /position (\d+)/.exec(String((err as Error).message))
    throw new KeyFileError(file, undefined, `not valid JSON${at ? ` (at byte ${at[1]})` : ''}`)
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new KeyFileError(file, undefined, 'must hold one JSON object')
  const o = doc as Record<string, unknown>

  const spi = o.spi
  if (typeof spi !== 'number' || !Number.isInteger(spi) || spi < 1 || spi > 0xffffffff) {
    throw new KeyFileError(file, 'spi', `must be an integer from 1 to 4294967295, got ${describe(spi)}`)
  }
  const name = o.aeadKeyName
  if (typeof name !== 'string') throw new KeyFileError(file, 'aeadKeyName', `must be a string, got ${describe(name)}`)
  if (!name.startsWith('rfc'))
    throw new KeyFileError(file, 'aeadKeyName', `algorithm "${name}" must begin with "rfc" (e.g. rfc4106(gcm(aes)))`)
  if (Buffer.byteLength(name) > 63)
    throw new KeyFileError(file, 'aeadKeyName', 'algorithm name longer than 63 bytes (the kernel limit)')
  const b64 = o.aeadKey
  if (typeof b64 !== 'string') throw new KeyFileError(file, 'aeadKey', `must be a base64 string, got ${describe(b64)}`)
  const compact = b64.replace(/\s+/g, '')
  if (compact.length === 0 || !BASE64.test(compact)) throw new KeyFileError(file, 'aeadKey', 'is not valid base64')
  const raw = Buffer.from(compact, 'base64')
  if (raw.length > MAX_KEY_BYTES)
    throw new KeyFileError(
      file,
      'aeadKey',
      `decodes to ${raw.length} bytes; at most ${MAX_KEY_BYTES} (the SHA-512 output the per-pair key is cut from)`,
    )
  const length = o.length
  if (typeof length !== 'number' || !Number.isInteger(length) || length <= 0 || length % 8 !== 0 || length > 512) {
    throw new KeyFileError(
      file,
      'length',
      `ICV length in bits must be a positive multiple of 8 up to 512, got ${describe(length)}`,
    )
  }
  return new IpsecKey(spi, name, raw, length)
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing (key missing)'
  if (typeof v === 'number') return String(v)
  if (typeof v === 'string') return `a string`
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v
}

export interface ReadKeyFileOptions {
  /** Called with an operator-facing warning (e.g. a key file readable by group or others). */
  onWarning?: (message: string) => void
}

/** Reads and parses a key file; warns (never throws) when group or others may read it. */
export function readKeyFile(path: string, options: ReadKeyFileOptions = {}): IpsecKey {
  let text: string
  let mode: number
  try {
    mode = statSync(path).mode
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO'
    throw new KeyFileError(path, undefined, `cannot read (${code})`, { cause: err })
  }
  const key = parseKeyFile(text, path)
  const loose = mode & 0o044
  if (loose) {
    options.onWarning?.(
      `${path}: key file is readable by ${loose & 0o004 ? 'others' : 'group'} (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); restrict it to 0600 or 0400`,
    )
  }
  return key
}
