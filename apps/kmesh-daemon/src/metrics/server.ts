/**
 * The metrics listener (default 127.0.0.1:15020, as ztunnel's and Kmesh's port): the registry in Prometheus text
 * format at ztunnel's paths (`/metrics`, `/stats/prometheus`) and Kmesh's (`/status/metric`), so a scrape config
 * written for either finds it. GET and HEAD only.
 */
import { createServer, type Server } from 'node:http'
import type { Registry } from 'prom-client'
import { parseHostPort } from '../util/host-port.js'

export const METRICS_PATHS = ['/metrics', '/stats/prometheus', '/status/metric'] as const

export async function startMetricsServer(address: string, registry: Registry): Promise<Server & { url: string }> {
  const { host, port } = parseHostPort(address, '--metrics-address')
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!
    if (!(METRICS_PATHS as readonly string[]).includes(path)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found; paths: ${METRICS_PATHS.join(' ')}\n`)
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end(`${req.method} ${path}: use GET\n`)
      return
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? '' : text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics: ${err.message}\n`),
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`--metrics-address ${address}: ${err.message}`)))
    server.listen(port, host, () => resolve())
  })
  const bound = server.address()
  const url =
    typeof bound === 'object' && bound ? `http://${host.includes(':') ? `[${host}]` : host}:${bound.port}` : ''
  return Object.assign(server, { url })
}
