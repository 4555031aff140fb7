/**
 * The demo (README's first command): three HTTP backends on 127.0.0.11-13, the daemon on the demo mesh file,
 * and a client in a managed cgroup making a few hundred requests to each service VIP. Prints who served what
 * for a Random, a Strict and a Failover service, then empties Failover's first priority (and its second) by
 * editing the mesh file, and shows the traffic move.
 */
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  rmdirSync,
  writeFileSync,
  existsSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startEchoServer, type EchoServer } from './echo-servers.js'
import { probeFrom } from './run-in-cgroup.js'
import { spawnDaemon, type DaemonProcess } from './daemon-process.js'
import { cgroup2Mount } from '../system/cgroup-exec.js'
import type { ProbeResult } from './probe.js'

// The demo mesh ships in the package (examples/), so the default works from an npm install too.
const DEFAULT_MESH = fileURLToPath(new URL('../../examples/demo-mesh.yaml', import.meta.url))
const BACKENDS = [
  ['echo-a', '127.0.0.11'],
  ['echo-b', '127.0.0.12'],
  ['echo-c', '127.0.0.13'],
] as const
const SERVICES = [
  ['echo-random', '127.10.0.1', 'Random (Standard)'],
  ['echo-strict', '127.10.0.2', 'Strict [Region]'],
  ['echo-failover', '127.10.0.3', 'Failover [Region, Zone]'],
] as const
const REQUESTS = Number(process.env.KMESH_DEMO_REQUESTS ?? 300)

function table(title: string, rows: [string, ProbeResult[string] | undefined][]): string {
  const cols = [...BACKENDS.map(([n]) => n), 'refused']
  const width = Math.max(...rows.map(([label]) => label.length), title.length)
  const header = `${title.padEnd(width)} | ${cols.map((c) => c.padStart(8)).join(' | ')}`
  const lines = rows.map(
    ([label, tally]) =>
      `${label.padEnd(width)} | ${cols.map((c) => String((c === 'refused' ? tally?.ECONNREFUSED : tally?.[c]) ?? 0).padStart(8)).join(' | ')}`,
  )
  return [header, '-'.repeat(header.length), ...lines].join('\n')
}

function markUnhealthy(yaml: string, name: string): string {
  return yaml.replace(`  name: ${name}\n`, `  name: ${name}\n  status: Unhealthy\n`)
}

async function main(): Promise<void> {
  const meshSource = resolve(process.argv[2] ?? DEFAULT_MESH)
  if (process.getuid?.() !== 0) throw new Error('the demo loads BPF programs and creates a cgroup: run it as root')
  const cgroupRoot = cgroup2Mount()
  if (!cgroupRoot) throw new Error('no cgroup v2 mount in /proc/mounts')

  const work = mkdtempSync(join(tmpdir(), 'kmesh-demo-'))
  const meshFile = join(work, 'mesh.yaml')
  copyFileSync(meshSource, meshFile)
  const cgroup = join(cgroupRoot, `kmesh-demo-${process.pid}`)
  const pinRoot = `/sys/fs/bpf/kmesh-demo-${process.pid}`
  mkdirSync(cgroup)
  const servers: EchoServer[] = []
  let daemon: DaemonProcess | undefined
  try {
    for (const [name, ip] of BACKENDS) servers.push(await startEchoServer(name, ip, 18080))
    console.log(`backends: ${BACKENDS.map(([n, ip]) => `${n} ${ip}:18080`).join(', ')}`)
    console.log(`mesh file: ${meshSource} (working copy ${meshFile})`)
    console.log(`managed cgroup: ${cgroup}\n`)

    daemon = spawnDaemon(
      [
        '--mesh-file',
        meshFile,
        '--cgroup',
        cgroup,
        '--pin-root',
        pinRoot,
        '--state-dir',
        join(work, 'state'),
        '--node',
        'demo-node',
      ],
      (line) => console.log(`  daemon | ${line}`),
    )
    await daemon.next(/mesh applied|refused|failed/)

    const targets = SERVICES.map(([, vip]) => ({ host: vip, port: 80 }))
    const start = Date.now()
    const result = await probeFrom({ cgroupPath: cgroup }, targets, REQUESTS)
    const elapsed = Date.now() - start
    console.log(
      `\n${REQUESTS} requests to each VIP from a process in the managed cgroup (${(elapsed / (REQUESTS * targets.length)).toFixed(2)} ms per connect+request):\n`,
    )
    console.log(
      table(
        'service (VIP :80)',
        SERVICES.map(([name, vip, mode]) => [`${name} ${vip} ${mode}`, result[`${vip}:80`]]),
      ),
    )

    const outside = await probeFrom({}, [{ host: '127.10.0.1', port: 80 }], 3)
    console.log(
      `\nthe same request from a process outside the cgroup is untouched: it goes to 127.10.0.1:80 itself, where nothing listens: ${JSON.stringify(outside['127.10.0.1:80'])}`,
    )

    console.log('\nFailover: mark echo-a (priority 0) Unhealthy in the mesh file, then echo-b (priority 1):\n')
    const rows: [string, ProbeResult[string] | undefined][] = []
    const failover = [{ host: '127.10.0.3', port: 80 }]
    rows.push(['all healthy', (await probeFrom({ cgroupPath: cgroup }, failover, REQUESTS))['127.10.0.3:80']])
    let yaml = readFileSync(meshFile, 'utf8')
    for (const name of ['echo-a', 'echo-b']) {
      yaml = markUnhealthy(yaml, name)
      const applied = daemon.next(/mesh applied|refused|failed/)
      writeFileSync(meshFile, yaml)
      await applied
      rows.push([`${name} unhealthy`, (await probeFrom({ cgroupPath: cgroup }, failover, REQUESTS))['127.10.0.3:80']])
    }
    console.log(table('echo-failover 127.10.0.3', rows))
    console.log(`\nbackend hit counters: ${servers.map((s) => `${s.name}=${s.hits}`).join(' ')}`)
  } finally {
    if (daemon) {
      const code = await daemon.stop()
      console.log(`\ndaemon stopped (exit ${code}): programs detached, maps unpinned`)
    }
    await Promise.all(servers.map((s) => s.close()))
    if (existsSync(cgroup)) rmdirSync(cgroup)
    rmSync(work, { recursive: true, force: true })
  }
}

main().catch((err) => {
  console.error(`demo failed: ${(err as Error).message}`)
  process.exitCode = 1
})
