import t from 'tap'
import { decodeAddress, encodeAddress } from '@kmesh-ts/xds-client'
import { intern, portMapOf } from '../src/model/index.js'
import { workloadFromXds } from '../src/sources/cluster/xds-convert.js'

t.test('a port map equals the object of its pairs; equal maps are one frozen object', async (t) => {
  const pairs: [number, number][] = [
    [443, 8443],
    [80, 8080],
    [15008, 0],
  ]
  const map = portMapOf(pairs)
  t.same(map, Object.fromEntries(pairs), 'the same keys and values as an object built from the pairs')
  t.same(Object.keys(map), ['80', '443', '15008'], 'integer keys in ascending order, as in any object')
  t.equal(portMapOf([...pairs]), map, 'equal content: the same object')
  t.ok(Object.isFrozen(map), 'frozen, since it is shared')
  t.throws(() => {
    ;(map as Record<number, number>)[80] = 1
  }, 'a write throws instead of changing every resource that shares the map')
  t.same(
    portMapOf([
      [80, 1],
      [80, 2],
    ]),
    { 80: 2 },
    'a later pair for the same port wins',
  )
  t.same(portMapOf([]), {}, 'no pairs: an empty map')
  // Past the sharing limit the memory of shared maps starts over: maps are still correct, and shared again after.
  const wrong = []
  for (let p = 1; p <= 5000; p++) if (portMapOf([[p, p + 1]])[p] !== p + 1) wrong.push(p)
  t.same(wrong, [], '5,000 distinct maps, each right')
  t.equal(portMapOf([[7, 9]]), portMapOf([[7, 9]]), 'shared again once the memory started over')
})

t.test('the workloads of a push share their port maps', async (t) => {
  const workload = (i: number) => {
    const uid = `c//v1/Pod/ns/w-${i}`
    const bytes = encodeAddress({
      workload: {
        uid,
        name: `w-${i}`,
        namespace: 'ns',
        addresses: [Uint8Array.of(10, 0, 0, i)],
        services: { 'ns/s.ns.svc.cluster.local': { ports: [{ servicePort: 80, targetPort: 8080 }] } },
      },
    })
    return workloadFromXds(decodeAddress(bytes, uid).workload!)
  }
  const [a, b] = [workload(1), workload(2)]
  t.same(a.services['ns/s.ns.svc.cluster.local'], { 80: 8080 })
  t.equal(a.services['ns/s.ns.svc.cluster.local'], b.services['ns/s.ns.svc.cluster.local'])
})

t.test('intern returns the text it is given, long or short, past its bound too', async (t) => {
  const a = ['ns', 'default'].join('-')
  const b = ['ns-def', 'ault'].join('')
  t.equal(intern(a), a)
  t.equal(intern(b), b, 'equal text')
  const long = 'x'.repeat(65)
  t.equal(intern(long), long, 'long strings pass through')
  const wrong = []
  for (let i = 0; i < 10000; i++) if (intern(`n${i}`) !== `n${i}`) wrong.push(i)
  t.same(wrong, [], 'past the bound the text is still right')
})
