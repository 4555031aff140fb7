/**
 * The local mesh file: ztunnel's local config (`LOCAL_XDS_PATH`), read with the same meaning ztunnel
 * gives it, and stricter where ztunnel silently ignores or misreads (docs/reference/local-config.md).
 */
import type { MeshFileResult } from './entries.js'
import { readMeshBytes, type ReadBytesOptions } from './file.js'
import { parseMeshText } from './parse.js'

export { MeshFileError, formatProblem, type MeshFileErrorOptions, type MeshFileProblem } from './problems.js'
export {
  DEFAULT_MAX_FILE_BYTES,
  MAX_NAME_LENGTH,
  MAX_NESTING,
  MAX_PROBLEMS,
  MAX_SCALAR_LENGTH,
  MAX_WHOLE_PARSE_BYTES,
} from './bounds.js'
export type { MeshFileResult } from './entries.js'
export type { ReadBytesOptions as ReadMeshFileOptions } from './file.js'
export { ItemMemo, MAX_REPARSED_ITEMS } from './item-memo.js'
export { decodeMeshBytes } from './decode.js'
export { readMeshBytes } from './file.js'
export {
  readMeshFileIsolated,
  parseMeshBytesIsolated,
  INLINE_PARSE_BELOW_BYTES,
  DEFAULT_PARSE_TIMEOUT_MS,
  DEFAULT_PARSE_HEAP_MB,
  type IsolatedReadOptions,
} from './isolated.js'

/**
 * Parses a mesh file's text, or its bytes (which must be UTF-8). Throws a {@link MeshFileError} listing
 * the problems (the first 1,000; `total` counts all); a file with problems yields no config at all, so
 * the caller keeps its previous good state.
 */
export function parseMeshFile(text: string | Uint8Array, file: string): MeshFileResult {
  const { result, error } = parseMeshText(text, file)
  if (error) throw error
  return result as MeshFileResult
}

/**
 * Reads and parses a mesh file on the calling thread. Only a regular file is read (a FIFO, device or
 * directory is refused by name), and not one over `maxBytes` (default 64 MiB). A file that cannot be
 * read is a {@link MeshFileError} too (errno in the message). For the daemon, prefer
 * {@link readMeshFileIsolated}, which keeps the parse off the event loop.
 */
export async function readMeshFile(path: string, options: ReadBytesOptions = {}): Promise<MeshFileResult> {
  return parseMeshFile(await readMeshBytes(path, options), path)
}
