/**
 * Who claims each key (an address claimed by services or by workloads), where nearly every key has exactly one
 * claimant: that one is held as its own string (which the model holds anyway), a Set only while there are more.
 * Two Sets per address took ~40 MB at 100k workloads; this takes a map entry.
 */
export class Claims {
  private readonly byKey = new Map<string, string | Set<string>>()

  add(key: string, claimant: string): void {
    const held = this.byKey.get(key)
    if (held === undefined) this.byKey.set(key, claimant)
    else if (typeof held !== 'string') held.add(claimant)
    else if (held !== claimant) this.byKey.set(key, new Set([held, claimant]))
  }

  delete(key: string, claimant: string): void {
    const held = this.byKey.get(key)
    if (held === undefined) return
    if (typeof held === 'string') {
      if (held === claimant) this.byKey.delete(key)
      return
    }
    held.delete(claimant)
    if (held.size === 1) this.byKey.set(key, held.values().next().value!)
  }

  /** The claimants of a key, in no particular order. */
  of(key: string): readonly string[] {
    const held = this.byKey.get(key)
    if (held === undefined) return []
    return typeof held === 'string' ? [held] : [...held]
  }

  has(key: string): boolean {
    return this.byKey.has(key)
  }

  keys(): IterableIterator<string> {
    return this.byKey.keys()
  }
}
