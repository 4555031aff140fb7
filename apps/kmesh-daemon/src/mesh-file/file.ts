/**
 * Reading a mesh file's bytes safely: only a regular file (or a symlink to one), never a FIFO that would
 * block the reader, a device that never ends or a directory; and never more than `maxBytes`.
 */
import { constants, type Stats } from 'node:fs'
import { open } from 'node:fs/promises'

import { DEFAULT_MAX_FILE_BYTES, sizeText } from './bounds.js'
import { MeshFileError } from './problems.js'

export interface ReadBytesOptions {
  /** Larger files are refused before they are read. Default DEFAULT_MAX_FILE_BYTES (64 MiB). */
  maxBytes?: number
}

function refuse(path: string, message: string, cause?: unknown): MeshFileError {
  return new MeshFileError([{ file: path, entry: 'file', key: '', message }], cause === undefined ? {} : { cause })
}

/** `ENOENT: no such file or directory`: the code once, without the path (the problem names the file). */
export function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException
  const text = (e.message ?? String(err)).replace(/, \w+ '.*'$/s, '')
  if (e.code === undefined || text.startsWith(`${e.code}:`)) return text
  return `${e.code}: ${text}`
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO'
  if (st.isSocket()) return 'a socket'
  if (st.isCharacterDevice()) return 'a character device'
  if (st.isBlockDevice()) return 'a block device'
  if (st.isDirectory()) return 'a directory'
  return 'not a regular file'
}

export async function readMeshBytes(path: string, options: ReadBytesOptions = {}): Promise<Uint8Array> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_FILE_BYTES
  let handle
  try {
    // O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting for one.
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (err) {
    throw refuse(path, `cannot open: ${errnoText(err)}`, err)
  }
  try {
    const st = await handle.stat()
    if (!st.isFile()) {
      const kind = kindOf(st)
      throw refuse(
        path,
        `${kind === 'not a regular file' ? 'it is' : `it is ${kind},`} not a regular file; a mesh file must be one`,
      )
    }
    if (st.size > maxBytes) {
      throw refuse(path, `the file is ${sizeText(st.size)}, over the limit of ${sizeText(maxBytes)} (maxBytes)`)
    }
    // Read to the end, not just st.size: the file may grow while it is read; the limit still holds.
    const chunks: Uint8Array[] = []
    let total = 0
    for (;;) {
      const want = Math.max(64 * 1024, Math.min(st.size - total + 1, maxBytes + 1 - total))
      const buf = new Uint8Array(want)
      const { bytesRead } = await handle.read(buf, 0, want, null)
      if (bytesRead === 0) break
      chunks.push(bytesRead === want ? buf : buf.subarray(0, bytesRead))
      total += bytesRead
      if (total > maxBytes)
        throw refuse(path, `the file grew past the limit of ${sizeText(maxBytes)} (maxBytes) while it was read`)
    }
    if (chunks.length === 1) return chunks[0] as Uint8Array
    const out = new Uint8Array(total)
    let at = 0
    for (const c of chunks) {
      out.set(c, at)
      at += c.length
    }
    return out
  } catch (err) {
    if (err instanceof MeshFileError) throw err
    throw refuse(path, `cannot read: ${errnoText(err)}`, err)
  } finally {
    await handle.close().catch(() => undefined)
  }
}
