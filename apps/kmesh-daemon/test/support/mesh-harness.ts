/**
 * End-to-end harness: a private cgroup, a private pin root and state dir, echo backends on loopback, sentinel
 * servers on the VIPs themselves (so an untouched connect is visible as "untouched" instead of a refusal),
 * the daemon in process, and probes from inside or outside the cgroup. Everything is removed on teardown,
 * also when a test fails.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { tempCgroup, tempPinDir } from '@kmesh-ts/testkit'
import { startDaemon, type Daemon } from '../../src/daemon.js'
import { createLogger } from '../../src/log.js'
import { startEchoServer, type EchoServer } from '../../src/demo/echo-servers.js'
import { probeFrom } from '../../src/demo/run-in-cgroup.js'
import type { ProbeResult, ProbeTarget } from '../../src/demo/probe.js'
import type { DaemonOptions } from '../../src/options.js'

export interface WorkloadSpec {
  name: string
  ip: string
  node?: string
  locality?: [string, string]
  status?: 'Healthy' | 'Unhealthy'
  /** service name -> { servicePort: targetPort } */
  services: Record<string, Record<number, number>>
}
export interface ServiceSpec {
  name: string
  vips: string[]
  ports: Record<number, number>
  mode?: 'Standard' | 'Strict' | 'Failover' | 'Passthrough'
  prefs?: string[]
}

/** A mesh file in ztunnel's local format, namespace "t". */
export function meshYaml(
  workloads: WorkloadSpec[],
  services: ServiceSpec[],
  client?: { node: string; locality: [string, string] },
): string {
  const svcKey = (name: string): string => `t/${name}.t.svc.cluster.local`
  const ports = (p: Record<number, number>): string =>
    `{${Object.entries(p)
      .map(([a, b]) => `${a}: ${b}`)
      .join(', ')}}`
  const wl = (w: WorkloadSpec): string =>
    [
      `- uid: c//v1/Pod/t/${w.name}`,
      `  name: ${w.name}`,
      `  namespace: t`,
      `  node: ${w.node ?? 'node-1'}`,
      `  workloadIps: [${JSON.stringify(w.ip)}]`,
      ...(w.locality ? [`  locality: {region: ${w.locality[0]}, zone: ${w.locality[1]}, subzone: ""}`] : []),
      ...(w.status ? [`  status: ${w.status}`] : []),
      `  services: {${Object.entries(w.services)
        .map(([s, p]) => `${JSON.stringify(svcKey(s))}: ${ports(p)}`)
        .join(', ')}}`,
    ].join('\n')
  const sv = (s: ServiceSpec): string =>
    [
      `- name: ${s.name}`,
      `  namespace: t`,
      `  hostname: ${s.name}.t.svc.cluster.local`,
      `  vips: [${s.vips.map((v) => JSON.stringify(`/${v}`)).join(', ')}]`,
      `  ports: ${ports(s.ports)}`,
      ...(s.mode
        ? [
            `  loadBalancer: {routingPreferences: [${(s.prefs ?? []).join(', ')}], mode: ${s.mode}, healthPolicy: OnlyHealthy}`,
          ]
        : []),
    ].join('\n')
  const all: WorkloadSpec[] = client
    ? [{ name: 'client', ip: '127.0.0.99', node: client.node, locality: client.locality, services: {} }, ...workloads]
    : workloads
  return `workloads:\n${all.map(wl).join('\n')}\nservices:\n${services.map(sv).join('\n')}\npolicies: []\n`
}

export interface Harness {
  cgroup: string
  pinRoot: string
  meshFile: string
  stateDir: string
  daemon?: Daemon | undefined
  servers: EchoServer[]
  logs: string[]
  /** Starts an echo backend (closed on teardown). */
  backend(name: string, host: string, port: number): Promise<EchoServer>
  /** A server on the VIP itself answering "untouched": what a connect the hook left alone reaches. */
  sentinel(host: string, port: number): Promise<EchoServer>
  writeMesh(yaml: string): void
  start(extra?: Partial<DaemonOptions>): Promise<Daemon>
  /** The command-line flags of this harness's mesh file, cgroup, pin root and state dir (for a daemon process). */
  cliArgs(): string[]
  probe(
    targets: (ProbeTarget | string)[],
    count: number,
    opts?: { outside?: boolean; netnsPath?: string },
  ): Promise<ProbeResult>
  close(): Promise<void>
}

export function toTarget(t: ProbeTarget | string): ProbeTarget {
  if (typeof t !== 'string') return t
  const i = t.lastIndexOf(':')
  return { host: t.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(t.slice(i + 1)) }
}

export async function meshHarness(t: { teardown(fn: () => unknown): void }): Promise<Harness> {
  const cg = tempCgroup()
  const pins = tempPinDir()
  const work = mkdtempSync(join(tmpdir(), 'kmesh-e2e-'))
  const logs: string[] = []
  let closed = false
  const h: Harness = {
    cgroup: cg.path,
    pinRoot: join(pins.path, 'root'),
    meshFile: join(work, 'mesh.yaml'),
    stateDir: join(work, 'state'),
    servers: [],
    logs,
    async backend(name, host, port) {
      const s = await startEchoServer(name, host, port)
      h.servers.push(s)
      return s
    },
    sentinel(host, port) {
      return h.backend('untouched', host, port)
    },
    writeMesh(yaml) {
      writeFileSync(h.meshFile, yaml)
    },
    async start(extra = {}) {
      const out = {
        write: (l: string) => {
          logs.push(l.trim())
          return true
        },
      } as unknown as NodeJS.WritableStream
      const log = createLogger({ format: 'json', out })
      h.daemon = await startDaemon({
        meshFile: h.meshFile,
        cgroup: h.cgroup,
        pinRoot: h.pinRoot,
        stateDir: h.stateDir,
        watch: false,
        adminAddress: '',
        log,
        ...extra,
      })
      if (!(await h.daemon.ready)) throw new Error(`first mesh load failed:\n${logs.join('\n')}`)
      return h.daemon
    },
    cliArgs() {
      return ['--mesh-file', h.meshFile, '--cgroup', h.cgroup, '--pin-root', h.pinRoot, '--state-dir', h.stateDir]
    },
    probe(targets, count, opts = {}) {
      return probeFrom(
        { cgroupPath: opts.outside ? undefined : h.cgroup, netnsPath: opts.netnsPath },
        targets.map(toTarget),
        count,
      )
    },
    async close() {
      if (closed) return
      closed = true
      await h.daemon?.close()
      await Promise.all(h.servers.map((s) => s.close()))
      cg.close()
      pins.close()
      rmSync(work, { recursive: true, force: true })
    },
  }
  t.teardown(() => h.close())
  return h
}
