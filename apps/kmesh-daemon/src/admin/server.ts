/**
 * The admin HTTP endpoint (127.0.0.1:15200 by default; ztunnel's and Kmesh's paths where they have one):
 *   GET  /healthz/ready, /debug/ready  200 "ready" once the first mesh is applied, else 503 with the reason
 *   GET  /config_dump, /debug/config_dump   mode, readiness, enrolment, maps, mesh file (last refusal), xDS (last
 *                                      NACK), authz, IPsec, telemetry; workloads, services, policies, ids paginated
 *   GET  /debug/bpf[?pinRoot=DIR]      every pinned map decoded (another pin root: e.g. a Kmesh node's maps)
 *   GET  /version
 *   GET|POST /logging[?level=]         ztunnel's form: `level=debug`, or per logger `level=authz:debug,ipsec:warn`
 *   GET|POST /debug/loggers            Kmesh's: GET names (or ?name= → {name, level}); POST {"name","level"}
 *   GET|POST /accesslog                GET the mode; POST ?format=off|text|json, or Kmesh's ?enable=true|false
 *   GET  /debug/pprof/profile?seconds=N  CPU profile (.cpuprofile); /debug/pprof/heap?seconds=N sampling heap
 *                                      profile, ?snapshot=1 a full heap snapshot
 *   GET  /ui, /ui/state, /ui/explain   the live page (ui.ts)
 * A known path with another method is 405 (with Allow); an unknown path is 404 listing the paths.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Logger } from '../log.js'
import { DEFAULT_LOGGER, isSettableLevel, logLevels, loggerNames, setLogLevel, SETTABLE_LEVELS } from '../log.js'
import type { AccessLog } from '../metrics/access-log.js'
import { parseHostPort } from '../util/host-port.js'
import { dumpPinnedMaps } from './bpf-dump.js'
import { configDump, QueryError, type DumpList } from './config-dump.js'
import { cpuProfile, heapSamplingProfile, heapSnapshot, ProfileBusyError } from './profile.js'

export interface AdminSource {
  ready(): boolean
  /** Why the daemon is not ready (the body of the 503). */
  notReadyReason?(): string
  /** The config dump's summary sections. */
  dump(): Record<string, unknown>
  /** The config dump's lists, paginated by the endpoint. */
  lists?(): Record<string, DumpList>
  version?(): Record<string, unknown>
  /** The daemon's root logger: /logging and /debug/loggers change its levels. */
  log?: Logger | undefined
  accessLog?: AccessLog | undefined
  /** The daemon's pin root: /debug/bpf reads it unless asked for another. */
  pinRoot?: string | undefined
  /** More routes (the live page). */
  routes?: Route[] | undefined
}

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>
export interface Route {
  path: string
  methods: Partial<Record<'GET' | 'POST', Handler>>
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

/** JSON with bigint counters as numbers when exact, else strings. */
export function sendJson(res: ServerResponse, value: unknown, status = 200): void {
  const text = JSON.stringify(
    value,
    (_k, v) => (typeof v === 'bigint' ? (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString()) : v),
    1,
  )
  res.writeHead(status, { 'content-type': 'application/json' }).end(`${text}\n`)
}

export function sendText(res: ServerResponse, text: string, status = 200): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(text.endsWith('\n') ? text : `${text}\n`)
}

async function readBody(req: IncomingMessage, max = 64 * 1024): Promise<string> {
  let size = 0
  const parts: Buffer[] = []
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > max) throw new HttpError(413, `request body over ${max} bytes`)
    parts.push(chunk as Buffer)
  }
  return Buffer.concat(parts).toString('utf8')
}

function seconds(url: URL, dflt: number): number {
  const v = url.searchParams.get('seconds')
  const n = v === null ? dflt : Number(v)
  if (!Number.isFinite(n) || n <= 0 || n > 300) throw new HttpError(400, `?seconds=${v}: expected 0 < seconds <= 300`)
  return n
}

function routesFor(source: AdminSource): Route[] {
  const ready: Handler = (_req, res) => {
    if (source.ready()) return sendText(res, 'ready')
    sendText(res, `not ready: ${source.notReadyReason?.() ?? 'the first mesh is not applied yet'}`, 503)
  }
  const dump: Handler = (_req, res, url) =>
    sendJson(res, configDump(source.dump(), source.lists?.() ?? {}, url.searchParams))
  const log = (): Logger => {
    if (!source.log) throw new HttpError(404, 'this daemon was given no logger to control')
    return source.log
  }
  const logging: Handler = (req, res, url) => {
    const spec = url.searchParams.get('level')
    if (req.method === 'POST') {
      if (!spec)
        throw new HttpError(
          400,
          `POST /logging needs ?level=LEVEL or ?level=LOGGER:LEVEL,… (levels: ${SETTABLE_LEVELS.join(', ')})`,
        )
      const changes = spec.split(',').map((part) => {
        const m = /^(?:([\w.-]+)[:=])?(\w+)$/.exec(part.trim())
        if (!m) throw new HttpError(400, `?level=${spec}: ${part} is not LEVEL or LOGGER:LEVEL`)
        return { name: m[1] ?? DEFAULT_LOGGER, level: m[2]!.toLowerCase() }
      })
      for (const c of changes) {
        if (!isSettableLevel(c.level))
          throw new HttpError(400, `log level ${c.level}: expected one of ${SETTABLE_LEVELS.join(', ')}`)
        if (!loggerNames(log()).includes(c.name))
          throw new HttpError(400, `logger ${c.name}: not found; loggers: ${loggerNames(log()).join(', ')}`)
      }
      for (const c of changes) setLogLevel(log(), c.level, c.name)
      log().info({ levels: logLevels(log()) }, 'log levels changed through the admin endpoint')
    }
    const levels = logLevels(log())
    sendText(
      res,
      `current log levels: ${Object.entries(levels)
        .map(([k, v]) => `${k}=${v}`)
        .join(',')}`,
    )
  }
  const loggers: Handler = async (req, res, url) => {
    if (req.method === 'GET') {
      const name = url.searchParams.get('name')
      if (!name) return sendJson(res, loggerNames(log()))
      const level = logLevels(log())[name]
      if (!level) throw new HttpError(400, `logger ${name}: not found; loggers: ${loggerNames(log()).join(', ')}`)
      return sendJson(res, { name, level })
    }
    let body: { name?: unknown; level?: unknown }
    try {
      body = JSON.parse(await readBody(req)) as typeof body
    } catch (err) {
      if (err instanceof HttpError) throw err
      throw new HttpError(400, `invalid request body: expected JSON {"name": LOGGER, "level": LEVEL}`)
    }
    const level = String(body.level ?? '').toLowerCase()
    const name = typeof body.name === 'string' && body.name ? body.name : DEFAULT_LOGGER
    try {
      setLogLevel(log(), level, name)
    } catch (err) {
      throw new HttpError(400, (err as Error).message)
    }
    log().info({ logger: name, level }, 'log level changed through the admin endpoint')
    sendText(res, 'OK')
  }
  const accesslog: Handler = (req, res, url) => {
    const a = source.accessLog
    if (!a) throw new HttpError(404, 'no access log in this daemon')
    if (req.method === 'POST') {
      const format = url.searchParams.get('format')
      const enable = url.searchParams.get('enable')
      let mode: string
      if (format !== null) mode = format
      else if (enable === 'true' || enable === '1') mode = a.mode === 'off' ? 'text' : a.mode
      else if (enable === 'false' || enable === '0') mode = 'off'
      else throw new HttpError(400, `POST /accesslog needs ?format=off|text|json or ?enable=true|false`)
      try {
        a.setMode(mode)
      } catch (err) {
        throw new HttpError(400, (err as Error).message)
      }
      source.log?.info({ accessLog: a.mode }, 'access log switched through the admin endpoint')
    }
    sendJson(res, { mode: a.mode, lines: a.lines })
  }
  const bpf: Handler = (_req, res, url) => {
    const pinRoot = url.searchParams.get('pinRoot') ?? source.pinRoot
    if (!pinRoot) throw new HttpError(400, 'no pin root: give ?pinRoot=DIR')
    const limit = Number(url.searchParams.get('limit') ?? 1000)
    if (!Number.isInteger(limit) || limit < 0 || limit > 1_000_000)
      throw new HttpError(400, `?limit=${url.searchParams.get('limit')}: expected an integer 0..1000000`)
    try {
      sendJson(res, dumpPinnedMaps(pinRoot, limit))
    } catch (err) {
      throw new HttpError(400, `pin root ${pinRoot}: ${(err as Error).message}`)
    }
  }
  const profile: Handler = async (_req, res, url) => {
    const p = await cpuProfile(seconds(url, 10))
    res.setHeader('content-disposition', 'attachment; filename="kmesh-daemon.cpuprofile"')
    sendJson(res, p)
  }
  const heap: Handler = async (_req, res, url) => {
    if (url.searchParams.get('snapshot') === '1') {
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-disposition': 'attachment; filename="kmesh-daemon.heapsnapshot"',
      })
      await heapSnapshot((chunk) => res.write(chunk))
      res.end()
      return
    }
    const p = await heapSamplingProfile(seconds(url, 10))
    res.setHeader('content-disposition', 'attachment; filename="kmesh-daemon.heapprofile"')
    sendJson(res, p)
  }
  return [
    { path: '/healthz/ready', methods: { GET: ready } },
    { path: '/debug/ready', methods: { GET: ready } },
    { path: '/config_dump', methods: { GET: dump } },
    { path: '/debug/config_dump', methods: { GET: dump } },
    { path: '/debug/bpf', methods: { GET: bpf } },
    { path: '/version', methods: { GET: (_q, res) => sendJson(res, source.version?.() ?? {}) } },
    { path: '/logging', methods: { GET: logging, POST: logging } },
    { path: '/debug/loggers', methods: { GET: loggers, POST: loggers } },
    { path: '/accesslog', methods: { GET: accesslog, POST: accesslog } },
    { path: '/debug/pprof/profile', methods: { GET: profile } },
    { path: '/debug/pprof/heap', methods: { GET: heap } },
    ...(source.routes ?? []),
  ]
}

export async function startAdmin(address: string, source: AdminSource): Promise<Server & { url: string }> {
  const { host, port } = parseHostPort(address, '--admin-address')
  const routes = new Map(routesFor(source).map((r) => [r.path, r]))
  const paths = [...routes.keys()].join(' ')
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin')
    const route = routes.get(url.pathname)
    if (!route) return sendText(res, `not found: ${url.pathname}; paths: ${paths}`, 404)
    const handler =
      route.methods[req.method as 'GET' | 'POST'] ?? (req.method === 'HEAD' ? route.methods.GET : undefined)
    if (!handler) {
      const allow = Object.keys(route.methods).join(', ')
      res.setHeader('allow', allow)
      return sendText(res, `${req.method} ${url.pathname}: method not allowed; use ${allow}`, 405)
    }
    Promise.resolve()
      .then(() => handler(req, res, url))
      .catch((err: Error) => {
        const status =
          err instanceof HttpError
            ? err.status
            : err instanceof QueryError
              ? 400
              : err instanceof ProfileBusyError
                ? 409
                : 500
        if (res.headersSent) return void res.end()
        sendText(res, `${req.method} ${url.pathname}: ${err.message}`, status)
      })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`--admin-address ${address}: ${err.message}`)))
    server.listen(port, host, () => resolve())
  })
  const bound = server.address()
  const url =
    typeof bound === 'object' && bound ? `http://${host.includes(':') ? `[${host}]` : host}:${bound.port}` : ''
  return Object.assign(server, { url })
}
