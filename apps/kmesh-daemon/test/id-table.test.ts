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
  table.idOf('a'); table.idOf('b')
  table.retainOnly(new Set(['a']))
  table.save()
  t.same(Object.keys(JSON.parse(readFileSync(join(dir, 'ids.json'), 'utf8')).ids), ['a'])
  writeFileSync(join(dir, 'bad.json'), '{not json')
  t.throws(() => new IdTable(join(dir, 'bad.json')), /bad\.json is not valid JSON/)
  writeFileSync(join(dir, 'dup.json'), JSON.stringify({ ids: { a: 5, b: 5 } }))
  t.throws(() => new IdTable(join(dir, 'dup.json')), /duplicate id 5/)
})
