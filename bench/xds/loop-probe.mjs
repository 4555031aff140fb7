/**
 * Probes the daemon's admin endpoint from a worker thread (its own event loop, so the benchmark's main thread,
 * busy encoding a push, cannot delay it): GET /healthz/ready back to back with `gapMs` between, each request's
 * start and latency recorded. A request that takes long means the daemon's event loop was stalled.
 */
import { Worker } from 'node:worker_threads'

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const http = require('node:http')
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
const samples = []
let stop = false
parentPort.on('message', () => { stop = true })
const once = () => new Promise((resolve) => {
  const start = performance.timeOrigin + performance.now()
  const req = http.get(workerData.url + '/healthz/ready', { agent }, (res) => {
    res.resume()
    res.on('end', () => { samples.push([start, performance.timeOrigin + performance.now() - start, true]); resolve() })
  })
  req.on('error', () => { samples.push([start, performance.timeOrigin + performance.now() - start, false]); resolve() })
})
;(async () => {
  while (!stop) {
    await once()
    await new Promise((r) => setTimeout(r, workerData.gapMs))
  }
  agent.destroy()
  parentPort.postMessage(samples)
})()
`

/** Starts probing; `stop()` resolves with [[startEpochMs, latencyMs, answered], ...] (a failed request counts until it failed). */
export function probeAdmin(url, gapMs = 5) {
  const worker = new Worker(WORKER, { eval: true, workerData: { url, gapMs } })
  const done = new Promise((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  return {
    async stop() {
      worker.postMessage('stop')
      const samples = await done
      await worker.terminate()
      return samples
    },
    terminate: () => worker.terminate(),
  }
}
