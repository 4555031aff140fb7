// Long work on a big push shares the event loop: computations are generators that yield at the end of each slice,
// run to the end at once (drain) or with a macrotask between slices (drive), so the stream, timers and the
// consumer's own endpoints keep their turns.

/** Resolves after the event loop's other callbacks (I/O, timers) had a turn. */
export const nextTurn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve))

export function drain<T>(steps: Generator<void, T, void>): T {
  for (;;) {
    const r = steps.next()
    if (r.done) return r.value
  }
}

export async function drive<T>(steps: Generator<void, T, void>): Promise<T> {
  for (;;) {
    const r = steps.next()
    if (r.done) return r.value
    await nextTurn()
  }
}
