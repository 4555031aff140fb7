// explain's names (explain/names.ts) read only the ids it prints; they must be the names the id table itself has
// after its snapshot and journal (random allocations, releases, saves and a torn last line).
import t from 'tap'
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { IdTable } from '../src/ids/id-table.js'
import { readIdNames } from '../src/explain/names.js'

t.test('the names of the wanted ids are those of the id table, after any history', async (t) => {
  let seed = 5
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return (seed >>> 8) % n
  }
  const differ: string[] = []
  for (let round = 0; round < 40; round++) {
    const dir = mkdtempSync(join(tmpdir(), 'kmesh-names-'))
    const table = new IdTable(join(dir, 'ids.json'))
    const names = Array.from({ length: 300 }, (_, i) => [`wl:c//v1/Pod/ns/p-${i}`, `svc:ns/s-${i}.ns.svc`][i % 2]!)
    const ever = new Set<number>() // ids handed out at some point: some are released by the end
    for (let step = 0; step < 2000; step++) {
      const name = names[rnd(names.length)]!
      if (rnd(3) > 0) ever.add(table.idOf(name))
      else table.release(name)
      if (rnd(50) === 0) table.save() // a journal append, or a fresh snapshot once the journal is long
    }
    table.save()
    if (rnd(2) === 0) appendFileSync(join(dir, 'ids.json.log'), '["+","wl:torn",1') // a crash mid-append
    const reference = new IdTable(join(dir, 'ids.json'))
    const all = new Map([...reference.entries()].map(([name, id]) => [id, name.replace(/^(svc|wl):/, '')]))
    const wanted = new Set([...ever].filter(() => rnd(3) === 0))
    for (let k = 0; k < 5; k++) wanted.add(1 + rnd(2 ** 32 - 1)) // ids nobody has
    const got = readIdNames(dir, wanted)
    const want = new Map([...all].filter(([id]) => wanted.has(id)))
    if (JSON.stringify([...got].sort()) !== JSON.stringify([...want].sort()))
      differ.push(`round ${round}: ${got.size} names, expected ${want.size}`)
  }
  t.same(differ, [], "every round gives the id table's names")
  t.same(readIdNames(mkdtempSync(join(tmpdir(), 'kmesh-names-')), new Set([1])), new Map(), 'no table: no names')
  // A table in another layout than the daemon writes (edited by hand) is read whole.
  const edited = mkdtempSync(join(tmpdir(), 'kmesh-names-'))
  writeFileSync(join(edited, 'ids.json'), '{"ids":{"wl:c//v1/Pod/ns/a":7,"svc:ns/s.ns.svc":9}}')
  t.same(
    readIdNames(edited, new Set([7, 9, 11])),
    new Map([
      [7, 'c//v1/Pod/ns/a'],
      [9, 'ns/s.ns.svc'],
    ]),
  )
})
