/**
 * Problems found in a mesh file: each names the file, the entry and the key, so an operator can go
 * straight to the line (docs/reference/local-config.md, "Our stance").
 */

export interface MeshFileProblem {
  /** The path (or label) the text was read from. */
  file: string
  /** The entry, e.g. `workloads[2] (uid cluster1//v1/Pod/default/echo)`; `top level` for the document itself. */
  entry: string
  /** Dotted path inside the entry, e.g. `loadBalancer.mode`; `""` when the entry as a whole is meant. */
  key: string
  message: string
  /** 1-based line in the file, when known. */
  line?: number
}

/** `file:line: entry: key: message` (parts that are empty are left out). */
export function formatProblem(p: MeshFileProblem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}`
  const parts = [where, p.entry]
  if (p.key !== '') parts.push(p.key)
  parts.push(p.message)
  return parts.join(': ')
}

export interface MeshFileErrorOptions extends ErrorOptions {
  /** Problems found in all; defaults to `problems.length`. */
  total?: number
  /** Reading stopped early (too many problems in a large file), so `total` is a lower bound. */
  totalIsLowerBound?: boolean
}

/**
 * The file is refused. `problems` holds the problems found, in file order, up to the first 1,000
 * (MAX_PROBLEMS); `total` counts every problem found, kept or not, so `total > problems.length` means
 * some were left out. When `totalIsLowerBound` is set, reading stopped before the end of the file
 * (a large file past the cap) and more problems may follow.
 */
export class MeshFileError extends Error {
  readonly problems: MeshFileProblem[]
  readonly total: number
  readonly totalIsLowerBound: boolean

  constructor(problems: MeshFileProblem[], options: MeshFileErrorOptions = {}) {
    const { total = problems.length, totalIsLowerBound = false, ...errorOptions } = options
    const lines = problems.map(formatProblem)
    if (total > problems.length || totalIsLowerBound) {
      const file = problems[0]?.file ?? 'mesh file'
      const more = totalIsLowerBound ? `at least ${total}` : `${total}`
      lines.push(
        `${file}: ${more} problems in all, the first ${problems.length} listed` +
          (totalIsLowerBound ? ' (reading stopped early; fix these and read again)' : ''),
      )
    }
    super(lines.join('\n'), errorOptions)
    this.name = 'MeshFileError'
    this.problems = problems
    this.total = total
    this.totalIsLowerBound = totalIsLowerBound
  }
}
