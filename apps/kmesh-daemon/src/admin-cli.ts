/**
 * `kmesh-daemon dump | log-level | version | accesslog`: kmeshctl's everyday commands, over a running daemon's admin
 * endpoint (the same paths, so what the CLI prints is what the endpoint serves). The address is --admin-address,
 * else the daemon's KMESH_ADMIN_ADDRESS (so `kubectl exec` into the daemon's pod needs no flag), else the default.
 */
import { parseArgs } from 'node:util'
import { FLAGS } from './cli-flags.js'
import { DEFAULTS } from './options.js'
import { version } from './version.js'

const ADMIN_ENV = FLAGS.find((f) => f.name === 'admin-address')!.env!

export const ADMIN_COMMANDS = ['dump', 'log-level', 'version', 'accesslog'] as const
export type AdminCommand = (typeof ADMIN_COMMANDS)[number]

export function isAdminCommand(word: string | undefined): word is AdminCommand {
  return (ADMIN_COMMANDS as readonly string[]).includes(word ?? '')
}

export const ADMIN_CLI_HELP = `kmesh-daemon dump | log-level | version | accesslog — ask a running daemon's admin endpoint

Usage:
  kmesh-daemon dump [--only summary|workloads|services|policies|ids] [--limit N] [--offset N]
  kmesh-daemon dump --bpf [--pin-root DIR] [--limit N]   every pinned map, decoded (another pin root: e.g. Kmesh's)
  kmesh-daemon log-level                 print every logger's level
  kmesh-daemon log-level LEVEL           set the level (trace, debug, info, warn, error, silent)
  kmesh-daemon log-level LOGGER:LEVEL,…  set named loggers' levels (e.g. authz:debug)
  kmesh-daemon version                   this binary's version and the running daemon's
  kmesh-daemon accesslog [off|text|json] print or switch the access log

Options:
  --admin-address H:P   the daemon's admin endpoint (default $${ADMIN_ENV}, else ${DEFAULTS.adminAddress})
  -h, --help            show this help
`

type Out = { write(s: string): unknown }

export async function runAdminCommand(
  command: AdminCommand,
  argv: string[],
  out: Out = process.stdout,
  err: Out = process.stderr,
  env: Record<string, string | undefined> = process.env,
): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        'admin-address': { type: 'string' },
        only: { type: 'string' },
        limit: { type: 'string' },
        offset: { type: 'string' },
        bpf: { type: 'boolean' },
        'pin-root': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    })
  } catch (e) {
    err.write(`kmesh-daemon ${command}: ${(e as Error).message}; see kmesh-daemon ${command} --help\n`)
    return 2
  }
  const v = parsed.values
  if (v.help) {
    out.write(ADMIN_CLI_HELP)
    return 0
  }
  const address = v['admin-address'] ?? (env[ADMIN_ENV] || DEFAULTS.adminAddress)
  const base = `http://${address}`
  const call = async (path: string, method = 'GET'): Promise<Response> => {
    try {
      return await fetch(base + path, { method })
    } catch (e) {
      throw new AdminUnreachable(
        `cannot reach the admin endpoint at ${address} (${((e as Error).cause as Error)?.message ?? (e as Error).message}); is the daemon running, with --admin-address ${address}?`,
      )
    }
  }
  const print = async (res: Response): Promise<number> => {
    const text = await res.text()
    if (!res.ok) {
      err.write(`kmesh-daemon ${command}: ${res.status} ${text}`)
      return 1
    }
    out.write(text.endsWith('\n') ? text : `${text}\n`)
    return 0
  }
  const positional = parsed.positionals
  try {
    switch (command) {
      case 'dump': {
        const q = new URLSearchParams()
        if (v.bpf) {
          if (v['pin-root']) q.set('pinRoot', v['pin-root'])
          if (v.limit) q.set('limit', v.limit)
          return await print(await call(`/debug/bpf${q.size ? `?${q}` : ''}`))
        }
        for (const k of ['only', 'limit', 'offset'] as const) if (v[k]) q.set(k, v[k]!)
        return await print(await call(`/config_dump${q.size ? `?${q}` : ''}`))
      }
      case 'log-level':
        if (positional.length > 1) throw new UsageProblem('give one LEVEL or LOGGER:LEVEL,… list')
        if (positional.length === 0) return await print(await call('/logging'))
        return await print(await call(`/logging?level=${encodeURIComponent(positional[0]!)}`, 'POST'))
      case 'accesslog':
        if (positional.length > 1) throw new UsageProblem('give one of off, text, json')
        if (positional.length === 0) return await print(await call('/accesslog'))
        return await print(await call(`/accesslog?format=${encodeURIComponent(positional[0]!)}`, 'POST'))
      case 'version': {
        out.write(`client: ${version()}\n`)
        let res: Response
        try {
          res = await call('/version')
        } catch (e) {
          out.write(`daemon: unreachable (${(e as Error).message})\n`)
          return 1
        }
        const d = (await res.json()) as { name?: string; version?: string; node?: string; startedAt?: string }
        out.write(`daemon: ${d.name} ${d.version} (node ${d.node}, pid started ${d.startedAt}) at ${address}\n`)
        return 0
      }
    }
  } catch (e) {
    if (e instanceof UsageProblem) {
      err.write(`kmesh-daemon ${command}: ${e.message}; see kmesh-daemon ${command} --help\n`)
      return 2
    }
    if (e instanceof AdminUnreachable) {
      err.write(`kmesh-daemon ${command}: ${e.message}\n`)
      return 1
    }
    throw e
  }
  return 2
}

class UsageProblem extends Error {}
class AdminUnreachable extends Error {}
