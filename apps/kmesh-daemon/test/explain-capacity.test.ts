/**
 * Capacity weights in the map image (issue 4): a workload's capacity becomes endpoint slots in its bucket
 * (lb-model `endpointSlots`), laid out with stable indexes and the fewest writes. Pure: no kernel needed.
 */
import t from 'tap'
import { parseMeshFile } from '../src/mesh-file/index.js'
import { computeIntent } from '../src/processor/intent.js'
import { bucketsOf, emptyImage } from '../src/dataplane/map-image.js'
import { imageOf, layoutBucket } from '../src/processor/records.js'
import { changesTo, planWrites, summarize } from '../src/dataplane/plan.js'
import { IdTable } from '../src/ids/id-table.js'

function mesh(capacities: Record<string, number | undefined>, extra = ''): string {
  const wl = Object.entries(capacities).map(([name, cap], i) =>
    [
      `- uid: c//v1/Pod/t/${name}`,
      `  name: ${name}`,
      `  namespace: t`,
      `  workloadIps: ["127.0.9.${i + 1}"]`,
      ...(cap === undefined ? [] : [`  capacity: ${cap}`]),
      `  services: {"t/s.t.svc.cluster.local": {80: 8080}}`,
    ].join('\n'),
  )
  return `workloads:\n${wl.join('\n')}\nservices:\n- name: s\n  namespace: t\n  hostname: s.t.svc.cluster.local\n  vips: ["/127.10.9.1"]\n  ports: {80: 8080}\n${extra}policies: []\n`
}

t.test('layoutBucket with slot counts keeps indexes stable', async (t) => {
  t.same(
    layoutBucket(
      [],
      new Map([
        [2, 2],
        [1, 1],
      ]),
    ),
    [1, 2, 2],
    'new slots in uid order',
  )
  t.same(
    layoutBucket(
      [1, 2, 2],
      new Map([
        [1, 1],
        [2, 3],
      ]),
    ),
    [1, 2, 2, 2],
    'growing appends only',
  )
  t.same(
    layoutBucket(
      [1, 2, 2, 2],
      new Map([
        [1, 1],
        [2, 1],
      ]),
    ),
    [1, 2],
    'shrinking drops from the end',
  )
  t.same(
    layoutBucket(
      [2, 1, 2, 3],
      new Map([
        [1, 1],
        [2, 1],
        [3, 1],
      ]),
    ),
    [2, 1, 3],
    'an excess slot is filled by the last entry',
  )
  t.same(layoutBucket([1, 2, 3], new Set([1, 3])), [1, 3], 'a Set still means one slot each')
})

t.test('capacities become slots; 0 is never an endpoint; the default is 1', async (t) => {
  const ids = new IdTable()
  const { config } = parseMeshFile(mesh({ a: 1, b: 2, c: 3, z: 0, d: undefined }), 'm.yaml')
  const intent = computeIntent(config, ids)
  const sid = ids.peek('svc:t/s.t.svc.cluster.local')!
  const uid = (n: string): number => ids.peek(`wl:c//v1/Pod/t/${n}`)!
  const image = imageOf(intent, emptyImage())
  const bucket = bucketsOf(image, sid)[0]!
  const count = (n: string): number => bucket.filter((u) => u === uid(n)).length
  t.same([count('a'), count('b'), count('c'), count('d'), count('z')], [1, 2, 3, 1, 0])
  t.equal(bucket.length, 7)
  t.same(intent.warnings, [])
})

t.test('changing one capacity writes only the slots that change', async (t) => {
  const ids = new IdTable()
  const before = imageOf(computeIntent(parseMeshFile(mesh({ a: 1, b: 2, c: 1 }), 'm.yaml').config, ids), emptyImage())
  const after = imageOf(computeIntent(parseMeshFile(mesh({ a: 1, b: 3, c: 1 }), 'm.yaml').config, ids), before)
  const sid = ids.peek('svc:t/s.t.svc.cluster.local')!
  t.same(bucketsOf(after, sid)[0]!.slice(0, 4), bucketsOf(before, sid)[0], 'existing indexes are kept')
  t.same(
    summarize(planWrites(before, changesTo(before, after))),
    {
      put: { backend: 0, endpoint: 1, service: 1, frontend: 0 },
      delete: { backend: 0, endpoint: 0, service: 0, frontend: 0 },
    },
    'one new slot and the count',
  )
  const gcd = imageOf(computeIntent(parseMeshFile(mesh({ a: 2, b: 4, c: 2 }), 'm.yaml').config, ids), before)
  t.same(planWrites(before, changesTo(before, gcd)), [], '2:4:2 is the same layout as 1:2:1: no write at all')
})

t.test('capacities beyond the slot budget are approximated with a warning', async (t) => {
  const ids = new IdTable()
  const intent = computeIntent(parseMeshFile(mesh({ a: 1, b: 1000 }), 'm.yaml').config, ids)
  t.match(intent.warnings, [
    /service t\/s.t.svc.cluster.local: capacities at priority 0 need more than 256 endpoint slots; shares are approximated \(largest error 0\.\d\d points\)/,
  ])
})
