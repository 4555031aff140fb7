/**
 * Undo steps run in reverse order of registration, on normal exit, on an error and on SIGINT/SIGTERM/SIGHUP, so
 * a failed or interrupted run leaves no daemon, cgroup, pin or work directory behind. cleanup() can run more
 * than once: each run undoes the steps registered since the last one (bench/xds tears down each scale before
 * the next).
 */
const steps = []
let running
let signalled

/** The signal that interrupted the run, if one did (failures that follow it are its consequence). */
export const interruptedBy = () => signalled

/** Registers an undo step; `what` names it in the message if it fails. */
export function onCleanup(what, fn) {
  steps.push({ what, fn })
}

export function cleanup() {
  running ??= (async () => {
    while (steps.length > 0) {
      const { what, fn } = steps.pop()
      try {
        await fn()
      } catch (err) {
        console.error(`cleanup: ${what}: ${err.message}`)
      }
    }
  })().finally(() => { running = undefined })
  return running
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    signalled = signal
    console.error(`\n${signal}: cleaning up`)
    cleanup().finally(() => process.exit(130))
  })
}
