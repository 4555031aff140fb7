/**
 * The daemon as a child process (the real CLI), with its log lines forwarded and a way to wait for the next
 * "mesh applied" or "mesh file refused" line: what the demo, the benchmarks and the CLI tests drive.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const BIN = fileURLToPath(new URL('../../bin/kmesh-daemon.js', import.meta.url))

export interface DaemonProcess {
  child: ChildProcess
  /** Resolves with the next log line matching one of the patterns (rejects if the daemon exits first). */
  next(pattern: RegExp, timeoutMs?: number): Promise<string>
  /** SIGTERM, then resolves with the exit code. */
  stop(): Promise<number | null>
  /** Resolves with the exit code when the process exits by itself. */
  exited(): Promise<number | null>
  output(): string
}

export function spawnDaemon(
  args: string[],
  onLine?: (line: string) => void,
  env?: Record<string, string>,
): DaemonProcess {
  // An ephemeral admin port unless the caller chose one, so daemons started side by side never collide.
  const admin = args.includes('--admin-address') || args.includes('--help') ? [] : ['--admin-address', '127.0.0.1:0']
  // The daemon runs from dist/: loaders a test runner puts into NODE_OPTIONS (tap re-adds them to every child it
  // sees spawned) would slow its start and more than double its memory. env(1) drops them just before exec.
  // KMESH_DAEMON_NODE_ARGS: node flags for the daemon only (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` in a bench).
  const nodeArgs = process.env.KMESH_DAEMON_NODE_ARGS?.split(' ').filter(Boolean) ?? []
  const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, ...nodeArgs, BIN, ...args, ...admin], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  })
  const lines: string[] = []
  let waiters: { pattern: RegExp; resolve: (l: string) => void; reject: (e: Error) => void }[] = []
  let exited: number | null | undefined
  let partial = ''
  const onData = (d: Buffer): void => {
    partial += d.toString('utf8')
    let nl
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl)
      partial = partial.slice(nl + 1)
      lines.push(line)
      onLine?.(line)
      const hit = waiters.filter((w) => w.pattern.test(line))
      waiters = waiters.filter((w) => !hit.includes(w))
      for (const w of hit) w.resolve(line)
    }
  }
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  const exit = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      exited = code
      for (const w of waiters)
        w.reject(new Error(`kmesh-daemon exited (${code}) before logging ${w.pattern}:\n${lines.join('\n')}`))
      waiters = []
      resolve(code)
    }),
  )
  return {
    child,
    next(pattern, timeoutMs = 30000) {
      if (exited !== undefined)
        return Promise.reject(new Error(`kmesh-daemon already exited (${exited}):\n${lines.join('\n')}`))
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no log line matching ${pattern} within ${timeoutMs} ms:\n${lines.join('\n')}`)),
          timeoutMs,
        )
        waiters.push({
          pattern,
          resolve: (l) => {
            clearTimeout(timer)
            resolve(l)
          },
          reject: (e) => {
            clearTimeout(timer)
            reject(e)
          },
        })
      })
    },
    async stop() {
      if (exited === undefined) child.kill('SIGTERM')
      return exit
    },
    exited: () => exit,
    output: () => lines.join('\n'),
  }
}
