import t from 'tap'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
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
  ;(c as unknown as { byName: Map<string, number> }).byName.delete('x')
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
