#!/usr/bin/env node
// Runs a kernel-dependent script or test file inside the test VM (Debian 6.1 kernel under QEMU TCG) and exits with
// its exit code. Usage: node tools/vm/run.mjs [--timeout SECONDS] FILE [ARGS...]
// FILE: .sh (sh), .js/.mjs/.cjs (node), .ts (the repo's tap). Needs `npx tsc -b tools/vm` and tools/vm/fetch.sh.
import { runInVm, vmCommandFor, vmMissing } from './dist/index.js'

const argv = process.argv.slice(2)
let timeoutMs
if (argv[0] === '--timeout') {
  timeoutMs = Number(argv[1]) * 1000
  argv.splice(0, 2)
}
if (argv.length === 0 || argv[0] === '-h' || argv[0] === '--help') {
  process.stdout.write('usage: node tools/vm/run.mjs [--timeout SECONDS] FILE [ARGS...]\n')
  process.exit(argv.length === 0 ? 2 : 0)
}
const missing = vmMissing()
if (missing) {
  process.stderr.write(`kmesh-vm: cannot run: ${missing}\n`)
  process.exit(125)
}
const ac = new AbortController()
for (const s of ['SIGINT', 'SIGTERM']) process.once(s, () => ac.abort())
const r = await runInVm(vmCommandFor(argv[0], argv.slice(1)), {
  timeoutMs,
  signal: ac.signal,
  stream: { stdout: process.stdout, stderr: process.stderr },
})
process.stderr.write(
  `kmesh-vm: kernel ${r.kernelVersion}, exit ${r.code ?? 'none'}, boot ${r.timings.bootMs} ms, job ${r.timings.jobMs} ms, total ${r.timings.totalMs} ms\n`,
)
if (r.error) process.stderr.write(`kmesh-vm: ${r.error}\n--- console ---\n${r.console.slice(-4000)}\n`)
process.exit(r.code ?? 124)
