/**
 * Runs one command inside a throw-away QEMU (TCG) VM booted with Debian's stock 6.1 kernel and the host's `/`
 * shared read-only (tmpfs overlay on top), and brings back its output and exit code. Facts and traps:
 * docs/toolchain.md ("A second kernel"). One VM per call; every VM is killed when the call ends, fails,
 * times out or the calling process exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { extname, join, resolve } from 'node:path'
import { vmCache, vmToolDir } from './cache.js'

export interface VmRunOptions {
  /** Working directory inside the guest (the host's paths are the guest's). Default: process.cwd(). */
  cwd?: string
  /** Extra environment for the command. KMESH_REQUIRE_PRIVILEGED and PATH are passed through; KMESH_IN_VM=1 is set. */
  env?: Record<string, string>
  /** The VM is killed after this long (boot included). */
  timeoutMs?: number
  memoryMb?: number
  cpus?: number
  /** Copy the guest's stdout/stderr to these streams as it arrives (polled from the result share). */
  stream?: { stdout?: NodeJS.WritableStream; stderr?: NodeJS.WritableStream }
  signal?: AbortSignal
  /** Cache directory made by tools/vm/fetch.sh (default $KMESH_VM_CACHE or <repo>/.cache/vm). */
  cacheDir?: string
}

export const vmDefaults = { timeoutMs: 180_000, memoryMb: 2048, cpus: 2 } as const

export interface VmTimings {
  /** Host wall clock from spawning QEMU to stage 2 starting in the guest (kernel + initramfs + 9p mounts). */
  bootMs: number
  /** Guest uptime spent in the command itself. */
  jobMs: number
  /** Host wall clock from spawning QEMU to QEMU's exit. */
  totalMs: number
}

export interface VmRunResult {
  /** The command's exit code; null when the VM died before the command finished (see `console`, `error`). */
  code: number | null
  stdout: string
  stderr: string
  /** The guest's serial console (kernel messages, init failures). */
  console: string
  timings: VmTimings
  kernelVersion: string
  /** Why the run did not complete (timeout, abort, QEMU failure). */
  error?: string
}

/** Why the VM cannot run here (QEMU or the cache missing), or undefined when it can. */
export function vmMissing(cacheDir?: string): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root (the guest runs the host tools as root)'
  const q = spawnSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' })
  if (q.error || q.status !== 0)
    return 'qemu-system-x86_64 is not installed (apt-get install --no-install-recommends qemu-system-x86, or run scripts/setup.sh)'
  const c = vmCache(cacheDir)
  return typeof c === 'string' ? c : undefined
}

/**
 * The `skip` option for a tap test that needs the VM: false when it can run, a loud reason otherwise. Under
 * KMESH_REQUIRE_PRIVILEGED=1 (CI) a missing VM throws, so the test fails instead of skipping.
 */
export function vmSkip(): false | string {
  const why = vmMissing()
  if (!why) return false
  if (process.env.KMESH_REQUIRE_PRIVILEGED === '1')
    throw new Error(`VM test cannot run (${why}) and KMESH_REQUIRE_PRIVILEGED=1`)
  return `SKIPPED (needs the test VM): ${why}`
}

/** How a file is run in the guest: `.sh` with sh, `.js`/`.mjs`/`.cjs` with node, `.ts` with the repo's tap. */
export function vmCommandFor(file: string, args: string[] = []): string[] {
  const abs = resolve(file)
  switch (extname(abs)) {
    case '.sh':
      return ['sh', abs, ...args]
    case '.js':
    case '.mjs':
    case '.cjs':
      return [process.execPath, abs, ...args]
    case '.ts':
      return [
        join(vmToolDir, '..', '..', 'node_modules', '.bin', 'tap'),
        '--disable-coverage',
        '--reporter=tap',
        abs,
        ...args,
      ]
    default:
      throw new TypeError(`vmCommandFor: do not know how to run ${file} (expected .sh, .js, .mjs, .cjs or .ts)`)
  }
}

const live = new Set<ChildProcess>()
let exitHookInstalled = false
function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // A test runner that dies must not leave VMs burning CPU: kill every QEMU this process started.
  process.on('exit', () => {
    for (const p of live) p.kill('SIGKILL')
  })
}

const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`

/** Runs `command` (argv) in a fresh VM and resolves with its exit code and output. Never rejects for guest failures. */
export async function runInVm(command: string[], options: VmRunOptions = {}): Promise<VmRunResult> {
  if (command.length === 0) throw new TypeError('runInVm: command must not be empty')
  const timeoutMs = options.timeoutMs ?? vmDefaults.timeoutMs
  const memoryMb = options.memoryMb ?? vmDefaults.memoryMb
  const cpus = options.cpus ?? vmDefaults.cpus
  for (const [name, v] of Object.entries({ timeoutMs, memoryMb, cpus })) {
    if (!Number.isInteger(v) || v <= 0)
      throw new RangeError(`runInVm: option ${name} must be a positive integer, got ${v}`)
  }
  const cache = vmCache(options.cacheDir)
  if (typeof cache === 'string') throw new Error(`runInVm: ${cache}`)

  const share = mkdtempSync(join(tmpdir(), 'kmesh-vm-'))
  // /run/kmesh-vm-bin holds stage 2's `modprobe` (busybox, reading the cached kernel's modules.dep).
  const env: Record<string, string> = {
    PATH: `/run/kmesh-vm-bin:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
    HOME: '/root',
    KMESH_IN_VM: '1',
  }
  if (process.env.KMESH_REQUIRE_PRIVILEGED) env.KMESH_REQUIRE_PRIVILEGED = process.env.KMESH_REQUIRE_PRIVILEGED
  Object.assign(env, options.env)
  for (const k of Object.keys(env))
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new TypeError(`runInVm: bad environment variable name ${k}`)
  writeFileSync(
    join(share, 'job.sh'),
    [
      `cd ${quote(options.cwd ?? process.cwd())} || exit 125`,
      ...Object.entries(env).map(([k, v]) => `export ${k}=${quote(v)}`),
      `exec ${command.map(quote).join(' ')}`,
      '',
    ].join('\n'),
  )
  writeFileSync(join(share, 'modules-dir'), cache.modulesDir)

  const args = [
    '-accel',
    'tcg,thread=multi',
    '-cpu',
    'max',
    '-smp',
    String(cpus),
    '-m',
    `${memoryMb}M`,
    '-nodefaults',
    '-no-reboot',
    '-display',
    'none',
    '-nic',
    'none',
    '-serial',
    `file:${join(share, 'console.log')}`,
    '-kernel',
    cache.kernel,
    '-initrd',
    cache.initramfs,
    '-append',
    `console=ttyS0 panic=-1 oops=panic rdinit=/init quiet loglevel=3 kmesh_stage2=${join(vmToolDir, 'guest', 'stage2.sh')}`,
    '-virtfs',
    'local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap',
    '-virtfs',
    `local,path=${share},mount_tag=results,security_model=none`,
  ]
  installExitHook()
  const started = performance.now()
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] })
  live.add(qemu)
  let qemuStderr = ''
  qemu.stderr!.setEncoding('utf8').on('data', (d: string) => {
    qemuStderr += d
  })

  let bootMs = -1
  let error: string | undefined
  const offsets = { stdout: 0, stderr: 0 }
  const pump = (): void => {
    if (bootMs < 0 && existsSync(join(share, 'booted'))) bootMs = performance.now() - started
    for (const name of ['stdout', 'stderr'] as const) {
      const to = options.stream?.[name]
      if (to) offsets[name] = copyNew(join(share, name), offsets[name], to)
    }
  }
  const poll = setInterval(pump, 200)
  const kill = (why: string): void => {
    error ??= why
    qemu.kill('SIGKILL')
  }
  const timer = setTimeout(() => kill(`timed out after ${timeoutMs} ms`), timeoutMs)
  const onAbort = (): void => kill('aborted')
  options.signal?.addEventListener('abort', onAbort, { once: true })
  if (options.signal?.aborted) onAbort()

  try {
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
      qemu.once('exit', (code, signal) => res({ code, signal }))
      qemu.once('error', (err) => {
        error ??= `cannot start qemu: ${err.message}`
        res({ code: null, signal: null })
      })
    })
    const totalMs = performance.now() - started
    pump()
    const read = (f: string): string => (existsSync(join(share, f)) ? readFileSync(join(share, f), 'utf8') : '')
    const rcText = read('rc').trim()
    const code = rcText === '' ? null : Number(rcText)
    if (code === null && !error)
      error = `the VM stopped before the command finished (qemu exit ${exit.code ?? exit.signal}); see console${qemuStderr ? `; qemu: ${qemuStderr.trim()}` : ''}`
    const booted = Number(read('booted').trim())
    const finished = Number(read('finished').trim())
    const result: VmRunResult = {
      code,
      stdout: read('stdout'),
      stderr: read('stderr'),
      console: read('console.log'),
      timings: {
        bootMs: Math.round(bootMs),
        jobMs: Number.isFinite(finished - booted) ? Math.round((finished - booted) * 1000) : -1,
        totalMs: Math.round(totalMs),
      },
      kernelVersion: cache.kernelVersion,
    }
    if (error) result.error = error
    return result
  } finally {
    clearInterval(poll)
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', onAbort)
    if (qemu.exitCode === null && qemu.signalCode === null) qemu.kill('SIGKILL')
    live.delete(qemu)
    rmSync(share, { recursive: true, force: true })
  }
}

/** Copies bytes of `file` past `offset` to `to`; returns the new offset. */
function copyNew(file: string, offset: number, to: NodeJS.WritableStream): number {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch {
    return offset
  }
  try {
    const buf = Buffer.alloc(64 * 1024)
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, offset)
      if (n <= 0) return offset
      to.write(Buffer.from(buf.subarray(0, n)))
      offset += n
    }
  } finally {
    closeSync(fd)
  }
}
