/**
 * A client that connects to a VIP as fast as it can from inside a cgroup (HTTP GET, the body names the backend),
 * until stopped, then reports every outcome: what tests of "no failed connect while the data path changes" count.
 */
import { spawn } from 'node:child_process'

const LOOP = `
import { request } from 'node:http'
import { createInterface } from 'node:readline'
let stop = false
createInterface({ input: process.stdin }).on('close', () => { stop = true })
const tally = {}
let total = 0
const started = performance.now()
const once = () => new Promise((resolve) => {
  const req = request({ host: process.argv[1], port: 80, agent: false, timeout: 2000 }, (res) => {
    let body = ''
    res.on('data', (d) => (body += d))
    res.on('end', () => resolve(body))
  })
  req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })))
  req.on('error', (e) => resolve('error:' + (e.code ?? e.message)))
  req.end()
})
console.log('started')
while (!stop) {
  const who = await once()
  tally[who] = (tally[who] ?? 0) + 1
  total++
}
const seconds = (performance.now() - started) / 1000
console.log(JSON.stringify({ total, seconds, perSecond: total / seconds, tally }))
`

export interface LoopSummary {
  total: number
  seconds: number
  perSecond: number
  /** response body (the backend's name) or `error:CODE` -> count */
  tally: Record<string, number>
}

export interface ConnectLoop {
  /** Stops the loop and returns what it saw. */
  stop(): Promise<LoopSummary>
}

/** Starts the loop in `cgroupPath` against VIP:80; resolves once it runs. Killed on teardown if still running. */
export async function startConnectLoop(
  t: { teardown(fn: () => unknown): void },
  cgroupPath: string,
  vip: string,
): Promise<ConnectLoop> {
  const loop = spawn('sh', [
    '-c',
    'echo $$ > "$0/cgroup.procs" && exec "$@"',
    cgroupPath,
    process.execPath,
    '--input-type=module',
    '-e',
    LOOP,
    vip,
  ])
  t.teardown(async () => {
    if (loop.exitCode === null) {
      loop.kill()
      await new Promise((resolve) => loop.once('close', resolve))
    }
  })
  let out = ''
  loop.stdout.on('data', (d) => (out += d))
  await new Promise<void>((resolve) => loop.stdout.once('data', () => resolve()))
  return {
    stop: async () => {
      loop.stdin.end()
      await new Promise((resolve) => loop.once('close', resolve))
      return JSON.parse(out.trim().split('\n').pop() as string) as LoopSummary
    },
  }
}
