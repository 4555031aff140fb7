// RecordTable (dataplane/map-image.ts) against a plain Map of hex keys, over random puts, removes and lookups of
// every map's key size, with enough records to grow its buffer and its index many times and to reuse slots.
import t from 'tap'
import { RecordTable } from '../src/dataplane/map-image.js'

t.test('a record table holds what a map of hex keys holds, after every random step', async (t) => {
  let seed = 11
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return (seed >>> 8) % n
  }
  for (const [keySize, valueSize] of [
    [4, 80],
    [12, 4],
    [16, 4],
    [4, 132],
  ] as const) {
    const table = new RecordTable(keySize, valueSize)
    const other = new RecordTable(keySize, valueSize)
    const reference = new Map<string, string>()
    const bytes = (n: number, limit: number): Buffer => Buffer.from(Array.from({ length: n }, () => rnd(limit)))
    const wrong: string[] = []
    for (let step = 0; step < 40000; step++) {
      // few distinct byte values: keys collide in the index, and many come back after their removal
      const key = bytes(keySize, 3)
      const hex = key.toString('hex')
      const op = rnd(10)
      if (op < 5) {
        const value = bytes(valueSize, 256)
        if (rnd(3) === 0) {
          other.put(key, value)
          table.putFrom(other, other.find(key))
        } else if (rnd(2) === 0) table.put(key, value)
        else
          table.putEncoded(
            { cStruct: '', size: keySize, encode: (v: Buffer, b: Uint8Array, o = 0) => b.set(v, o), decode: () => key },
            key,
            {
              cStruct: '',
              size: valueSize,
              encode: (v: Buffer, b: Uint8Array, o = 0) => b.set(v, o),
              decode: () => value,
            },
            value,
          )
        reference.set(hex, value.toString('hex'))
      } else if (op < 7) {
        if (rnd(2) === 0) table.remove(key)
        else if (table.find(key) >= 0) table.removeSlot(table.find(key))
        reference.delete(hex)
      }
      const want = reference.get(hex)
      const got = table.valueOf(key)?.toString('hex')
      if (got !== want || table.hasKey(key) !== (want !== undefined) || table.has(hex) !== (want !== undefined))
        wrong.push(`${keySize}-byte keys, step ${step}: ${hex} holds ${got}, expected ${want}`)
      if (table.size !== reference.size) wrong.push(`${keySize}-byte keys, step ${step}: size ${table.size}`)
    }
    const listed = [...table].map(([k, r]) => `${k}=${r.value.toString('hex')}`).sort()
    const expected = [...reference].map(([k, v]) => `${k}=${v}`).sort()
    t.same(wrong.slice(0, 3), [], `${keySize}-byte keys: every lookup and size as the map's`)
    t.same(listed, expected, `${keySize}-byte keys: the same records listed (${expected.length})`)
    t.equal([...table.slots()].length, reference.size, 'one live slot per record')
  }
})
