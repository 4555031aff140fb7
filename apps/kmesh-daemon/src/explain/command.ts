/**
 * `kmesh-daemon explain [--pin-root DIR] [--state-dir DIR] [--json] HOST:PORT`: what the kernel does with a
 * connect to HOST:PORT right now, from the pinned maps (lb-model `explain`), with names from the id table.
 */
import { parseArgs } from 'node:util'
import { explain, type Explanation } from '@kmesh-ts/lb-model'
import { DEFAULTS } from '../options.js'
import { FLAGS } from '../cli-flags.js'
import { readReachableSnapshot } from './snapshot.js'
import { readIdNames } from './names.js'
import { formatExplanation } from './format.js'

/** The daemon's own defaults: explain reads what a daemon started without --pin-root / --state-dir wrote. */
export const EXPLAIN_DEFAULTS = { pinRoot: DEFAULTS.pinRoot, stateDir: DEFAULTS.stateDir }

/**
 * The daemon's variables for the same flags (cli-flags.ts), so that `kubectl exec` into a daemon's pod explains
 * that daemon's pins without repeating its configuration.
 */
const ENV = {
  pinRoot: FLAGS.find((f) => f.name === 'pin-root')!.env!,
  stateDir: FLAGS.find((f) => f.name === 'state-dir')!.env!,
}

export interface ExplainOptions {
  pinRoot: string
  stateDir: string
  json: boolean
  host: string
  port: number
}

export class ExplainUsageError extends Error {}

export const EXPLAIN_HELP = `kmesh-daemon explain — what the kernel does with a connect, read from the pinned maps

Usage:
  kmesh-daemon explain [--pin-root DIR] [--state-dir DIR] [--json] HOST:PORT

Reads the maps pinned under --pin-root (a running daemon's, or ones it left pinned with --keep-pinned) and
prints every outcome of a connect to HOST:PORT (IPv6 as [ADDR]:PORT) with its exact probability: the backend,
a waypoint, untouched, or the errno; and why each other endpoint of the service is not a candidate. Names
come from <state-dir>/ids.json when it is readable.

Options:
  --pin-root DIR   the daemon's pin root (default ${EXPLAIN_DEFAULTS.pinRoot}; env ${ENV.pinRoot}, as the daemon's)
  --state-dir DIR  the daemon's state dir, for names (default ${EXPLAIN_DEFAULTS.stateDir}; env ${ENV.stateDir})
  --json           print the explanation as JSON
  -h, --help       show this help
`

export function parseExplainArgs(
  argv: string[],
  env: Record<string, string | undefined> = process.env,
): ExplainOptions | 'help' {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        'pin-root': { type: 'string' },
        'state-dir': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    })
  } catch (err) {
    throw new ExplainUsageError(`explain: ${(err as Error).message}; see kmesh-daemon explain --help`)
  }
  if (parsed.values.help) return 'help'
  const [target, ...extra] = parsed.positionals
  if (!target || extra.length)
    throw new ExplainUsageError('explain: give exactly one destination HOST:PORT, e.g. 127.10.0.1:80 or [fd00::1]:80')
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target)
  if (!m || Number(m[2]) > 65535)
    throw new ExplainUsageError(`explain: ${target} is not HOST:PORT (IPv6 as [ADDR]:PORT)`)
  return {
    pinRoot: parsed.values['pin-root'] ?? (env[ENV.pinRoot] || EXPLAIN_DEFAULTS.pinRoot),
    stateDir: parsed.values['state-dir'] ?? (env[ENV.stateDir] || EXPLAIN_DEFAULTS.stateDir),
    json: parsed.values.json ?? false,
    host: m[1]!,
    port: Number(m[2]),
  }
}

/** The explanation of the live state (throws BpfError naming the pin when a map cannot be opened). */
export function explainLive(options: Pick<ExplainOptions, 'pinRoot' | 'host' | 'port'>): Explanation {
  return explain(readReachableSnapshot(options.pinRoot, options.host), undefined, {
    address: options.host,
    port: options.port,
  })
}

/** Runs the subcommand; returns the exit code. */
export function runExplain(
  argv: string[],
  out: { write(s: string): unknown } = process.stdout,
  err: { write(s: string): unknown } = process.stderr,
): number {
  let options: ExplainOptions
  try {
    const parsed = parseExplainArgs(argv)
    if (parsed === 'help') {
      out.write(EXPLAIN_HELP)
      return 0
    }
    options = parsed
  } catch (e) {
    if (e instanceof ExplainUsageError) {
      err.write(`kmesh-daemon: ${e.message}\n`)
      return 2
    }
    throw e
  }
  let explanation: Explanation
  try {
    explanation = explainLive(options)
  } catch (e) {
    err.write(
      `kmesh-daemon explain: cannot read the maps under ${options.pinRoot} (${(e as Error).message}); is the daemon running with --pin-root ${options.pinRoot}?\n`,
    )
    return 1
  }
  if (options.json) out.write(`${JSON.stringify(explanation, null, 1)}\n`)
  else {
    // Names only for the ids the text shows: asked for by formatting it once without names.
    const wanted = new Set<number>()
    formatExplanation(explanation, { get: (id) => void wanted.add(id) })
    out.write(formatExplanation(explanation, readIdNames(options.stateDir, wanted)))
  }
  return 0
}
