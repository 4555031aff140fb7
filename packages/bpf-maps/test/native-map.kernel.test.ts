import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { privilegedSkip, tempPinDir } from '@kmesh-ts/testkit'
import {
  BpfError,
  BpfMap,
  KeyNotFoundError,
  MapFullError,
  MapType,
  SpecMismatchError,
  backendKey,
  backendValue,
  encodeRecord,
  frontendKey,
  mapSpecs,
  serviceKey,
  type BackendKey,
  type BackendValue,
  type MapSpec,
} from '../src/index.js'

const skip = privilegedSkip('BPF_MAP_TYPE_HASH with batch ops (BPF_MAP_UPDATE_BATCH, kernel >= 5.6) and bpffs pins')

/** A MapSpec from one of the real record specs, with a small capacity. */
function specOf(name: keyof typeof mapSpecs, maxEntries: number): MapSpec {
  const s = mapSpecs[name]
  return { name: s.name, type: s.type, keySize: s.key.size, valueSize: s.value.size, maxEntries, flags: s.flags }
}

function backend(i: number): BackendValue {
  return { address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, services: [i, i + 1], waypoint: undefined }
}

t.test('typed backend map: put, get, delete and iterate on a real hash map', { skip }, async (t) => {
  const map = BpfMap.create(specOf('backend', 8))
  t.teardown(() => map.close())
  const backends = map.typed(backendKey, backendValue)

  backends.put({ backendUid: 1 }, { address: '10.0.0.1', services: [7] })
  backends.put(
    { backendUid: 2 },
    { address: 'fd00::2', services: [7, 8], waypoint: { address: '10.0.0.9', port: 15008 } },
  )
  t.same(backends.get({ backendUid: 1 }), { address: '10.0.0.1', services: [7] })
  t.same(backends.get({ backendUid: 2 }), {
    address: 'fd00::2',
    services: [7, 8],
    waypoint: { address: '10.0.0.9', port: 15008 },
  })
  t.equal(backends.get({ backendUid: 3 }), undefined, 'a missing key reads as undefined')

  const seen = new Map([...backends.entries()].map(([k, v]) => [k.backendUid, v.address]))
  t.same(
    seen,
    new Map([
      [1, '10.0.0.1'],
      [2, 'fd00::2'],
    ]),
    'entries() walks every key with its decoded value',
  )
  t.equal(backends.count(), 2)

  // The raw bytes in the kernel are the codec's bytes: backend_value.addr at offset 0, service_count at 16.
  const raw = map.get(backends.encodeKey({ backendUid: 1 }))
  t.equal(raw?.subarray(0, 4).toString('hex'), '0a000001')
  t.equal(raw?.readUInt32LE(16), 1)

  t.equal(backends.delete({ backendUid: 1 }), true)
  t.equal(backends.delete({ backendUid: 1 }), false, 'deleting an absent key reports false')
  t.same([...backends.keys()], [{ backendUid: 2 }])
})

t.test(
  'put modes: noexist on a present key is EEXIST, exist on an absent key is KeyNotFoundError',
  { skip },
  async (t) => {
    const map = BpfMap.create(specOf('backend', 8))
    t.teardown(() => map.close())
    const backends = map.typed(backendKey, backendValue)
    backends.put({ backendUid: 5 }, backend(5), 'noexist')
    const exists = t.throws(() => backends.put({ backendUid: 5 }, backend(5), 'noexist')) as BpfError
    t.ok(exists instanceof BpfError)
    t.equal(exists.code, 'EEXIST')
    t.equal(exists.errno, 17)
    t.equal(exists.op, 'bpf_map_update_elem')
    t.equal(exists.mapName, 'km_backend')
    t.equal(exists.key, '05000000', 'the key travels as hex')
    t.match(exists.message, /EEXIST.*km_backend.*05000000/)

    const missing = t.throws(() => backends.put({ backendUid: 6 }, backend(6), 'exist')) as BpfError
    t.ok(missing instanceof KeyNotFoundError)
    t.equal(missing.code, 'ENOENT')
    t.match(missing.message, /06000000 not found in map km_backend/)
    backends.put({ backendUid: 5 }, backend(50), 'exist')
    t.same(backends.get({ backendUid: 5 }), backend(50))
  },
)

t.test('a full map raises MapFullError naming the map, its capacity and the fix', { skip }, async (t) => {
  const map = BpfMap.create(specOf('backend', 4))
  t.teardown(() => map.close())
  const backends = map.typed(backendKey, backendValue)
  for (let i = 0; i < 4; i++) backends.put({ backendUid: i }, backend(i))
  const err = t.throws(() => backends.put({ backendUid: 99 }, backend(99))) as MapFullError
  t.ok(err instanceof MapFullError)
  t.ok(err instanceof BpfError)
  t.equal(err.mapName, 'km_backend')
  t.equal(err.maxEntries, 4)
  t.equal(err.code, 'E2BIG')
  t.equal(err.key, '63000000')
  t.match(err.message, /map km_backend is full \(max_entries 4/)
  t.match(err.message, /maxEntries/, 'says how to raise it')
  backends.put({ backendUid: 2 }, backend(22))
  t.same(backends.get({ backendUid: 2 }), backend(22), 'replacing an existing key in a full map still works')

  // The same through a batch: the records before the first that does not fit are written, and the error says so.
  map.delete(backends.encodeKey({ backendUid: 3 }))
  const batchErr = t.throws(() =>
    backends.putMany([
      [{ backendUid: 100 }, backend(100)],
      [{ backendUid: 101 }, backend(101)],
    ]),
  ) as MapFullError
  t.ok(batchErr instanceof MapFullError)
  t.equal(batchErr.key, '65000000', 'names the first record that did not fit')
  t.match(batchErr.message, /record 1 was the first not written/)
  t.same(backends.get({ backendUid: 100 }), backend(100))
})

t.test('typed() refuses a codec whose size differs from the map, before any write', { skip }, async (t) => {
  const map = BpfMap.create(specOf('backend', 4))
  t.teardown(() => map.close())
  const err = t.throws(() => map.typed(frontendKey, backendValue)) as SpecMismatchError
  t.ok(err instanceof SpecMismatchError)
  t.match(err.message, /map km_backend: key codec frontend_key is 16 bytes, the map's key is 4/)
  t.equal(err.code, 'EINVAL')
  t.throws(() => map.typed(backendKey, serviceKey), /value codec service_key is 4 bytes, the map's value is 80/)
  t.throws(
    () => map.put(Buffer.alloc(16), Buffer.alloc(80)),
    /key is 16 bytes, the map's key is 4/,
    'raw access checks sizes too',
  )
})

t.test('batch put and delete of 10k records, then the count', { skip }, async (t) => {
  const map = BpfMap.create(specOf('backend', 20000))
  t.teardown(() => map.close())
  const backends = map.typed(backendKey, backendValue)
  const entries: [BackendKey, BackendValue][] = Array.from({ length: 10000 }, (_, i) => [
    { backendUid: i + 1 },
    backend(i + 1),
  ])
  backends.putMany(entries)
  t.equal(map.count(), 10000)
  t.same(backends.get({ backendUid: 1234 }), backend(1234))
  t.same(backends.get({ backendUid: 10000 }), backend(10000))

  const dump = map.lookupBatch(1000)
  t.equal(dump.count, 10000, 'lookupBatch reads every record')
  t.equal(dump.keys.length, 10000 * 4)
  const uids = new Set(Array.from({ length: dump.count }, (_, i) => dump.keys.readUInt32LE(i * 4)))
  t.equal(uids.size, 10000)
  const vs = backendValue.size
  for (let i = 0; i < dump.count; i++) {
    const uid = dump.keys.readUInt32LE(i * 4)
    if (!dump.values.subarray(i * vs, (i + 1) * vs).equals(Buffer.from(encodeRecord(backendValue, backend(uid))))) {
      t.fail(`lookupBatch's value of backend ${uid} is not the one written`)
      break
    }
  }

  // scanBatches: the same records a chunk at a time, in buffers reused from chunk to chunk.
  const scanned = new Map<number, string>()
  let chunks = 0
  let firstBuffer: ArrayBufferLike | undefined
  map.scanBatches((keys, values, count) => {
    chunks++
    firstBuffer ??= keys.buffer
    t.equal(keys.buffer, firstBuffer, 'the chunk buffer is reused') || t.bailout()
    for (let i = 0; i < count; i++)
      scanned.set(keys.readUInt32LE(i * 4), values.subarray(i * vs, (i + 1) * vs).toString('hex'))
  }, 1000)
  t.ok(chunks >= 10, `${chunks} chunks of at most 1000`)
  t.equal(scanned.size, 10000, 'scanBatches visits every record once')
  t.equal(scanned.get(1234), Buffer.from(encodeRecord(backendValue, backend(1234))).toString('hex'), 'with its value')

  backends.deleteMany(entries.slice(0, 6000).map(([k]) => k))
  t.equal(map.count(), 4000)
  t.equal(backends.get({ backendUid: 6000 }), undefined)
  t.same(backends.get({ backendUid: 6001 }), backend(6001))

  const err = t.throws(() =>
    backends.deleteMany([{ backendUid: 6001 }, { backendUid: 1 }, { backendUid: 6002 }]),
  ) as KeyNotFoundError
  t.ok(err instanceof KeyNotFoundError, 'deleting a missing key in a batch is an error naming it')
  t.equal(err.key, '01000000')
  t.equal(backends.get({ backendUid: 6001 }), undefined, 'records before the missing key were deleted')
  t.same(backends.get({ backendUid: 6002 }), backend(6002), 'records after it were not')
})

t.test(
  'putBatch falls back to one update per record where the kernel has no batch for the type',
  { skip },
  async (t) => {
    // A devmap has no batch ops (the kernel answers ENOTSUPP, 524): the binding loops instead. Values are ifindexes (lo = 1).
    const map = BpfMap.create({
      name: 'km_test_devmap',
      type: 14 /* BPF_MAP_TYPE_DEVMAP */,
      keySize: 4,
      valueSize: 4,
      maxEntries: 8,
      flags: 0,
    })
    t.teardown(() => map.close())
    const keys = Buffer.alloc(8)
    keys.writeUInt32LE(0, 0)
    keys.writeUInt32LE(3, 4)
    const values = Buffer.alloc(8)
    values.writeUInt32LE(1, 0)
    values.writeUInt32LE(1, 4)
    map.putBatch(keys, values, 2)
    t.equal(map.get(keys.subarray(4, 8))?.readUInt32LE(0), 1)
    t.equal(map.get(keys.subarray(0, 4))?.readUInt32LE(0), 1)
    map.deleteBatch(keys, 2)
    t.equal(map.get(keys.subarray(4, 8)), undefined)
  },
)

t.test('pin, openPinned, and a pin whose spec differs is refused at open', { skip }, async (t) => {
  const dir = tempPinDir()
  t.teardown(() => dir.close())
  const spec = specOf('backend', 16)
  const map = BpfMap.create(spec)
  t.teardown(() => map.close())
  map.typed(backendKey, backendValue).put({ backendUid: 42 }, backend(42))
  const path = join(dir.path, 'km_backend')
  map.pin(path)
  t.ok(existsSync(path))

  const again = BpfMap.openPinned(path, spec)
  t.teardown(() => again.close())
  t.equal(again.info().id, map.info().id, 'the pin is the same kernel map')
  t.same(again.typed(backendKey, backendValue).get({ backendUid: 42 }), backend(42))
  t.same(again.spec, spec)

  const err = t.throws(() =>
    BpfMap.openPinned(path, { name: 'km_backend', valueSize: 132, maxEntries: 16 }),
  ) as SpecMismatchError
  t.ok(err instanceof SpecMismatchError)
  t.match(
    err.message,
    new RegExp(`pinned map ${path} does not match the expected spec: valueSize 80 in the kernel, 132 expected`),
  )
  t.equal(err.mapName, 'km_backend')

  const absent = t.throws(() => BpfMap.openPinned(join(dir.path, 'nothing'))) as BpfError
  t.equal(absent.code, 'ENOENT')
  t.equal(absent.op, 'bpf_obj_get')
  t.match(absent.message, /nothing failed: ENOENT/)

  const pinTwice = t.throws(() => map.pin(path)) as BpfError
  t.equal(pinTwice.code, 'EEXIST')
})

t.test('create errors carry the errno name and the spec', { skip }, async (t) => {
  const err = t.throws(() =>
    BpfMap.create({ name: 'km_bad', type: MapType.Hash, keySize: 0, valueSize: 4, maxEntries: 4, flags: 0 }),
  ) as BpfError
  t.equal(err.code, 'EINVAL')
  t.match(err.message, /bpf_map_create km_bad \(type 1, key 0 B/)
  const closed = BpfMap.create(specOf('backend', 2))
  closed.close()
  t.throws(() => closed.get(Buffer.alloc(4)), /map km_backend is closed/)
})
