/**
 * The one way long work shares the event loop. Computations are written as generators that yield at the end of
 * every slice (SLICE items, or one batch syscall): run them to the end at once (drain), or with a macrotask
 * between slices (driveYielding) so a big push never blocks the event loop for long — timers, the admin endpoint
 * and the xDS stream get their turns. Async loops (the xDS conversion) use the same SLICE and nextTurn().
 */
export type Steps<T> = Generator<void, T, void>

/** Items between two yields at most: a few milliseconds of work on this machine for most items. */
export const SLICE = 2000

/**
 * How long a slice may run before it yields. Items differ (a service with ten endpoints costs what ten workloads
 * do; a slice of 2,000 services took ~140 ms): a slice also ends once it ran this long, checked every 64 items.
 */
export const SLICE_MS = 8

let sliceStarted = performance.now()

/** Whether the n-th item (counting from 1) ends a slice: every SLICE items, or once the slice ran SLICE_MS. */
export const endsSlice = (n: number): boolean =>
  n % SLICE === 0 || ((n & 63) === 0 && performance.now() - sliceStarted > SLICE_MS)

/** Resolves after the event loop's other callbacks (I/O, timers) had a turn; the next slice starts then. */
export const nextTurn = (): Promise<void> =>
  new Promise<void>((resolve) =>
    setImmediate(() => {
      sliceStarted = performance.now()
      resolve()
    }),
  )

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
