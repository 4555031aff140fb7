import { HELP, parseCli, UsageError } from './cli.js'
import { startDaemon } from './daemon.js'
import { createLogger } from './log.js'
import { runExplain } from './explain/command.js'

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'explain') return runExplain(argv.slice(1))
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
  const log = createLogger({ format: options.logFormat, level: options.logLevel })
  let daemon
  try {
    daemon = await startDaemon(options, log)
  } catch (err) {
    log.error({ err: (err as Error).message }, 'start failed')
    return 1
  }
  // Listen before the first sync: a daemon that cannot reach istiod must still stop cleanly on SIGTERM.
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve()
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
  })
  await daemon.stop()
  return 0
}
