/**
 * The admin HTTP endpoint (loopback by default): readiness for probes and a dump of what the daemon holds.
 *   GET /healthz/ready       200 "ready" once the first mesh (file or istiod push) is applied, else 503
 *   GET /debug/config_dump   JSON: mode, readiness, resource counts, map entry counts; in node mode (`node`) the
 *                            informers and each pod's enrolment (rule, reason, netns, enrolled, last error)
 */
import { createServer, type Server } from 'node:http'

export interface AdminSource {
  ready(): boolean
  dump(): Record<string, unknown>
}

export async function startAdmin(address: string, source: AdminSource): Promise<Server & { url: string }> {
  const i = address.lastIndexOf(':')
  const host = address.slice(0, i).replace(/^\[|\]$/g, '')
  const port = Number(address.slice(i + 1))
  if (!host || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--admin-address ${address}: expected HOST:PORT`)
  const server = createServer((req, res) => {
    if (req.url === '/healthz/ready') {
      const ok = source.ready()
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ready\n' : 'not ready\n')
    } else if (req.url === '/debug/config_dump') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(source.dump(), null, 2) + '\n')
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('endpoints: /healthz/ready /debug/config_dump\n')
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`--admin-address ${address}: ${(err as Error).message}`)))
    server.listen(port, host, () => resolve())
  })
  const bound = server.address()
  const url =
    typeof bound === 'object' && bound ? `http://${host.includes(':') ? `[${host}]` : host}:${bound.port}` : ''
  return Object.assign(server, { url })
}
