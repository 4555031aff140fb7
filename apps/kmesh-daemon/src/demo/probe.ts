/**
 * Makes `count` HTTP requests (each on a new connection) to each target and tallies who answered (the response
 * body) or the error code of each failure. Run inside a managed cgroup through probe-client.js.
 */
import { request } from 'node:http'

export interface ProbeTarget {
  host: string
  port: number
  family?: 4 | 6
}
export type ProbeResult = Record<string, Record<string, number>>

function once(target: ProbeTarget): Promise<string> {
  return new Promise((resolve) => {
    const req = request(
      { host: target.host, port: target.port, family: target.family, agent: false, timeout: 2000 },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (body += d))
        res.on('end', () => resolve(body || `HTTP ${res.statusCode}`))
      },
    )
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })))
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message))
    req.end()
  })
}

export async function probe(targets: ProbeTarget[], count: number): Promise<ProbeResult> {
  const out: ProbeResult = {}
  for (const t of targets) {
    const key = `${t.host}:${t.port}`
    const tally: Record<string, number> = (out[key] = {})
    for (let i = 0; i < count; i++) {
      const who = await once(t)
      tally[who] = (tally[who] ?? 0) + 1
    }
  }
  return out
}
