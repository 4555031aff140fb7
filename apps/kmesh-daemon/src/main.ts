import { ADMIN_CLI_HELP, isAdminCommand, runAdminCommand } from './admin-cli.js'
import { HELP, parseCli, UsageError } from './cli.js'
import type { Daemon } from './daemon.js'
import { version } from './version.js'

// The daemon (libbpf, gRPC, the Kubernetes client), its logger (pino) and explain (libbpf) are imported only
// when they run, so --help, --version and a usage error answer in a fraction of the time a full load takes.

export { version }

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'explain') return (await import('./explain/command.js')).runExplain(argv.slice(1))
  // kmeshctl's everyday commands over a running daemon's admin endpoint (admin-cli.ts): no kernel library loaded.
  if (argv[0] && isAdminCommand(argv[0])) return runAdminCommand(argv[0], argv.slice(1))
  if (argv[0] === 'help' && isAdminCommand(argv[1])) {
    process.stdout.write(ADMIN_CLI_HELP)
    return 0
  }
  if (argv[0] === 'help' && argv[1] === 'explain') {
    process.stdout.write((await import('./explain/command.js')).EXPLAIN_HELP)
    return 0
  }
  let options
  try {
    options = parseCli(argv)
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`kmesh-daemon: ${err.message}\n`)
      return 2
    }
    throw err
  }
  if (options === 'help') {
    process.stdout.write(HELP)
    return 0
  }
  if (options === 'version') {
    process.stdout.write(`${version()}\n`)
    return 0
  }
  const { createLogger } = await import('./log.js')
  const log = createLogger({ format: options.logFormat, level: options.logLevel })
  // Which settings came from the environment: an error naming a flag may be about a DaemonSet's variable.
  const fromEnvironment = options.fromEnvironment ? { fromEnvironment: options.fromEnvironment } : {}
  log.info({ version: version(), pid: process.pid, ...fromEnvironment }, 'starting')
  // Signals are handled from the start: SIGTERM during a long start (a lock wait, a first sync) stops cleanly,
  // and SIGHUP never kills the daemon (its default action) or leaves pins behind by accident.
  let stopRequested: (signal: string) => void = () => {}
  const stopSignal = new Promise<string>((resolve) => (stopRequested = resolve))
  let daemon: Daemon | undefined
  const abort = new AbortController()
  const onStop = (signal: NodeJS.Signals): void => {
    log.info({ signal }, daemon ? 'stopping' : 'stop requested during start')
    stopRequested(signal)
    abort.abort()
  }
  const onHup = (): void => {
    log.info(
      { signal: 'SIGHUP' },
      daemon
        ? 're-reading the mesh file and the IPsec key file'
        : 'SIGHUP during start: ignored (the first read is under way)',
    )
    void daemon?.reload()
  }
  process.on('SIGTERM', onStop)
  process.on('SIGINT', onStop)
  process.on('SIGHUP', onHup)
  try {
    const starting = import('./daemon.js').then(({ startDaemon }) =>
      startDaemon({ ...options, log }, { signal: abort.signal }),
    )
    const first = await Promise.race([starting.then(() => 'started' as const), stopSignal])
    daemon = await starting
    if (first === 'started') await stopSignal
  } catch (err) {
    if (abort.signal.aborted) {
      log.info('stopped before the start completed; nothing was left attached or pinned by this start')
      return 0
    }
    log.error({ err: (err as Error).message, ...fromEnvironment }, 'start failed')
    return 1
  } finally {
    await daemon?.close()
    process.off('SIGTERM', onStop)
    process.off('SIGINT', onStop)
    process.off('SIGHUP', onHup)
  }
  return 0
}
