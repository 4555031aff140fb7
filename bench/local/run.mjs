#!/usr/bin/env node
/**
 * bench/local: kmesh-daemon in local mode on a big ztunnel-format mesh file (issue 13): by default 100,000
 * services and 10,000 workloads (each workload an endpoint of 10 services), about 20 MB of YAML.
 *   - start → "mesh applied": spawn to the log line, beside the same for a one-workload file (the baseline: what
 *     starting the daemon costs at all), measured in the same run;
 *   - one edit (one workload moves to a new IP; the file replaced atomically) → "mesh applied", with the reload
 *     settle time (--reload-settle) given, since it is a wait the operator chose;
 *   - `kmesh-daemon explain VIP:PORT` at that size beside `kmesh-daemon --version`;
 *   - the daemon's RSS after the load.
 * Needs root and the built workspace. Options: --services N --workloads N (or KMESH_BENCH_*), --help.
 */
import { positiveIntOptions } from '../lib/options.mjs'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs'
import { cpus, loadavg, release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { cleanup, interruptedBy, onCleanup } from '../lib/cleanup.mjs'
import { removeCgroup } from '../lib/cgroup.mjs'

const ROOT = new URL('../../', import.meta.url)
const DAEMON_PROCESS = new URL('apps/kmesh-daemon/dist/demo/daemon-process.js', ROOT)
const CGROUP_EXEC = new URL('apps/kmesh-daemon/dist/system/cgroup-exec.js', ROOT)
const MAIN = new URL('apps/kmesh-daemon/bin/kmesh-daemon.js', ROOT)
const TARGETS = { startMs: 3000, editMs: 500, explainMs: 200 }
const SETTLE_MS = 100

const OPTIONS = {
  services: { env: 'KMESH_BENCH_SERVICES', default: 100000, help: 'services in the file' },
  workloads: { env: 'KMESH_BENCH_WORKLOADS', default: 10000, help: 'workloads in the file (each in 10 services)' },
}

const options = () => positiveIntOptions('node bench/local/run.mjs [options]   (root; after `pnpm build`)', OPTIONS)

const ip = (a, i) => `127.${a + (i >>> 16)}.${(i >>> 8) & 255}.${i & 255}`
const host = (j) => `svc-${j}.bench.svc.cluster.local`

/** The mesh file: service j has VIP 127.32.x.x and one endpoint, workload j mod W; `moved` moves workload 0. */
function meshFile(services, workloads, moved = false) {
  const lines = ['workloads:']
  const perWorkload = Math.ceil(services / workloads)
  for (let i = 0; i < workloads; i++) {
    const svcs = []
    for (let k = 0; k < perWorkload; k++) {
      const j = i + k * workloads
      if (j < services) svcs.push(`"bench/${host(j)}": {80: 8080}`)
    }
    lines.push(
      `- uid: c//v1/Pod/bench/w-${i}`,
      `  name: w-${i}`,
      '  namespace: bench',
      `  workloadIps: ["${moved && i === 0 ? ip(200, i) : ip(64, i)}"]`,
      `  services: {${svcs.join(', ')}}`,
    )
  }
  lines.push('services:')
  for (let j = 0; j < services; j++) {
    lines.push(
      `- name: svc-${j}`,
      '  namespace: bench',
      `  hostname: ${host(j)}`,
      `  vips: ["/${ip(32, j)}"]`,
      '  ports: {80: 8080}',
    )
  }
  lines.push('policies: []', '')
  return lines.join('\n')
}

/** The daemon's own split of a load, from its "mesh applied" line: reading + parsing, deriving, writing. */
const splitOf = (line) => {
  const ms = JSON.parse(line).ms ?? {}
  return `read+parse ${f1(ms.read ?? NaN)}, compute ${f1(ms.compute ?? NaN)}, write ${f1(ms.write ?? NaN)}, total ${f1(ms.total ?? NaN)} ms`
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
const f1 = (x) => x.toFixed(1)

function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0)
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 }
}

async function main() {
  const opts = options()
  if (process.getuid?.() !== 0) throw new Error('the benchmark attaches BPF programs to a cgroup: run it as root')
  const { spawnDaemon } = await import(DAEMON_PROCESS)
  const { cgroup2Mount } = await import(CGROUP_EXEC)
  const tag = `kmesh-bench-local-${process.pid}`
  const work = mkdtempSync(join(tmpdir(), `${tag}-`))
  onCleanup(`remove ${work}`, () => rmSync(work, { recursive: true, force: true }))
  const cgroup = join(cgroup2Mount(), tag)
  mkdirSync(cgroup)
  onCleanup(`remove cgroup ${cgroup}`, () => removeCgroup(cgroup))
  console.log(
    `bench/local  kernel ${release()}, ${cpus().length} CPUs, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}; ` + `${opts.services} services, ${opts.workloads} workloads`,
  )
  const big = join(work, 'mesh.yaml')
  writeFileSync(big, meshFile(opts.services, opts.workloads))
  const small = join(work, 'small', 'mesh.yaml')
  mkdirSync(join(work, 'small'))
  writeFileSync(small, meshFile(1, 1))
  const size = statSync(big).size

  const start = async (label, file) => {
    const pinRoot = `/sys/fs/bpf/${tag}-${label}`
    onCleanup(`remove ${pinRoot}`, () => rmSync(pinRoot, { recursive: true, force: true }))
    const started = performance.now()
    const daemon = spawnDaemon([
      '--mesh-file',
      file,
      '--cgroup',
      cgroup,
      '--pin-root',
      pinRoot,
      '--state-dir',
      join(work, `state-${label}`),
      '--log-format',
      'json',
      '--reload-settle',
      `${SETTLE_MS}ms`,
      '--map-size',
      `km_service=${opts.services + 1024}`,
      '--map-size',
      `km_frontend=${opts.services + opts.workloads + 1024}`,
      '--map-size',
      `km_endpoint=${opts.services + 1024}`,
      '--map-size',
      `km_backend=${opts.workloads + 1024}`,
    ])
    onCleanup(`stop kmesh-daemon (${label})`, () => daemon.stop())
    const line = await daemon.next(/"mesh applied"/, 600000)
    return { daemon, pinRoot, ms: performance.now() - started, split: splitOf(line) }
  }

  const baseline = await start('small', small)
  await baseline.daemon.stop()
  const run = await start('big', big)
  const memory = rssMb(run.daemon.child.pid)
  console.log(
    `start → applied: ${f1(run.ms)} ms for ${(size / 1e6).toFixed(1)} MB (one-workload file: ${f1(baseline.ms)} ms); daemon: ${run.split}; RSS ${f1(memory.rss)} MB (peak ${f1(memory.peak)})`,
  )

  // One edit: workload 0 moves; the file is replaced atomically, as an editor or a ConfigMap update does.
  const edits = []
  const editSplits = []
  for (let k = 0; k < 3; k++) {
    const next = run.daemon.next(/"mesh applied"/, 600000)
    const tmp = `${big}.tmp`
    writeFileSync(tmp, meshFile(opts.services, opts.workloads, k % 2 === 0))
    const written = performance.now()
    renameSync(tmp, big)
    editSplits.push(splitOf(await next))
    edits.push(performance.now() - written)
  }
  const editMs = median(edits)
  console.log(
    `one edit → applied: ${f1(editMs)} ms (median of 3; includes the ${SETTLE_MS} ms settle); daemon: ${editSplits.join(' | ')}`,
  )

  const timed = (args) => {
    const t0 = performance.now()
    const r = spawnSync(process.execPath, [MAIN.pathname, ...args], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`kmesh-daemon ${args.join(' ')}: ${r.stderr}`)
    return performance.now() - t0
  }
  const explainMs = median([0, 1, 2].map(() => timed(['explain', '--pin-root', run.pinRoot, `${ip(32, 5)}:80`])))
  const versionMs = median([0, 1, 2].map(() => timed(['--version'])))
  console.log(`explain VIP:PORT: ${f1(explainMs)} ms (kmesh-daemon --version: ${f1(versionMs)} ms)`)

  const verdict = (ok) => (ok ? 'PASS' : 'MISS')
  console.log('\ntargets (each beside its baseline from this run):')
  console.log(
    `  start → applied ≤ ${TARGETS.startMs} ms   ${f1(run.ms).padStart(9)} ms  ${verdict(run.ms <= TARGETS.startMs)}  (${(run.ms / baseline.ms).toFixed(1)} × a one-workload start)`,
  )
  console.log(
    `  one edit ≤ ${TARGETS.editMs} ms           ${f1(editMs).padStart(9)} ms  ${verdict(editMs <= TARGETS.editMs)}  (${SETTLE_MS} ms of it is the settle)`,
  )
  console.log(
    `  explain ≤ ${TARGETS.explainMs} ms            ${f1(explainMs).padStart(9)} ms  ${verdict(explainMs <= TARGETS.explainMs)}  (${(explainMs / versionMs).toFixed(2)} × --version)`,
  )
}

main()
  .catch((err) => {
    if (!interruptedBy()) {
      console.error(`bench/local failed: ${err.stack ?? err}`)
      process.exitCode = 1
    }
  })
  .finally(() => cleanup())
