// Claims (processor/claims.ts) against the plain map of sets it replaces, over random adds and deletes.
import t from 'tap'
import { Claims } from '../src/processor/claims.js'

t.test('claims equal a map of sets after every random add and delete', async (t) => {
  let seed = 7
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return seed % n
  }
  const claims = new Claims()
  const reference = new Map<string, Set<string>>()
  const mismatches: string[] = []
  for (let step = 0; step < 20000; step++) {
    const key = `10.0.0.${rand(8)}`
    const who = `w${rand(4)}`
    if (rand(2) === 0) {
      claims.add(key, who)
      if (!reference.has(key)) reference.set(key, new Set())
      reference.get(key)!.add(who)
    } else {
      claims.delete(key, who)
      reference.get(key)?.delete(who)
      if (reference.get(key)?.size === 0) reference.delete(key)
    }
    for (let k = 0; k < 8; k++) {
      const ip = `10.0.0.${k}`
      const want = [...(reference.get(ip) ?? [])].sort().join()
      const got = [...claims.of(ip)].sort().join()
      if (want !== got || claims.has(ip) !== reference.has(ip)) mismatches.push(`step ${step} ${ip}: ${got} vs ${want}`)
    }
    if ([...claims.keys()].sort().join() !== [...reference.keys()].sort().join()) mismatches.push(`step ${step}: keys`)
  }
  t.same(mismatches.slice(0, 5), [], 'no step differs')
})
