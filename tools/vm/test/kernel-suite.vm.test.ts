/**
 * The kernel-interface tests on a second kernel (issue 16): tools/vm/test/kernel-suite.sh runs them inside the test
 * VM (Debian's 6.1 LTS kernel) in one boot — program loads and feature probes, the connect hooks end to end (v4,
 * v6, v4-mapped), getpeername, the kernel == model property tests with fewer cases, tc, XDP authorization. The
 * guest's TAP streams back as it runs, so a timeout keeps every file that finished; a failure shows the guest's
 * output. Daemon-behaviour tests stay on the host kernel (15-40 × slower under TCG).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { runInVm, vmCommandFor, vmSkip } from '../src/index.js'

const script = fileURLToPath(new URL('./kernel-suite.sh', import.meta.url))
const vm = vmSkip()
const skip = vm && `${vm}; the test needs QEMU (qemu-system-x86_64, TCG) and the VM cache from tools/vm/fetch.sh`
const BUDGET_MS = 15 * 60_000
const ARTIFACTS = fileURLToPath(new URL('../../../.cache/test-artifacts', import.meta.url))
// The whole file may take the VM's budget: more than .taprc's per-file 300 s.
t.setTimeout(BUDGET_MS + 120_000)

t.test(
  'the kernel-interface suite passes on Debian 6.1 (in the VM)',
  { skip, timeout: BUDGET_MS + 60_000 },
  async (t) => {
    const r = await runInVm(vmCommandFor(script), { timeoutMs: BUDGET_MS, memoryMb: 3072 })
    t.comment(
      `VM ${r.kernelVersion}: boot ${r.timings.bootMs} ms, job ${r.timings.jobMs} ms, total ${r.timings.totalMs} ms`,
    )
    // Top-level TAP lines of the guest's tap run: one per test file.
    const files = [...r.stdout.matchAll(/^(not ok|ok) \d+ - (\S+\.test\.ts)(?: # time=([\d.]+)ms)?/gm)].map((m) => ({
      ok: m[1] === 'ok',
      file: m[2] as string,
      ms: Number(m[3] ?? 0),
    }))
    for (const f of files)
      t.comment(`${f.ok ? 'ok    ' : 'FAILED'} ${f.file} (${(f.ms / 1000).toFixed(1)} s in the guest)`)
    const totals = /^# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?/m.exec(r.stdout)
    if (totals) t.comment(`guest totals: ${totals[0].slice(2)}`)
    // The whole guest output, for reading after a failure (the comment below keeps only the end).
    mkdirSync(ARTIFACTS, { recursive: true })
    writeFileSync(join(ARTIFACTS, 'kernel-suite-guest.tap'), `${r.stdout}\n--- stderr\n${r.stderr}`)
    if (r.code !== 0 || files.some((f) => !f.ok)) {
      t.comment(
        `guest stdout (last 6000):\n${r.stdout.slice(-6000)}\nstderr:\n${r.stderr.slice(-3000)}\nconsole:\n${r.console.slice(-2000)}`,
      )
    }
    t.equal(r.error, undefined, 'the VM ran the suite to the end within the budget')
    t.match(r.kernelVersion, /^6\.1\./, 'on the 6.1 LTS kernel')
    t.ok(files.length >= 9, `${files.length} test files reported`)
    t.same(
      files.filter((f) => !f.ok).map((f) => f.file),
      [],
      'every file passed in the guest',
    )
    t.equal(r.code, 0, 'the guest tap run exited 0')
  },
)
