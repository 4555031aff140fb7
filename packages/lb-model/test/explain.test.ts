import t from 'tap'
import { explain, residueProbability, resolve, type MapSnapshot } from '../src/index.js'

const slots = [1, 2, 2, 3, 3, 3]
const snapshot: MapSnapshot = {
  backends: [1, 2, 3, 4, 5].map((u) => ({ backendUid: u, address: `10.1.0.${u}`, services: [100] })),
  endpoints: [
    ...slots.map((u, i) => ({ serviceId: 100, prio: 0, backendIndex: i + 1, backendUid: u })),
    { serviceId: 100, prio: 1, backendIndex: 1, backendUid: 4 },
    { serviceId: 101, prio: 0, backendIndex: 1, backendUid: 1 },
  ],
  services: [
    { serviceId: 100, prioEndpointCount: [6, 1], lbPolicy: 2, ports: [{ servicePort: 80, targetPort: 8080 }] },
    { serviceId: 101, prioEndpointCount: [3], lbPolicy: 0, ports: [{ servicePort: 80, targetPort: 8080 }] },
  ],
  frontends: [
    { address: '10.96.0.100', upstreamId: 100 },
    { address: '10.96.0.101', upstreamId: 101 },
  ],
}

t.test('residue probabilities are exact and sum to 1', async (t) => {
  t.equal(residueProbability(0, 1), 1)
  t.equal(residueProbability(0, 3) + residueProbability(1, 3) + residueProbability(2, 3), 1)
  t.ok(residueProbability(0, 3) > residueProbability(2, 3), '2^32 mod 3 = 1: residue 0 is one draw more likely')
})

t.test('weighted slots: candidates with their probability, and why the others are not', async (t) => {
  const e = explain(snapshot, undefined, { address: '10.96.0.100', port: 80 })
  t.same(e.upstream, { id: 100, kind: 'service' })
  const p = Object.fromEntries(e.outcomes.map((o) => [o.backendUid, Math.round(o.probability * 1e6) / 1e6]))
  t.same(p, { 1: 0.166667, 2: 0.333333, 3: 0.5 })
  t.equal(
    e.outcomes.reduce((a, o) => a + o.probability, 0),
    1,
  )
  t.same(e.outcomes.find((o) => o.backendUid === 3)?.indexes, [4, 5, 6])
  t.same(
    e.excluded.map((x) => [x.backendUid, x.reason]),
    [
      [4, 'priority 1: the policy draws from priority 0 while it has endpoints'],
      [5, 'a member of the service with no endpoint entry (unhealthy, capacity 0, or Strict locality mismatch)'],
    ],
  )
})

t.test('a stale count: the missing slots are refusals with their exact mass', async (t) => {
  const e = explain(snapshot, undefined, { address: '10.96.0.101', port: 80 })
  t.same(
    e.outcomes.map((o) => [o.kind, o.reason ?? o.address]),
    [
      ['refuse', 'missing-endpoint'],
      ['rewrite', '10.1.0.1'],
    ],
  )
  t.equal(e.outcomes[1]!.probability, residueProbability(0, 3))
  t.match(e.notes, [/stale count/])
})

t.test('explain agrees with resolve on every draw it enumerates', async (t) => {
  const e = explain(snapshot, undefined, { address: '10.96.0.100', port: 80 })
  for (const o of e.outcomes)
    for (const i of o.indexes) {
      const r = resolve(snapshot, { destination: '10.96.0.100', port: 80, random: i - 1 + 6 * 1000 })
      t.equal(r.kind === 'rewrite' ? r.trace.backendUid : undefined, o.backendUid, `index ${i}`)
    }
})

t.test('paths without a draw have one outcome', async (t) => {
  t.same(
    explain(snapshot, undefined, { address: '10.96.0.100', port: 81 })
      .outcomes.map((o) => [o.kind, o.reason, o.probability])
      .slice(0, 1)[0]?.[0],
    'refuse',
  )
  t.same(
    explain(snapshot, undefined, { address: '10.96.9.9', port: 80 }).outcomes.map((o) => [
      o.kind,
      o.reason,
      o.probability,
    ]),
    [['leave', 'no-frontend', 1]],
  )
})
