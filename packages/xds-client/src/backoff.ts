// Reconnect backoff (docs/reference/istio-workload-api.md §3.1, ztunnel's numbers): starts at 10 ms, doubles per
// failed attempt up to 15 s, and goes back to 10 ms after a benign close. Jittered so a fleet of nodes that lost
// istiod at the same moment does not reconnect in lockstep.

export interface BackoffOptions {
  /** first delay, ms */
  initialMs: number
  /** cap, ms */
  maxMs: number
  /** fraction of the delay that is randomised: delay ∈ [base·(1−jitter), base] */
  jitter: number
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 10, maxMs: 15_000, jitter: 0.5 }

export class Backoff {
  private base: number

  constructor(
    private readonly opts: BackoffOptions = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {
    this.base = opts.initialMs
  }

  /** The delay to wait before the next attempt; doubles the base for the attempt after it. */
  next(): number {
    const base = this.base
    this.base = Math.min(this.base * 2, this.opts.maxMs)
    return Math.round(base * (1 - this.opts.jitter * this.random()))
  }

  /** The base the next call to next() uses. */
  get currentBaseMs(): number {
    return this.base
  }

  reset(): void {
    this.base = this.opts.initialMs
  }
}
