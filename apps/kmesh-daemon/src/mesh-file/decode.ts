/**
 * Bytes to text. A mesh file must be UTF-8: a lenient decode would turn a bad byte into U+FFFD and a
 * name into a different name, so the first bad byte is refused with its line.
 */
import { MeshFileError } from './problems.js'

/** Offset of the first byte that does not belong to a well-formed UTF-8 sequence (RFC 3629). */
export function firstBadUtf8(bytes: Uint8Array): number {
  let i = 0
  while (i < bytes.length) {
    const b = bytes[i] as number
    if (b < 0x80) {
      i++
      continue
    }
    let n: number
    let lo = 0x80
    let hi = 0xbf
    if (b >= 0xc2 && b <= 0xdf) n = 1
    else if (b >= 0xe0 && b <= 0xef) {
      n = 2
      if (b === 0xe0) lo = 0xa0 // overlong
      if (b === 0xed) hi = 0x9f // surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 3
      if (b === 0xf0) lo = 0x90
      if (b === 0xf4) hi = 0x8f // above U+10FFFF
    } else return i
    for (let k = 1; k <= n; k++) {
      const c = bytes[i + k]
      if (c === undefined) return i
      if (k === 1 ? c < lo || c > hi : c < 0x80 || c > 0xbf) return i
    }
    i += n + 1
  }
  return -1
}

export function decodeMeshBytes(bytes: Uint8Array, file: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch (err) {
    const at = Math.max(0, firstBadUtf8(bytes))
    let line = 1
    let lineStart = 0
    for (let i = 0; i < at; i++) {
      if (bytes[i] === 10) {
        line++
        lineStart = i + 1
      }
    }
    const byte = (bytes[at] ?? 0).toString(16).padStart(2, '0')
    throw new MeshFileError(
      [
        {
          file,
          entry: 'file',
          key: '',
          line,
          message: `invalid UTF-8: byte 0x${byte} at offset ${at} (line ${line}, byte ${at - lineStart + 1} of the line); a mesh file must be UTF-8 text`,
        },
      ],
      { cause: err },
    )
  }
}
