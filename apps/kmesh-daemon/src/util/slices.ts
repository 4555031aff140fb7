/**
 * The one way long work shares the event loop. Computations are written as generators that yield at the end of
 * every slice (SLICE items, or one batch syscall): run them to the end at once (drain), or with a macrotask
 * between slices (driveYielding) so a big push never blocks the event loop for long — timers, the admin endpoint
 * and the xDS stream get their turns. Async loops (the xDS conversion) use the same SLICE and nextTurn().
 */
export type Steps<T> = Generator<void, T, void>

/** Items between two yields: a few milliseconds of work on this machine. */
export const SLICE = 2000

/** Whether the n-th item (counting from 1) ends a slice. */
export const endsSlice = (n: number): boolean => n % SLICE === 0

/** Resolves after the event loop's other callbacks (I/O, timers) had a turn. */
export const nextTurn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve))

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
    await nextTurn()
  }
}
