/**
 * Undo steps run in reverse order of registration, on normal exit, on an error and on SIGINT/SIGTERM/SIGHUP, so
 * a failed or interrupted run leaves no daemon, cgroup, pin or work directory behind. cleanup() can run more
 * than once: `cleanup(mark())` undoes only the steps registered since mark() (bench/xds tears down each scale
 * before the next and keeps the run's work directory until the end).
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

/** The current depth of the undo stack, for cleanup(depth). */
export const mark = () => steps.length

export function cleanup(downTo = 0) {
  running ??= (async () => {
    while (steps.length > downTo) {
      const { what, fn } = steps.pop()
      try {
        await fn()
      } catch (err) {
        console.error(`cleanup: ${what}: ${err.message}`)
      }
    }
  })().finally(() => {
    running = undefined
  })
  return running
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    signalled = signal
    console.error(`\n${signal}: cleaning up`)
    cleanup().finally(() => process.exit(130))
  })
}
