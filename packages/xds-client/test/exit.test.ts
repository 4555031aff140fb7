// close() leaves nothing that keeps the process alive: a child process must end by itself.
import t from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const child = fileURLToPath(new URL('./fixtures/exit-child.ts', import.meta.url))
// the TypeScript loader tap runs us with, so the child can run .ts too
const loader = process.execArgv.filter(
  (a) => a.includes('@tapjs/typescript') || a.includes('tsx') || a.includes('ts-node'),
)

/**
 * Run the child; report how long it took to exit after it printed "closed". Compiling the child's TypeScript can
 * take many seconds on a loaded machine, so only the time after close() is asserted.
 */
function run(
  mode: string,
  timeoutMs = 150_000,
): Promise<{ code: number | null; out: string; exitAfterCloseMs: number }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [...loader, child, mode], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let closedAt = Number.NaN
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (Number.isNaN(closedAt) && out.includes('closed ')) closedAt = performance.now()
    })
    p.stderr.on('data', (d: Buffer) => (out += d.toString()))
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs)
    p.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, out, exitAfterCloseMs: performance.now() - closedAt })
    })
  })
}

for (const mode of ['synced', 'backoff', 'abort-in-handler']) {
  t.test(`process exits by itself after close() (${mode})`, async (t) => {
    const r = await run(mode)
    t.equal(r.code, 0, r.out)
    t.match(r.out, `closed ${mode}`)
    t.ok(
      r.exitAfterCloseMs < 3000,
      `exited ${r.exitAfterCloseMs.toFixed(0)} ms after close (a leaked backoff timer would hold it 10-20 s, a leaked stream forever)`,
    )
  })
}
