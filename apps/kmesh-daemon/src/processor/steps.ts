/**
 * Long computations written as generators that yield every few thousand items: run them to the end at once
 * (drain), or with a macrotask between slices (driveYielding) so a big push never blocks the event loop for
 * long: timers, the admin endpoint and the xDS stream get their turns.
 */
export type Steps<T> = Generator<void, T, void>

export function drain<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next()
    if (r.done) return r.value
  }
}

export async function driveYielding<T>(steps: Steps<T>): Promise<T> {
  for (;;) {
    const r = steps.next()
    if (r.done) return r.value
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
}

/** Items between two yields: a few milliseconds of work on this machine. */
export const SLICE = 2000
