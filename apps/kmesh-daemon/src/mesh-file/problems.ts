/**
 * Problems found in a mesh file: each names the file, the entry and the key, so an operator can go
 * straight to the line (reference/local-config.md, "Our stance").
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

/** The file is refused. `problems` holds every problem found, not only the first. */
export class MeshFileError extends Error {
  readonly problems: MeshFileProblem[]

  constructor(problems: MeshFileProblem[], options?: ErrorOptions) {
    super(problems.map(formatProblem).join('\n'), options)
    this.name = 'MeshFileError'
    this.problems = problems
  }
}
