/** Child processes of the benchmark: long-running ones that print a ready line, and one-shot client runs. */
import { spawn } from 'node:child_process'

/**
 * Spawns a long-running process; `ready` resolves once its output matches `ready` (or at spawn when `ready`
 * is null); `stop()` sends SIGTERM (SIGKILL after 3 s) and waits for it to exit.
 */
export function startProcess(label, argv, ready, timeoutMs = 20000) {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  let exited = false
  const gone = new Promise((resolve) =>
    child.on('close', () => {
      exited = true
      resolve()
    }),
  )
  const up = new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${label} did not print ${ready} within ${timeoutMs} ms:\n${output}`)),
      timeoutMs,
    )
    const onData = (d) => {
      output += d
      if (ready?.test(output)) {
        clearTimeout(timer)
        resolve()
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    if (ready === null)
      child.on('spawn', () => {
        clearTimeout(timer)
        resolve()
      })
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`${label}: ${err.message}`))
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      reject(new Error(`${label} exited (${code}) before it was ready:\n${output}`))
    })
  })
  return {
    label,
    ready: up,
    output: () => output,
    async stop() {
      if (exited) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
      await gone
      clearTimeout(timer)
    },
  }
}

/** Runs a command to completion; resolves with stdout, rejects with stderr and the exit code. */
export function run(argv, input) {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('error', reject)
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${argv.join(' ').slice(0, 200)} exited ${code}: ${err.trim()}`)),
    )
    if (input !== undefined) child.stdin.end(input)
  })
}

/** The argv prefix that runs a command inside `place` (a cgroup v2 directory and/or a network namespace). */
export function placed(place, argv) {
  const inNetns = place.netns ? ['nsenter', `--net=${place.netns}`, ...argv] : argv
  return place.cgroup ? ['sh', '-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', place.cgroup, ...inNetns] : inNetns
}

/** One client run: `iterations` timed connect+request/response operations; parses the client's summary line. */
export async function measure(clientBin, place, ip, port, iterations, warmup) {
  const out = await run(placed(place, [clientBin, ip, String(port), String(iterations), String(warmup)]))
  const fields = Object.fromEntries(
    out
      .trim()
      .split(/\s+/)
      .map((kv) => kv.split('='))
      .map(([k, v]) => [k, Number(v)]),
  )
  if (!(fields.mean_ns > 0)) throw new Error(`client printed no result: ${out}`)
  return { meanNs: fields.mean_ns, p50Ns: fields.p50_ns, p99Ns: fields.p99_ns }
}

/** Retries a one-connection client run until it succeeds (a listener that has just started), or throws. */
export async function waitReachable(clientBin, place, ip, port, timeoutMs = 10000) {
  const until = Date.now() + timeoutMs
  for (;;) {
    try {
      return await measure(clientBin, place, ip, port, 1, 0)
    } catch (err) {
      if (Date.now() > until)
        throw new Error(`${ip}:${port} not reachable from ${place.cgroup ?? place.netns ?? 'the host'}: ${err.message}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}
