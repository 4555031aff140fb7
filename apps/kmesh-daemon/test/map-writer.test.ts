import t from 'tap'
import { emptyImage, putRecord, bucketsOf } from '../src/dataplane/map-image.js'
import { imageOf, layoutBucket } from '../src/processor/records.js'
import { changesTo, planWrites } from '../src/dataplane/plan.js'
import { MapWriter, CapacityError, ApplyError } from '../src/dataplane/map-writer.js'
import { type MemoryMap, memoryMaps } from './support/memory-map.js'
import type { Intent } from '../src/processor/intent.js'

function intentOf(
  services: Record<number, { vip: string; members: Record<number, number> }>,
  backends: number[],
): Intent {
  const intent: Intent = {
    backends: new Map(),
    services: new Map(),
    frontends: new Map(),
    warnings: [],
  }
  for (const uid of backends) intent.backends.set(uid, { name: `w${uid}`, address: `127.0.0.${uid}`, services: [] })
  for (const [sid, s] of Object.entries(services)) {
    intent.services.set(Number(sid), {
      key: `ns/s${sid}`,
      lbPolicy: 0,
      ports: [{ servicePort: 80, targetPort: 8080 }],
      members: new Map(Object.entries(s.members).map(([u, p]) => [Number(u), p])),
    })
    intent.frontends.set(s.vip, Number(sid))
  }
  return intent
}

t.test('layoutBucket keeps survivors in place, fills holes from the end, appends newcomers', async (t) => {
  t.same(layoutBucket([1, 2, 3, 4], new Set([1, 2, 3, 4])), [1, 2, 3, 4])
  t.same(layoutBucket([1, 2, 3, 4], new Set([1, 3, 4])), [1, 4, 3])
  t.same(layoutBucket([1, 2, 3, 4], new Set([1, 2, 3])), [1, 2, 3])
  t.same(layoutBucket([1, 2, 3, 4], new Set([2, 4, 9, 7])), [4, 2, 7, 9])
  t.same(layoutBucket([5], new Set()), [])
  t.same(layoutBucket([], new Set([3, 1])), [1, 3])
})

t.test('plans put leaf to root and delete root to leaf', async (t) => {
  const a = imageOf(intentOf({ 10: { vip: '127.10.0.1', members: { 1: 0, 2: 0 } } }, [1, 2]), emptyImage())
  const steps = planWrites(emptyImage(), changesTo(emptyImage(), a))
  t.same(
    steps.map((s) => `${s.op} ${s.map}`),
    ['put backend', 'put endpoint', 'put service', 'put frontend'],
  )
  const back = planWrites(a, changesTo(a, emptyImage()))
  t.same(
    back.map((s) => `${s.op} ${s.map}`),
    ['delete frontend', 'delete service', 'delete endpoint', 'delete backend'],
  )
  t.same(planWrites(a, changesTo(a, a)), [], 'no difference, no writes')
})

t.test(
  'removing one endpoint writes the moved slot, the count, then deletes the last slot and the backend',
  async (t) => {
    const maps = memoryMaps()
    const writer = new MapWriter(maps, emptyImage())
    writer.apply(
      imageOf(intentOf({ 10: { vip: '127.10.0.1', members: { 1: 0, 2: 0, 3: 0 } } }, [1, 2, 3]), writer.mirror),
    )
    maps.log.length = 0
    writer.apply(imageOf(intentOf({ 10: { vip: '127.10.0.1', members: { 2: 0, 3: 0 } } }, [2, 3]), writer.mirror))
    t.same(maps.log, ['put km_endpoint', 'put km_service', 'delete km_endpoint', 'delete km_backend'])
    t.same(bucketsOf(writer.mirror, 10)[0], [3, 2], 'index 1 now holds the former last entry')
    t.same(MapWriter.readMirror(maps).endpoint.size, 2, 'the kernel image equals the mirror')
  },
)

t.test('a change that does not fit is refused before any write', async (t) => {
  const maps = memoryMaps(3)
  const writer = new MapWriter(maps, emptyImage())
  t.throws(() => writer.apply(imageOf(intentOf({}, [1, 2, 3, 4]), writer.mirror)), CapacityError)
  t.same(maps.log, [])
  t.match(
    String(
      (() => {
        try {
          writer.apply(imageOf(intentOf({}, [1, 2, 3, 4]), writer.mirror))
        } catch (e) {
          return (e as Error).message
        }
      })(),
    ),
    /km_backend would need 4 entries but holds at most 3.*--map-size km_backend=N/,
  )
})

t.test('a change that fits before and after but not while it is written says so, and how to split it', async (t) => {
  const maps = memoryMaps(3)
  const writer = new MapWriter(maps, emptyImage())
  writer.apply(imageOf(intentOf({}, [1, 2, 3]), writer.mirror))
  maps.log.length = 0
  const err = t.throws(() => writer.apply(imageOf(intentOf({}, [1, 2, 4]), writer.mirror))) as CapacityError
  t.equal(err.needed, 4, 'backend 4 is written before backend 3 is deleted: 4 entries at the peak')
  t.equal(err.after, 3)
  t.match(err.message, /km_backend would need 4 entries while the change is written .*3 after it.* holds at most 3/)
  t.match(err.message, /fits before and after but not during: apply it as two edits/)
  t.notMatch(err.message, /reusePinned/, 'only real flags are named')
  t.same(maps.log, [], 'nothing was written')
  writer.apply(imageOf(intentOf({}, [1, 2]), writer.mirror))
  writer.apply(imageOf(intentOf({}, [1, 2, 4]), writer.mirror))
  t.equal(MapWriter.readMirror(maps).backend.size, 3, 'as two edits it applies')
})

t.test('a failed write restores the previous state', async (t) => {
  const maps = memoryMaps()
  const writer = new MapWriter(maps, emptyImage())
  const good = imageOf(intentOf({ 10: { vip: '127.10.0.1', members: { 1: 0 } } }, [1]), writer.mirror)
  writer.apply(good)
  const serviceKeyHex = [...good.service.keys()][0]!
  ;(maps.service as MemoryMap).failPutOnKey = serviceKeyHex
  const err = t.throws(() =>
    writer.apply(
      imageOf(
        intentOf(
          { 10: { vip: '127.10.0.1', members: { 1: 0, 2: 0 } }, 11: { vip: '127.10.0.2', members: { 2: 0 } } },
          [1, 2],
        ),
        writer.mirror,
      ),
    ),
  ) as unknown
  t.ok(err instanceof ApplyError && err.reverted, 'ApplyError says the previous state was restored')
  const kernel = MapWriter.readMirror(maps)
  for (const m of ['backend', 'endpoint', 'service', 'frontend'] as const) {
    t.same([...kernel[m].keys()].sort(), [...good[m].keys()].sort(), `${m} holds exactly the last good state`)
  }
})

t.test('images compare by bytes: an unchanged record is not rewritten', async (t) => {
  const img = emptyImage()
  putRecord(img, 'backend', Buffer.alloc(4, 1), Buffer.alloc(80, 2))
  const same = emptyImage()
  putRecord(same, 'backend', Buffer.alloc(4, 1), Buffer.alloc(80, 2))
  t.same(planWrites(img, changesTo(img, same)), [])
})

t.test('the mirror equals the kernel after a change of some records, written or refused half way', async (t) => {
  const dump = (image: ReturnType<typeof emptyImage>): string[] =>
    (['backend', 'endpoint', 'service', 'frontend'] as const).flatMap((m) =>
      [...image[m]].map(([k, r]) => `${m} ${k}=${r.value.toString('hex')}`).sort(),
    )
  const maps = memoryMaps()
  const writer = new MapWriter(maps, emptyImage())
  const good = imageOf(intentOf({ 10: { vip: '127.10.0.1', members: { 1: 0 } } }, [1, 2]), writer.mirror)
  writer.apply(good)
  const next = imageOf(intentOf({ 10: { vip: '127.10.0.1', members: { 1: 0, 3: 0 } } }, [1, 3]), writer.mirror)
  // Only what differs, as the engine's incremental path gives it (not a complete image): backend 2 goes.
  const gone = emptyImage()
  for (const [, r] of writer.mirror.backend) if (!next.backend.hasKey(r.key)) gone.backend.put(r.key, r.value)
  const serviceKeyHex = [...good.service.keys()][0]!
  ;(maps.service as MemoryMap).failPutOnKey = serviceKeyHex
  t.throws(() => writer.applyChanges({ put: next, delete: gone }), ApplyError)
  t.same(dump(writer.mirror), dump(MapWriter.readMirror(maps)), 'refused: the mirror is what the kernel holds')
  t.same(dump(writer.mirror), dump(good), 'and that is the last good state')
  ;(maps.service as MemoryMap).failPutOnKey = undefined
  writer.applyChanges({ put: next, delete: gone })
  t.same(dump(writer.mirror), dump(MapWriter.readMirror(maps)), 'written: the mirror is what the kernel holds')
  t.same(dump(writer.mirror), dump(next), 'and that is the new state')
})

t.test('a write abandoned between batches leaves the mirror equal to what the kernel took', async (t) => {
  const maps = memoryMaps(10000)
  const writer = new MapWriter(maps, emptyImage())
  // More backends than one batch holds (8192), so the write yields between batches.
  const intent = intentOf({}, [])
  for (let uid = 1; uid <= 9000; uid++)
    intent.backends.set(uid, { name: `w${uid}`, address: `127.1.${uid >> 8}.${uid & 255}`, services: [] })
  const target = imageOf(intent, writer.mirror)
  const steps = writer.applyChangesSteps({ put: target, delete: emptyImage() })
  let r = steps.next()
  while (!r.done && MapWriter.readMirror(maps).backend.size === 0) r = steps.next()
  t.notOk(r.done, 'stopped after the first batch')
  steps.return(undefined as never)
  const kernel = MapWriter.readMirror(maps)
  t.equal(kernel.backend.size, 8192, 'the kernel took one batch')
  t.equal(writer.mirror.backend.size, 8192, 'the mirror took the same')
})
