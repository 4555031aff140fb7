/**
 * A seeded random source for property tests (mulberry32): the seed comes from `envVar` when set, so a failing run
 * can be replayed, else from the clock; the test prints it.
 */
export interface SeededRandom {
  seed: number
  /** uniform in [0, 1) */
  random(): number
  pick<T>(list: readonly T[]): T
  chance(p: number): boolean
}

export function seededRandom(envVar: string): SeededRandom {
  const seed = Number(process.env[envVar] ?? Date.now() % 1_000_000)
  let state = seed >>> 0
  const random = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
  return {
    seed,
    random,
    pick: <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T,
    chance: (p: number) => random() < p,
  }
}
