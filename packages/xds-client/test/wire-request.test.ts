// The initial_resource_versions of a resume, encoded by hand a slice at a time and appended to the rest of the
// request, decode to the same request as protobufjs's encoding of the whole (names and versions of every kind:
// ASCII, non-ASCII, empty and long versions, entry lengths across varint sizes).
import t from 'tap'
import { decodeDeltaRequest, encodeDeltaRequest, encodeInitialVersionsSteps } from '../src/wire.js'
import { drain } from '../src/slices.js'
import { ADDRESS_TYPE_URL } from '../src/types.js'

t.test('hand-encoded initial versions equal protobufjs encoding of the whole request', async (t) => {
  const entries: Array<[string, string]> = [
    ['Kubernetes//Pod/default/web-0', ''],
    ['default/web.default.svc.cluster.local', 'v1'],
    ['ns/名前.example', 'ünïcode'],
    ['x'.repeat(200), 'y'.repeat(20000)],
    ['', ''],
    ...Array.from(
      { length: 2500 },
      (_, i) => [`Kubernetes//Pod/bench/w-${i}`, i % 3 === 0 ? `${i}` : ''] as [string, string],
    ),
  ]
  const req = { typeUrl: ADDRESS_TYPE_URL, node: { id: 'n', cluster: 'c' }, resourceNamesSubscribe: ['*'] }
  const whole = decodeDeltaRequest(encodeDeltaRequest({ ...req, initialResourceVersions: Object.fromEntries(entries) }))
  for (const slice of [1, 7, 1000, 100000]) {
    let yields = 0
    const steps = encodeInitialVersionsSteps(entries, slice)
    let r = steps.next()
    while (!r.done) {
      yields++
      r = steps.next()
    }
    const joined = decodeDeltaRequest(Buffer.concat([encodeDeltaRequest(req), r.value]))
    t.same(joined, whole, `slice ${slice}: the same request`)
    t.equal(yields, Math.ceil(entries.length / slice) - 1, `slice ${slice}: a yield between slices`)
  }
  t.same(drain(encodeInitialVersionsSteps([], 10)).length, 0, 'no names, no bytes')
})
