import t from 'tap'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { IdTable, fnv1a32 } from '../src/ids/id-table.js'

t.test('ids are FNV-1a of the name, stable across restarts, and never collide', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'kmesh-ids-')), 'ids.json')
  const a = new IdTable(file)
  const id = a.idOf('svc:default/echo')
  t.equal(id, fnv1a32('svc:default/echo'))
  t.equal(a.idOf('svc:default/echo'), id, 'same name, same id')
  a.save()
  const b = new IdTable(file)
  t.equal(b.peek('svc:default/echo'), id, 'persisted')
  // Force a collision: a name whose hash slot is taken gets the next free id.
  const c = new IdTable()
  const first = c.idOf('x')
  ;(c as unknown as { byId: Map<number, string> }).byId.set(first + 1, 'squatter')
  ;(c as unknown as { byKey: Record<string, Map<string, number>> }).byKey['']!.delete('x')
  ;(c as unknown as { byId: Map<number, string> }).byId.set(first, 'other')
  t.equal(c.idOf('x'), first + 2, 'linear probing skips taken ids')
})

t.test('retainOnly releases unused names; a corrupt file is named', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kmesh-ids-'))
  const table = new IdTable(join(dir, 'ids.json'))
  table.idOf('a')
  table.idOf('b')
  table.retainOnly(new Set(['a']))
  table.save()
  t.same(
    [...new IdTable(join(dir, 'ids.json')).entries()].map(([n]) => n),
    ['a'],
    'the release survives a restart',
  )
  writeFileSync(join(dir, 'bad.json'), '{not json')
  t.throws(() => new IdTable(join(dir, 'bad.json')), /bad\.json is not valid JSON/)
  writeFileSync(join(dir, 'dup.json'), JSON.stringify({ ids: { a: 5, b: 5 } }))
  t.throws(() => new IdTable(join(dir, 'dup.json')), /duplicate id 5/)
})

t.test('saves append to a journal; a long journal folds into the snapshot; a torn last line is ignored', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kmesh-ids-'))
  const file = join(dir, 'ids.json')
  const table = new IdTable(file)
  for (let i = 0; i < 10; i++) table.idOf(`wl:w${i}`)
  table.save()
  t.equal(readFileSync(`${file}.log`, 'utf8').trim().split('\n').length, 10, 'ten small appends, no snapshot yet')
  table.release('wl:w3')
  table.idOf('svc:a/b')
  table.save()
  writeFileSync(`${file}.log`, readFileSync(`${file}.log`, 'utf8') + '["+","wl:torn",12')
  const reopened = new IdTable(file)
  t.equal(reopened.peek('wl:w3'), undefined)
  t.equal(reopened.peek('svc:a/b'), table.peek('svc:a/b'))
  t.equal(reopened.peek('wl:torn'), undefined, 'a line cut short by a crash is ignored')
  t.equal(reopened.size, 10)
  const big = new IdTable(file)
  for (let i = 0; i < 2000; i++) big.idOf(`wl:many${i}`)
  big.save()
  t.same(Object.keys(JSON.parse(readFileSync(file, 'utf8')).ids).length, 2010, 'the journal was folded into a snapshot')
  t.equal(new IdTable(file).size, 2010)
})

t.test('lookups by kind and key are the same table as lookups by name, across a restart', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'kmesh-ids-')), 'ids.json')
  const table = new IdTable(file)
  const w = table.idOfKey('wl', 'c//v1/Pod/ns/a')
  const s = table.idOf('svc:ns/a.ns.svc.cluster.local')
  const other = table.idOf('plain')
  t.equal(table.idOf('wl:c//v1/Pod/ns/a'), w, 'the name finds the id given by kind and key')
  t.equal(table.peekKey('svc', 'ns/a.ns.svc.cluster.local'), s, 'the kind and key find the id given by name')
  t.equal(table.nameOf(w), 'wl:c//v1/Pod/ns/a', 'the name is kept with the id')
  t.not(w, s)
  table.retainWhere((kind, key) => kind !== 'wl' || key !== 'c//v1/Pod/ns/a')
  table.save()
  const reopened = new IdTable(file)
  t.equal(reopened.peek('wl:c//v1/Pod/ns/a'), undefined, 'retainWhere released the workload')
  t.equal(reopened.peekKey('svc', 'ns/a.ns.svc.cluster.local'), s)
  t.equal(reopened.peek('plain'), other, 'a name without a kind prefix is its own kind')
  t.same(
    [...reopened.entries()].sort(),
    [
      ['plain', other],
      ['svc:ns/a.ns.svc.cluster.local', s],
    ].sort(),
  )
})

t.test(
  'a snapshot written a slice at a time: abandoned half way it leaves no file; finished it is whole',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'kmesh-ids-'))
    const file = join(dir, 'ids.json')
    const table = new IdTable(file)
    for (let i = 0; i < 5000; i++) table.idOf(`wl:w${i}`)
    const steps = table.saveSteps()
    t.equal(steps.next().done, false, 'the save yields between slices')
    steps.return(undefined)
    t.same(readdirSync(dir), [], 'abandoned: no snapshot and no temporary file')
    table.save()
    t.same(readdirSync(dir), ['ids.json'])
    const reopened = new IdTable(file)
    t.equal(reopened.size, 5000)
    t.equal(reopened.peek('wl:w4999'), table.peek('wl:w4999'))
  },
)
