/**
 * The live page (`/ui`): the node's services → the outcomes the kernel gives a connect to each service port (the
 * endpoints by priority, each backend's probability, from the pinned maps through lb-model's explain, so the page
 * cannot disagree with the kernel) → the backends, with live connection and byte counters from the telemetry
 * records; the last refusals (mesh file, xDS NACK, authorization); and an explain box for any VIP:port.
 * One HTML document with inline script and style, no framework and no external asset; it polls `/ui/state`.
 *   GET /ui            the page
 *   GET /ui/state      the page's data (JSON; at most UI_MAX_SERVICES services)
 *   GET /ui/explain?target=HOST:PORT   explain's table and JSON for one destination
 */
import { explain, type Explanation } from '@kmesh-ts/lb-model'
import { readReachableSnapshot } from '../explain/snapshot.js'
import { formatExplanation } from '../explain/format.js'
import type { Service } from '../model/index.js'
import type { Totals } from '../metrics/totals.js'
import { version } from '../version.js'
import { type DaemonView, isReady, notReadyReason } from './daemon-source.js'
import { HttpError, type Route, sendJson } from './server.js'
import { UI_PAGE } from './ui-page.js'

/** Services shown on the page (the rest are counted: the page is for a person, the dump for everything). */
export const UI_MAX_SERVICES = 200

function idNames(v: DaemonView): Map<number, string> {
  const out = new Map<number, string>()
  for (const [name, id] of v.ids?.entries() ?? []) out.set(id, name.replace(/^(svc|wl):/, ''))
  return out
}

function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`
}

function explainOf(v: DaemonView, host: string, port: number): Explanation {
  return explain(readReachableSnapshot(v.pinRoot, host), undefined, { address: host, port })
}

const ZERO: Totals = { opened: 0, closed: 0, active: 0, bytesSent: 0, bytesReceived: 0 }

function serviceState(v: DaemonView, s: Service, names: Map<number, string>) {
  const key = `${s.namespace}/${s.hostname}`
  const totals = v.observability?.totals
  const vip = s.vips[0]?.ip
  const ports = Object.entries(s.ports).map(([sp, tp]) => ({ port: Number(sp), targetPort: tp }))
  const paths = vip
    ? ports.map(({ port }) => {
        let e: Explanation | undefined
        let error: string | undefined
        try {
          e = explainOf(v, vip, port)
        } catch (err) {
          error = (err as Error).message
        }
        return {
          target: hostPort(vip, port),
          error,
          counts: e?.counts,
          outcomes: (e?.outcomes ?? []).map((o) => {
            const addr = o.address !== undefined && o.port !== undefined ? hostPort(o.address, o.port) : undefined
            return {
              kind: o.kind,
              probability: o.probability,
              priority: o.priority,
              address: addr,
              backend: o.backendUid === undefined ? undefined : (names.get(o.backendUid) ?? String(o.backendUid)),
              viaWaypoint: o.viaWaypoint,
              reason: o.reason ?? o.errno,
              conn: addr ? (totals?.backends.get(addr) ?? ZERO) : undefined,
            }
          }),
        }
      })
    : []
  return {
    key,
    name: s.name,
    namespace: s.namespace,
    hostname: s.hostname,
    vips: s.vips.map((x) => x.ip),
    ports,
    mode: s.loadBalancer?.mode ?? 'Standard',
    conn: totals?.services.get(key) ?? ZERO,
    paths,
  }
}

export function uiState(v: DaemonView): Record<string, unknown> {
  const names = idNames(v)
  const services = [...(v.processor?.held.services.values() ?? [])]
  services.sort((a, b) => `${a.namespace}/${a.hostname}`.localeCompare(`${b.namespace}/${b.hostname}`))
  const authz = v.authz?.status()
  return {
    version: version(),
    mode: v.mode,
    node: v.nodeName ?? null,
    ready: isReady(v),
    notReady: isReady(v) ? undefined : notReadyReason(v),
    at: new Date().toISOString(),
    workloads: v.processor?.held.workloads.size ?? 0,
    servicesTotal: services.length,
    services: services.slice(0, UI_MAX_SERVICES).map((s) => serviceState(v, s, names)),
    refusals: {
      meshFile: meshFileRefusal(v),
      xdsNack: v.xds?.status.lastNack,
      authz: authz?.lastRefusal,
    },
    telemetry: v.telemetry?.stats(),
    accessLog: v.observability?.accessLog.mode,
  }
}

/** The last refused mesh file, its reason followed by the first problems (file:line, entry, key, message). */
function meshFileRefusal(v: DaemonView): { at: string; reason: string } | undefined {
  const r = v.source?.mesh?.status().lastRefusal
  if (!r) return undefined
  const shown = r.problems.slice(0, 3).map((p) => {
    const where = `${p.file}${p.line ? `:${p.line}` : ''} ${p.entry}${p.key ? ` ${p.key}` : ''}`
    return `${where}: ${p.message}`
  })
  const more = r.total > shown.length ? ` (and ${r.total - shown.length} more)` : ''
  return { at: r.at, reason: `${r.reason}${shown.length ? ` — ${shown.join('; ')}${more}` : ''}` }
}

export function uiRoutes(v: DaemonView): Route[] {
  return [
    {
      path: '/ui',
      methods: {
        GET: (_req, res) => {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(UI_PAGE)
        },
      },
    },
    { path: '/ui/state', methods: { GET: (_req, res) => sendJson(res, uiState(v)) } },
    {
      path: '/ui/explain',
      methods: {
        GET: (_req, res, url) => {
          const target = url.searchParams.get('target') ?? ''
          const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target.trim())
          if (!m || Number(m[2]) > 65535)
            throw new HttpError(400, `${target || '(empty)'} is not HOST:PORT (IPv6 as [ADDR]:PORT)`)
          let e: Explanation
          try {
            e = explainOf(v, m[1]!, Number(m[2]))
          } catch (err) {
            throw new HttpError(400, `cannot read the maps under ${v.pinRoot}: ${(err as Error).message}`)
          }
          sendJson(res, { text: formatExplanation(e, idNames(v)), explanation: e })
        },
      },
    },
  ]
}
