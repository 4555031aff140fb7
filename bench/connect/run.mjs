#!/usr/bin/env node
/**
 * bench/connect: the cost of connect + one request/response through each way of reaching a service.
 *
 *   (a) direct to the backend (no BPF, no NAT, no proxy): the baseline
 *   (b) through the service VIP, kmesh-daemon's connect hook, 10 services in the maps
 *   (c) the same with 100k services in the maps
 *   (d) through kube-proxy-style iptables DNAT rules for 10k services, in a network namespace of our own
 *   (e) through HAProxy in TCP mode on a loopback address: a userspace proxy, the sidecar stand-in
 *   (f) as (b), with connection telemetry on (the sockops program and its ring buffer; (b) and (c) run without)
 *
 * plus the hook's own run time per connect from the kernel's BPF statistics at 10 and at 100k services.
 * Variants are interleaved over rounds (rotating the order) and medians reported, because these machines are
 * noisy; every ratio is against (a) measured in the same run. Needs root and the built workspace
 * (`pnpm build` or `bash scripts/setup.sh`). Usage: node bench/connect/run.mjs [--rounds N] [--iterations N]
 * [--large-services N] [--iptables-services N] [--stats-connects N] (or KMESH_BENCH_* environment variables).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { cleanup, interruptedBy, onCleanup } from '../lib/cleanup.mjs'
import { removeCgroup } from '../lib/cgroup.mjs'
import { TARGET_VIP, SERVICE_PORT, BACKEND_PORT, BACKENDS, meshYaml, mapSizeArgs } from './mesh.mjs'
import { kubeProxyRules, NETNS_BACKENDS } from './kube-proxy-rules.mjs'
import { createNetns } from './netns.mjs'
import { startHaproxy } from './haproxy.mjs'
import { hookCosts } from './hook-stats.mjs'
import { measure, run, startProcess, waitReachable } from './processes.mjs'

const ROOT = new URL('../../', import.meta.url)
const DAEMON_PROCESS = new URL('apps/kmesh-daemon/dist/demo/daemon-process.js', ROOT)
const CGROUP_EXEC = new URL('apps/kmesh-daemon/dist/system/cgroup-exec.js', ROOT)
const BPF_MAPS = new URL('packages/bpf-maps/dist/index.js', ROOT)
const HERE = new URL('./', import.meta.url)

const PROXY_IP = '127.0.0.31'
const PROXY_PORT = 18091

/** Defaults in one place; each can be set by flag or environment variable. */
const OPTIONS = {
  rounds: { env: 'KMESH_BENCH_ROUNDS', default: 15, help: 'rounds over all variants (medians are taken over rounds)' },
  iterations: {
    env: 'KMESH_BENCH_ITERATIONS',
    default: 2000,
    help: 'timed connect+request/response per variant per round',
  },
  'large-services': { env: 'KMESH_BENCH_LARGE_SERVICES', default: 100000, help: 'services in the maps for (c)' },
  'large-workloads': {
    env: 'KMESH_BENCH_LARGE_WORKLOADS',
    default: 1000,
    help: 'workloads for (c), each the endpoint of 10 services',
  },
  'iptables-services': { env: 'KMESH_BENCH_IPTABLES_SERVICES', default: 10000, help: 'kube-proxy services for (d)' },
  'stats-connects': {
    env: 'KMESH_BENCH_STATS_CONNECTS',
    default: 5000,
    help: 'connects counted for the hook cost (5 batches)',
  },
}

function readOptions() {
  const { values } = parseArgs({
    options: {
      ...Object.fromEntries(Object.keys(OPTIONS).map((k) => [k, { type: 'string' }])),
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    console.log('usage: node bench/connect/run.mjs [options]   (root; after `pnpm build`)\n')
    for (const [k, o] of Object.entries(OPTIONS))
      console.log(`  --${k} N`.padEnd(26) + `${o.help} (default ${o.default}, env ${o.env})`)
    process.exit(0)
  }
  const out = {}
  for (const [k, o] of Object.entries(OPTIONS)) {
    const raw = values[k] ?? process.env[o.env] ?? String(o.default)
    const n = Number(raw)
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${k} (${o.env}): expected a positive integer, got ${raw}`)
    out[k] = n
  }
  return out
}

function preflight() {
  if (process.getuid?.() !== 0)
    throw new Error('the benchmark loads BPF programs, creates cgroups and a netns: run it as root')
  for (const f of [DAEMON_PROCESS, CGROUP_EXEC, BPF_MAPS]) {
    if (!existsSync(f))
      throw new Error(`${f.pathname} is missing: build the workspace first (pnpm build, or bash scripts/setup.sh)`)
  }
}

/**
 * SIGTERM lets the daemon detach and unpin; a daemon still parsing a large file handles it only when the
 * parse returns, so after 5 s it is killed (the pin-root removal that follows detaches its links).
 */
async function stopDaemon(d) {
  let timer
  const killed = new Promise((resolve) => {
    timer = setTimeout(() => {
      d.child.kill('SIGKILL')
      resolve()
    }, 5000)
  })
  await Promise.race([d.stop(), killed.then(() => d.stop())])
  clearTimeout(timer)
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
const us = (ns) => (ns / 1000).toFixed(1)

async function main() {
  const opts = readOptions()
  preflight()
  const { spawnDaemon } = await import(DAEMON_PROCESS)
  const { cgroup2Mount } = await import(CGROUP_EXEC)
  const cgroupRoot = cgroup2Mount()
  if (!cgroupRoot) throw new Error('no cgroup2 mount in /proc/mounts')
  const tag = `kmesh-bench-${process.pid}`

  const work = mkdtempSync(join(tmpdir(), `${tag}-`))
  onCleanup(`remove ${work}`, () => rmSync(work, { recursive: true, force: true }))
  console.log(
    `bench/connect  kernel ${release()}, ${cpus().length} CPUs, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  )
  console.log(`rounds ${opts.rounds} × ${opts.iterations} connect+request/response per variant; work dir ${work}\n`)

  // The C client and server, built now for this machine.
  const client = join(work, 'client')
  const server = join(work, 'server')
  await Promise.all(
    [
      [client, 'client.c'],
      [server, 'server.c'],
    ].map(([out, src]) => run(['cc', '-O2', '-Wall', '-o', out, new URL(src, HERE).pathname])),
  )

  // Two daemons, each with its own cgroup, pins and maps: one with 10 services, one with the large mesh.
  // The large one starts first: parsing and writing 100k services takes the longest.
  const meshes = [
    { key: 'large', services: opts['large-services'], workloads: opts['large-workloads'] },
    { key: 'small', services: 10, workloads: Infinity },
    { key: 'telemetry', services: 10, workloads: Infinity, telemetry: true },
  ]
  // Two daemons run side by side: neither may claim the default admin port (the option is newer than the
  // rest of the CLI, so it is passed only when this build knows it).
  const help = await run([process.execPath, new URL('apps/kmesh-daemon/bin/kmesh-daemon.js', ROOT).pathname, '--help'])
  const noAdmin = help.includes('--admin-address') ? ['--admin-address', ''] : []
  // (b) and (c) measure the connect hook alone: telemetry off, by flag when this build has one, else by detaching
  // the daemon's sockops link once it is up (the daemon keeps draining an idle ring buffer).
  const noTelemetryFlag = help.includes('--no-telemetry')
  for (const m of meshes) {
    m.cgroup = join(cgroupRoot, `${tag}-${m.key}`)
    m.pinRoot = `/sys/fs/bpf/${tag}-${m.key}`
    m.meshFile = join(work, `mesh-${m.key}.yaml`)
    writeFileSync(m.meshFile, meshYaml(m.services, m.workloads))
    mkdirSync(m.cgroup)
    onCleanup(`remove cgroup ${m.cgroup}`, () => removeCgroup(m.cgroup))
    // The daemon unpins on SIGTERM; this catches a daemon killed before it could.
    onCleanup(`remove pins ${m.pinRoot}`, () => rmSync(m.pinRoot, { recursive: true, force: true }))
    const d = spawnDaemon([
      '--mesh-file',
      m.meshFile,
      '--cgroup',
      m.cgroup,
      '--pin-root',
      m.pinRoot,
      '--state-dir',
      join(work, `state-${m.key}`),
      '--node',
      'bench-node',
      '--no-watch',
      ...noAdmin,
      ...(!m.telemetry && noTelemetryFlag ? ['--no-telemetry'] : []),
      ...mapSizeArgs(m.services, m.workloads),
    ])
    onCleanup(`stop kmesh-daemon (${m.key})`, () => stopDaemon(d))
    const started = Date.now()
    m.applied = d.next(/mesh applied|refused|failed/, 900000).then(async (line) => {
      if (!/mesh applied/.test(line)) throw new Error(`kmesh-daemon (${m.services} services): ${line}\n${d.output()}`)
      const sockops = join(m.pinRoot, 'links', 'sockops')
      if (!m.telemetry && !noTelemetryFlag && existsSync(sockops))
        await run(['bpftool', 'link', 'detach', 'pinned', sockops])
      if (m.telemetry && !existsSync(sockops))
        throw new Error(`kmesh-daemon (${m.key}): no telemetry link at ${sockops}`)
      const writes = /writes="([^"]*)"/.exec(line)?.[1] ?? line
      console.log(
        `kmesh-daemon: ${m.services} services applied in ${((Date.now() - started) / 1000).toFixed(1)} s (map records: ${writes})`,
      )
    })
  }

  const backends = startProcess('server', [server, String(BACKEND_PORT), ...BACKENDS], /ready/)
  onCleanup('stop the backends', () => backends.stop())
  await backends.ready

  const haproxy = startHaproxy(
    work,
    PROXY_IP,
    PROXY_PORT,
    BACKENDS.map((ip) => [ip, BACKEND_PORT]),
  )
  onCleanup('stop haproxy', () => haproxy.stop())
  await haproxy.ready

  const kube = kubeProxyRules(opts['iptables-services'], BACKEND_PORT)
  const t = Date.now()
  // Registered before the namespace exists: an interrupt during the (long) iptables-restore must still
  // delete it, once the creation has settled.
  const creating = createNetns(tag, kube.rules)
  onCleanup(`delete netns ${tag}`, async () => {
    await creating.catch(() => {})
    if (existsSync(`/run/netns/${tag}`)) await run(['ip', 'netns', 'del', tag])
  })
  const netns = await creating
  console.log(
    `netns ${tag}: ${kube.rules.split('\n').length} iptables-restore lines for ${opts['iptables-services']} services loaded in ${((Date.now() - t) / 1000).toFixed(1)} s`,
  )
  const netnsBackends = startProcess(
    'server (netns)',
    ['nsenter', `--net=${netns.path}`, server, String(BACKEND_PORT), ...NETNS_BACKENDS],
    /ready/,
  )
  onCleanup('stop the netns backends', () => netnsBackends.stop())
  await netnsBackends.ready

  await Promise.all(meshes.map((m) => m.applied))
  const [large, small, withTelemetry] = meshes

  const variants = [
    {
      id: 'a',
      what: `direct to the backend ${BACKENDS[0]}:${BACKEND_PORT}`,
      place: {},
      ip: BACKENDS[0],
      port: BACKEND_PORT,
    },
    {
      id: 'b',
      what: `VIP ${TARGET_VIP}:${SERVICE_PORT}, kmesh hook, 10 services`,
      place: { cgroup: small.cgroup },
      ip: TARGET_VIP,
      port: SERVICE_PORT,
    },
    {
      id: 'c',
      what: `VIP ${TARGET_VIP}:${SERVICE_PORT}, kmesh hook, ${large.services} services`,
      place: { cgroup: large.cgroup },
      ip: TARGET_VIP,
      port: SERVICE_PORT,
    },
    {
      id: 'd',
      what: `ClusterIP ${kube.targetVip}:${SERVICE_PORT}, iptables DNAT, ${opts['iptables-services']} services`,
      place: { netns: netns.path },
      ip: kube.targetVip,
      port: SERVICE_PORT,
    },
    {
      id: 'e',
      what: `HAProxy ${PROXY_IP}:${PROXY_PORT} (TCP mode)`,
      place: {},
      ip: PROXY_IP,
      port: PROXY_PORT,
      diag: () => `haproxy said: ${haproxy.output()}`,
    },
    {
      id: 'f',
      what: `VIP ${TARGET_VIP}:${SERVICE_PORT}, kmesh hook + telemetry, 10 services`,
      place: { cgroup: withTelemetry.cgroup },
      ip: TARGET_VIP,
      port: SERVICE_PORT,
    },
  ]
  for (const v of variants) {
    await waitReachable(client, v.place, v.ip, v.port).catch((err) => {
      throw new Error(v.diag ? `${err.message}\n${v.diag()}` : err.message)
    })
    v.samples = []
  }

  const warmup = Math.max(50, Math.round(opts.iterations / 10))
  console.log('')
  for (let r = 0; r < opts.rounds; r++) {
    // Rotate the order each round, and reverse it every other round: each variant takes every position,
    // and which variant ran just before it alternates (one variant's leftovers never always tax the next).
    const rotated = variants.map((_, k) => variants[(k + r) % variants.length])
    const order = r % 2 ? rotated.reverse() : rotated
    for (const v of order) v.samples.push(await measure(client, v.place, v.ip, v.port, opts.iterations, warmup))
    process.stdout.write(
      `round ${r + 1}/${opts.rounds}: ${variants.map((v) => `${v.id} ${us(v.samples.at(-1).p50Ns)}`).join('  ')} µs (p50)\n`,
    )
  }

  const perBatch = Math.ceil(opts['stats-connects'] / 5)
  const hookCase = (m, label, link) => ({
    label,
    linkPin: join(m.pinRoot, 'links', link),
    connect: () => measure(client, { cgroup: m.cgroup }, TARGET_VIP, SERVICE_PORT, perBatch, 0),
  })
  const hooks = await hookCosts([
    hookCase(small, `${small.services} services`, 'connect4'),
    hookCase(large, `${large.services} services`, 'connect4'),
    hookCase(withTelemetry, 'telemetry: connect4', 'connect4'),
    hookCase(withTelemetry, 'telemetry: sockops', 'sockops'),
    hookCase(withTelemetry, 'waypoint TLV: sockops', 'sockops-waypoint'),
  ])

  const stat = {}
  for (const v of variants)
    stat[v.id] = {
      rounds: v.samples,
      p50: median(v.samples.map((s) => s.p50Ns)),
      mean: median(v.samples.map((s) => s.meanNs)),
      lo: Math.min(...v.samples.map((s) => s.p50Ns)),
      hi: Math.max(...v.samples.map((s) => s.p50Ns)),
    }
  const pairedRatio = (x, y, field) =>
    median(stat[x].rounds.map((_, r) => stat[x].rounds[r][field] / stat[y].rounds[r][field]))
  const width = Math.max(...variants.map((v) => v.what.length))
  const header = `    ${'variant'.padEnd(width)} | p50 µs | (rounds min–max) | mean µs | p50 ×(a) | mean ×(a)`
  console.log(
    `\nconnect + one request/response; per round the p50 and mean of ${opts.iterations} operations, here the median over ${opts.rounds} rounds;`,
  )
  console.log('×(a) is the median of the per-round ratios to (a):\n')
  console.log(header)
  console.log('-'.repeat(header.length))
  for (const v of variants) {
    const s = stat[v.id]
    console.log(
      `(${v.id}) ${v.what.padEnd(width)} | ${us(s.p50).padStart(6)} | ${`${us(s.lo)}–${us(s.hi)}`.padStart(16)} | ${us(s.mean).padStart(7)} | ${pairedRatio(v.id, 'a', 'p50Ns').toFixed(3).padStart(8)} | ${pairedRatio(v.id, 'a', 'meanNs').toFixed(3).padStart(9)}`,
    )
  }

  // Ratios are taken within each round (the two variants ran seconds apart, under the same background load)
  // and the median over rounds is reported: a paired estimate, steadier than a ratio of two medians.
  const targets = [
    ['(b) ≤ 1.05 × (a)', 'b', 'a', 1.05],
    ['(c) ≤ 1.05 × (b)', 'c', 'b', 1.05],
    ['(b) ≤ 0.5 × (e)', 'b', 'e', 0.5],
    ['(b) well under (d), taken as ≤ 0.8 × (d)', 'b', 'd', 0.8],
    ['(f) telemetry on ≤ 1.08 × (a)', 'f', 'a', 1.08],
  ]
  console.log('\ntargets (median over rounds of the per-round ratio; judged on p50, the mean verdict beside it):')
  for (const [label, x, y, limit] of targets) {
    const rp = pairedRatio(x, y, 'p50Ns')
    const rm = pairedRatio(x, y, 'meanNs')
    const mark = (r) => (r <= limit ? 'PASS' : 'FAIL')
    console.log(
      `  ${label.padEnd(42)} p50 ratio ${rp.toFixed(3)} ${mark(rp)}   mean ratio ${rm.toFixed(3)} ${mark(rm)}`,
    )
  }

  console.log("\nthe connect hook's own cost (kernel BPF statistics, run_time_ns / run_cnt):")
  for (const h of hooks)
    console.log(
      `  ${h.label.padEnd(18)} ${h.medianNs.toFixed(0).padStart(6)} ns per run (median of ${h.batches} batches; lowest ${h.minNs.toFixed(0)} ns)   ${h.runs} runs of ${h.program}`,
    )
  // sockops runs several times per connection (connect, established, each state change with STATE_CB on).
  // The waypoint TLV's sockops program runs in every daemon ((b), (c) and (f)); telemetry's only in (f).
  const [telConnect, telSockops, waypointSockops] = hooks.slice(2)
  const perConnect = (h) => (h.medianNs * h.runs) / (h.batches * perBatch)
  const runsPer = (h) => (h.runs / (h.batches * perBatch)).toFixed(1)
  console.log(
    `  per connection in (f): connect4 ${perConnect(telConnect).toFixed(0)} ns + telemetry sockops ` +
      `${perConnect(telSockops).toFixed(0)} ns (${runsPer(telSockops)} runs) + waypoint-TLV sockops ` +
      `${perConnect(waypointSockops).toFixed(0)} ns (${runsPer(waypointSockops)} runs) = ` +
      `${(perConnect(telConnect) + perConnect(telSockops) + perConnect(waypointSockops)).toFixed(0)} ns of BPF; ` +
      `(f)/(b) p50 ratio ${pairedRatio('f', 'b', 'p50Ns').toFixed(3)}`,
  )
  console.log(
    `\nload average at the end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  )
}

try {
  await main()
} catch (err) {
  if (!interruptedBy()) console.error(`bench/connect failed: ${err.message}`)
  process.exitCode = 1
} finally {
  await cleanup()
}
