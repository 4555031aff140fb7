/**
 * Runs CNI plugins the way a container runtime does through libcni: the command and container in CNI_* environment
 * variables, the network configuration on stdin, the result (or a CNI error object) on stdout. A network list is
 * run plugin by plugin: on ADD each plugin gets the list's name and cniVersion plus the previous plugin's result as
 * prevResult, and the last result is cached; DEL runs the list backwards and CHECK forwards, each plugin given the
 * cached result as prevResult (libcni's AddNetworkList / DelNetworkList / CheckNetworkList, cniVersion >= 0.4.0).
 * `place` runs each plugin inside a cgroup and/or a network namespace (the node's, in the tests).
 */
import { execFileSync, spawn } from 'node:child_process'
import { statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const PKG = fileURLToPath(new URL('../..', import.meta.url))
export const PLUGIN_SOURCE = `${PKG}cni/kmesh-cni.c`
export const PLUGIN_BINARY = `${PKG}bin/kmesh-cni`

/** bin/kmesh-cni, built first when it is missing or older than its source (tests may run without a build). */
export function pluginBinary(): string {
  const built = (() => {
    try {
      return statSync(PLUGIN_BINARY).mtimeMs
    } catch {
      return 0
    }
  })()
  if (built < statSync(PLUGIN_SOURCE).mtimeMs) execFileSync(process.execPath, [`${PKG}scripts/build-cni.mjs`])
  return PLUGIN_BINARY
}

export interface CniCall {
  command: 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | string
  containerId?: string
  netns?: string
  ifname?: string
  /** CNI_ARGS, e.g. K8S_POD_NAMESPACE=..;K8S_POD_NAME=.. */
  args?: string
  /** CNI_PATH: where plugins (and the IPAM plugin a plugin delegates to) are found. */
  path: string
}

export interface PluginRun {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

export interface RunPlace {
  cgroupPath?: string | undefined
  netnsPath?: string | undefined
}

/** Runs one plugin binary with `config` on stdin. */
export function runPlugin(binary: string, call: CniCall, config: string, place: RunPlace = {}): Promise<PluginRun> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerId ?? '',
    CNI_NETNS: call.netns ?? '',
    CNI_IFNAME: call.ifname ?? '',
    CNI_ARGS: call.args ?? '',
    CNI_PATH: call.path,
  }
  let argv = [binary]
  if (place.netnsPath) argv = ['nsenter', `--net=${place.netnsPath}`, ...argv]
  if (place.cgroupPath) argv = ['sh', '-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', place.cgroupPath, ...argv]
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - started }))
    child.stdin.end(config)
  })
}

export interface NetworkList {
  cniVersion: string
  name: string
  plugins: Record<string, unknown>[]
}

export class CniPluginError extends Error {
  constructor(
    readonly plugin: string,
    readonly run: PluginRun,
  ) {
    super(`CNI plugin ${plugin} exited ${run.code}: ${run.stdout.trim()} ${run.stderr.trim()}`)
  }
}

/** One network list on one container, with libcni's result cache. */
export class ChainRunner {
  cached: Record<string, unknown> | undefined
  readonly runs: { plugin: string; command: string; run: PluginRun }[] = []

  constructor(
    readonly list: NetworkList,
    readonly binDir: string,
    readonly call: Omit<CniCall, 'command' | 'path'>,
    readonly place: RunPlace = {},
  ) {}

  private config(plugin: Record<string, unknown>, prevResult: unknown): string {
    const c: Record<string, unknown> = { ...plugin, name: this.list.name, cniVersion: this.list.cniVersion }
    if (prevResult !== undefined) c.prevResult = prevResult
    return JSON.stringify(c)
  }

  private async run(plugin: Record<string, unknown>, command: string, prevResult: unknown): Promise<PluginRun> {
    const type = String(plugin.type)
    const run = await runPlugin(
      `${this.binDir}/${type}`,
      { ...this.call, command, path: this.binDir },
      this.config(plugin, prevResult),
      this.place,
    )
    this.runs.push({ plugin: type, command, run })
    if (run.code !== 0) throw new CniPluginError(type, run)
    return run
  }

  async add(): Promise<Record<string, unknown>> {
    let prev: Record<string, unknown> | undefined
    for (const plugin of this.list.plugins) {
      const run = await this.run(plugin, 'ADD', prev)
      prev = JSON.parse(run.stdout) as Record<string, unknown>
    }
    this.cached = prev
    return prev!
  }

  async check(): Promise<void> {
    for (const plugin of this.list.plugins) await this.run(plugin, 'CHECK', this.cached)
  }

  async del(): Promise<void> {
    for (const plugin of [...this.list.plugins].reverse()) await this.run(plugin, 'DEL', this.cached)
    this.cached = undefined
  }
}
