#!/usr/bin/env node
/**
 * bench/connect/telemetry-rate: does the telemetry ring buffer keep up? kmesh-daemon runs in this process (10
 * services, telemetry on); parallel C clients in its cgroup make short connections to the service VIP as fast as
 * they can; the run reports connections/s and, of the 2 records each connection must produce (open, close), how many
 * the daemon received and how many the kernel counted as lost (ring buffer full). A second phase blocks the daemon's
 * event loop while the clients run, so the ring buffer overflows: the loss must show in the lost counter, never
 * silently. Needs root and the built workspace. Usage: node bench/connect/telemetry-rate.mjs [--clients N]
 * [--connects N] [--block-ms N]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { cleanup, interruptedBy, onCleanup } from '../lib/cleanup.mjs'
import { removeCgroup } from '../lib/cgroup.mjs'
import { TARGET_VIP, SERVICE_PORT, BACKEND_PORT, BACKENDS, meshYaml } from './mesh.mjs'
import { placed, run, startProcess } from './processes.mjs'

const ROOT = new URL('../../', import.meta.url)
const DAEMON = new URL('apps/kmesh-daemon/dist/daemon.js', ROOT)
const CGROUP_EXEC = new URL('apps/kmesh-daemon/dist/system/cgroup-exec.js', ROOT)
const LOG = new URL('apps/kmesh-daemon/dist/log.js', ROOT)
const HERE = new URL('./', import.meta.url)

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '4' },
    connects: { type: 'string', default: '25000' },
    'block-ms': { type: 'string', default: '3000' },
  },
})
const CLIENTS = Number(values.clients)
const CONNECTS = Number(values.connects) // per client
const BLOCK_MS = Number(values['block-ms'])

/** Runs CLIENTS clients of CONNECTS connects each in the cgroup; resolves with the wall time in ms. */
async function burst(client, cgroup, onStarted = () => {}) {
  const started = performance.now()
  const runs = Array.from({ length: CLIENTS }, () =>
    run(placed({ cgroup }, [client, TARGET_VIP, String(SERVICE_PORT), String(CONNECTS), '0'])),
  )
  onStarted()
  await Promise.all(runs)
  return performance.now() - started
}

async function settle(telemetry, expected) {
  // The ring buffer drains from the event loop: give it turns until nothing more arrives.
  let last = -1
  for (let i = 0; i < 100; i++) {
    const s = telemetry.stats()
    if (s.records + s.lost >= expected || s.records === last) return s
    last = s.records
    await new Promise((r) => setTimeout(r, 100))
  }
  return telemetry.stats()
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('run as root')
  const { startDaemon } = await import(DAEMON)
  const { cgroup2Mount } = await import(CGROUP_EXEC)
  const { createLogger } = await import(LOG)
  const tag = `kmesh-bench-tel-${process.pid}`
  const work = mkdtempSync(join(tmpdir(), `${tag}-`))
  onCleanup(`remove ${work}`, () => rmSync(work, { recursive: true, force: true }))
  console.log(
    `bench/connect/telemetry-rate  kernel ${release()}, ${cpus().length} CPUs, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  )
  const client = join(work, 'client')
  const server = join(work, 'server')
  await run(['cc', '-O2', '-Wall', '-o', client, new URL('client.c', HERE).pathname])
  await run(['cc', '-O2', '-Wall', '-o', server, new URL('server.c', HERE).pathname])
  const backends = startProcess('server', [server, String(BACKEND_PORT), ...BACKENDS], /ready/)
  onCleanup('stop the backends', () => backends.stop())
  await backends.ready

  const cgroup = join(cgroup2Mount(), tag)
  mkdirSync(cgroup)
  onCleanup(`remove cgroup ${cgroup}`, () => removeCgroup(cgroup))
  const pinRoot = `/sys/fs/bpf/${tag}`
  onCleanup(`remove pins ${pinRoot}`, () => rmSync(pinRoot, { recursive: true, force: true }))
  const meshFile = join(work, 'mesh.yaml')
  writeFileSync(meshFile, meshYaml(10, Infinity))
  const daemon = await startDaemon({
    meshFile,
    cgroup,
    pinRoot,
    stateDir: join(work, 'state'),
    nodeName: 'bench-node',
    watch: false,
    adminAddress: '',
    log: createLogger({ format: 'json', level: 'warn' }),
  })
  onCleanup('stop the daemon', () => daemon.close())
  if (!(await daemon.ready)) throw new Error('the mesh was refused')
  const telemetry = daemon.telemetry
  if (!telemetry) throw new Error('telemetry did not start (see the log)')
  const total = CLIENTS * CONNECTS
  console.log(
    `${CLIENTS} clients × ${CONNECTS} connects to ${TARGET_VIP}:${SERVICE_PORT}; ring buffer ${telemetry.stats().ringBufferBytes} bytes\n`,
  )

  // Phase 1: the daemon drains as it runs.
  const before = telemetry.stats()
  const ms = await burst(client, cgroup)
  const after = await settle(telemetry, before.records + before.lost + 2 * total)
  const got = after.records - before.records
  const lost = after.lost - before.lost
  const rate = total / (ms / 1000)
  console.log(
    `free-running consumer: ${total} connections in ${(ms / 1000).toFixed(2)} s = ${rate.toFixed(0)} connections/s; ` +
      `records expected ${2 * total}, received ${got}, lost ${lost}, unaccounted ${2 * total - got - lost}`,
  )
  console.log(
    `  ${rate >= 20000 ? 'PASS' : 'BELOW'} ≥ 20,000 connections/s offered  ${lost === 0 ? 'PASS' : 'FAIL'} no record lost`,
  )

  // Phase 2: the daemon's event loop is blocked for BLOCK_MS while the clients run: the ring buffer fills.
  // Right after the block, the full ring buffer is drained in one go: how fast the consumer empties a backlog
  // (records/s, while the clients keep adding) is the rate it can sustain.
  const before2 = telemetry.stats()
  let backlog
  const ms2 = await burst(client, cgroup, () => {
    setTimeout(() => {
      const until = performance.now() + BLOCK_MS
      while (performance.now() < until) {}
      const t0 = performance.now()
      const n = telemetry.drain()
      backlog = { records: n, ms: performance.now() - t0 }
    }, 50)
  })
  const after2 = await settle(telemetry, before2.records + before2.lost + 2 * total)
  const got2 = after2.records - before2.records
  const lost2 = after2.lost - before2.lost
  console.log(
    `\nconsumer blocked ${BLOCK_MS} ms: ${total} connections in ${(ms2 / 1000).toFixed(2)} s = ${(total / (ms2 / 1000)).toFixed(0)} connections/s; ` +
      `records expected ${2 * total}, received ${got2}, lost ${lost2}, unaccounted ${2 * total - got2 - lost2}`,
  )
  console.log(`  ${got2 + lost2 === 2 * total ? 'PASS' : 'FAIL'} every record received or counted as lost`)
  if (backlog) {
    const perS = backlog.records / (backlog.ms / 1000)
    console.log(
      `  backlog drained after the block: ${backlog.records} records in ${backlog.ms.toFixed(0)} ms = ${perS.toFixed(0)} records/s ` +
        `(${(perS / 2).toFixed(0)} connections/s) decoded, enriched and delivered; ` +
        `${perS / 2 >= 20000 ? 'PASS' : 'FAIL'} ≥ 20,000 connections/s`,
    )
  }
}

try {
  await main()
} catch (err) {
  if (!interruptedBy()) console.error(`bench/connect/telemetry-rate failed: ${err.message}`)
  process.exitCode = 1
} finally {
  await cleanup()
}
