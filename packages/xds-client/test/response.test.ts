// processResponse: one response -> one change batch (pure).
import t from 'tap'
import {
  processResponse,
  nackMessage,
  encodeAddress,
  encodeAuthorization,
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  Backoff,
  isBenignClose,
} from '../src/index.js'
import type { DeltaDiscoveryResponse, WireResource, TypeUrl } from '../src/index.js'

const UID = 'Kubernetes//Pod/ns/a'
const good = encodeAddress({ workload: { uid: UID, addresses: [new Uint8Array([10, 0, 0, 1])] } })

function res<T extends TypeUrl>(
  typeUrl: T,
  resources: Partial<WireResource>[],
  extra: Partial<Omit<DeltaDiscoveryResponse, 'typeUrl'>> = {},
): DeltaDiscoveryResponse & { typeUrl: T } {
  return {
    systemVersionInfo: 'v1',
    nonce: 'n1',
    removedResources: [],
    removedResourceNames: [],
    resourceErrors: [],
    resources: resources.map((r) => ({ name: '', aliases: [], version: '', ...r })),
    ...extra,
    typeUrl,
  }
}

t.test('good and bad resources in one response: the good ones are added, the bad ones rejected', async (t) => {
  const b = processResponse(
    res(ADDRESS_TYPE_URL, [
      { name: UID, resource: { typeUrl: ADDRESS_TYPE_URL, value: good } },
      {
        name: 'bad',
        resource: {
          typeUrl: ADDRESS_TYPE_URL,
          value: encodeAddress({ workload: { uid: 'bad', addresses: [new Uint8Array(3)] } }),
        },
      },
      { name: 'nopayload' },
      { name: 'wrongtype', resource: { typeUrl: AUTHORIZATION_TYPE_URL, value: good } },
      { name: '', resource: { typeUrl: ADDRESS_TYPE_URL, value: good } },
    ]),
  )
  t.same(
    b.added.map((a) => a.name),
    [UID],
  )
  t.same(
    b.rejected.map((r) => r.name),
    ['bad', 'nopayload', 'wrongtype', '<resources[4]>'],
  )
  t.match(b.rejected[0]!.reason, /IP address must be 4 or 16 bytes, got 3/)
  t.match(b.rejected[1]!.reason, /no payload/)
  t.match(b.rejected[2]!.reason, /payload type .*Authorization is not .*Address/)
  t.match(
    nackMessage(b.rejected),
    /^bad: workload\.addresses\[0\]: .*; nopayload: .*; wrongtype: .*; <resources\[4\]>: resource has no name$/,
  )
})

t.test('a name twice in one response rejects every copy, once', async (t) => {
  const r = { name: UID, resource: { typeUrl: ADDRESS_TYPE_URL, value: good } }
  const b = processResponse(res(ADDRESS_TYPE_URL, [r, r, r]))
  t.same(b.added, [])
  t.same(b.rejected, [{ name: UID, reason: 'name appears 3 times in one response' }])
})

t.test('removals: classified by held kind first, then by shape; policies are policies', async (t) => {
  const b = processResponse(
    res(ADDRESS_TYPE_URL, [], {
      removedResources: ['Kubernetes//Pod/ns/x', 'ns/svc.ns.svc.cluster.local', 'held-svc-with-odd-name'],
      removedResourceNames: [{ name: 'ns/other.ns.svc' }],
      resourceErrors: [
        { resourceName: { name: 'ns/gone.ns.svc' }, errorDetail: { code: 5, message: 'not found', details: [] } },
        { resourceName: { name: 'ns/err.ns.svc' }, errorDetail: { code: 13, message: 'internal', details: [] } },
      ],
    }),
    { heldKind: (n) => (n === 'held-svc-with-odd-name' ? 'service' : undefined) },
  )
  t.same(
    b.removed,
    [
      { kind: 'workload', name: 'Kubernetes//Pod/ns/x' },
      { kind: 'service', name: 'ns/svc.ns.svc.cluster.local' },
      { kind: 'service', name: 'held-svc-with-odd-name' },
      { kind: 'service', name: 'ns/other.ns.svc' },
      { kind: 'service', name: 'ns/gone.ns.svc' },
    ],
    'NOT_FOUND resource errors are removals; other codes are not',
  )
  const p = processResponse(res(AUTHORIZATION_TYPE_URL, [], { removedResources: ['ns/p'] }))
  t.same(p.removed, [{ kind: 'policy', name: 'ns/p' }])
})

t.test('a name both added and removed is rejected, and not removed', async (t) => {
  const b = processResponse(
    res(ADDRESS_TYPE_URL, [{ name: UID, resource: { typeUrl: ADDRESS_TYPE_URL, value: good } }], {
      removedResources: [UID],
    }),
  )
  t.same(b.added, [])
  t.same(b.removed, [])
  t.match(b.rejected[0]!.reason, /both a resource and a removal/)
})

t.test('authorization batch decodes policies', async (t) => {
  const b = processResponse(
    res(AUTHORIZATION_TYPE_URL, [
      {
        name: 'ns/p',
        version: 'v3',
        aliases: ['x'],
        resource: {
          typeUrl: AUTHORIZATION_TYPE_URL,
          value: encodeAuthorization({ name: 'p', namespace: 'ns', action: 1 }),
        },
      },
    ]),
  )
  t.equal(b.typeUrl, AUTHORIZATION_TYPE_URL)
  t.equal(b.added[0]!.value.action, 1)
  t.equal(b.added[0]!.version, 'v3')
  t.same(b.added[0]!.aliases, ['x'])
})

t.test('backoff: 10 ms doubling to 15 s, jittered within [base/2, base], reset to 10 ms', async (t) => {
  const hi = new Backoff(undefined, () => 0) // no jitter taken: the base itself
  const seq = Array.from({ length: 14 }, () => hi.next())
  t.same(seq, [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 15000, 15000, 15000])
  hi.reset()
  t.equal(hi.next(), 10)
  const lo = new Backoff(undefined, () => 0.999999)
  t.same(
    Array.from({ length: 3 }, () => lo.next()),
    [5, 10, 20],
  )
  const rnd = new Backoff()
  for (let i = 0; i < 20; i++) {
    const base = rnd.currentBaseMs
    const d = rnd.next()
    t.ok(d >= base / 2 && d <= base, `attempt ${i}: ${d} within [${base / 2}, ${base}]`)
  }
})

t.test('benign closes: GOAWAY / max age always; UNAVAILABLE and friends only after a healthy stream', async (t) => {
  t.equal(isBenignClose(14, 'Connection dropped: received prior goaway', false), true)
  t.equal(isBenignClose(1, 'Call cancelled: transport is closing', false), true)
  t.equal(isBenignClose(14, 'No connection established', false), false, 'refused connection doubles')
  t.equal(isBenignClose(14, 'stream reset', true), true)
  t.equal(isBenignClose(0, '', true), true)
  t.equal(isBenignClose(7, 'permission denied', true), false)
  t.equal(isBenignClose(16, 'unauthenticated', true), false)
})

t.test('a big push is processed in slices: other tasks run in between, the result is the same', async (t) => {
  const { processResponseInSlices } = await import('../src/index.js')
  const resources = Array.from({ length: 5000 }, (_, i) => {
    const uid = `Kubernetes//Pod/ns/p-${i}`
    return {
      name: uid,
      resource: {
        typeUrl: ADDRESS_TYPE_URL,
        value: encodeAddress({ workload: { uid, addresses: [new Uint8Array([10, 1, i >> 8, i & 255])] } }),
      },
    }
  })
  resources.push({ name: 'bad', resource: { typeUrl: ADDRESS_TYPE_URL, value: new Uint8Array([0xff]) } })
  const response = res(ADDRESS_TYPE_URL, resources)
  let ticks = 0
  let running = true
  const tick = (): void => {
    ticks++
    if (running) setImmediate(tick)
  }
  setImmediate(tick)
  const sliced = await processResponseInSlices(response, {}, 500)
  running = false
  t.ok(ticks >= 5, `${ticks} other macrotasks ran while 5001 resources were processed in slices of 500`)
  const whole = processResponse(response)
  t.equal(sliced.added.length, 5000)
  t.same(
    sliced.added.map((a) => a.name),
    whole.added.map((a) => a.name),
  )
  t.same(sliced.rejected, whole.rejected)
})
