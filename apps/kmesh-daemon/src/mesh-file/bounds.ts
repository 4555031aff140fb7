/**
 * Bounds on what a mesh file may cost to read. The file may be written carelessly or by a broken
 * generator; these keep one bad file from taking the daemon's time or memory, and each refusal names
 * the bound it hit.
 */

const KiB = 1024
const MiB = 1024 * KiB

/** Errors kept in a MeshFileError (and warnings in a result); the rest are only counted. */
export const MAX_PROBLEMS = 1000

/**
 * Once MAX_PROBLEMS errors are found, reading goes on (only counting) up to this offset, so `total` is
 * exact for files up to this size; past it, reading stops and `total` is a lower bound.
 */
export const COUNT_THROUGH_BYTES = 2 * MiB

/** Nesting of YAML collections; the yaml package recurses per level and overflows the stack near 1,000. */
export const MAX_NESTING = 64

/** Any scalar (key or value). */
export const MAX_SCALAR_LENGTH = 64 * KiB

/** Names, namespaces and hostnames: a Kubernetes DNS subdomain is at most 253 characters. */
export const MAX_NAME_LENGTH = 253

/**
 * Files not in the block layout that can be read entry by entry (see blocks.ts) are composed whole, at
 * roughly 75 bytes of heap per byte of text; above this size that is refused.
 */
export const MAX_WHOLE_PARSE_BYTES = 2 * MiB

/** Default for `readMeshFile(path, { maxBytes })`: larger files are refused before they are read. */
export const DEFAULT_MAX_FILE_BYTES = 64 * MiB

/** `2.0 MiB`, `64 KiB`, `512 bytes`: for messages. */
export function sizeText(n: number): string {
  if (n >= MiB) return `${Number.isInteger(n / MiB) ? n / MiB : (n / MiB).toFixed(1)} MiB`
  if (n >= KiB) return `${Number.isInteger(n / KiB) ? n / KiB : (n / KiB).toFixed(1)} KiB`
  return `${n} bytes`
}
