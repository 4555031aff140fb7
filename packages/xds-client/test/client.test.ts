// The client against the in-process testing server, all on 127.0.0.1.
import t from 'tap'
import { ADDRESS_TYPE_URL as A, AUTHORIZATION_TYPE_URL as Z, encodeAddress } from '../src/index.js'
import type { AddressBatch, AuthorizationBatch, ChangeBatch } from '../src/index.js'
import { GrpcStatus } from '../src/testing/index.js'
import { rig, ip4, NODE } from './helpers.js'

const W1 = 'Kubernetes//Pod/default/web-0'
const W2 = 'Kubernetes//Pod/default/web-1'
const S1 = 'default/web.default.svc.cluster.local'
const P1 = 'default/allow-web'

const wl = (uid: string, last: number, extra: object = {}) => ({
  workload: {
    uid,
    name: uid.split('/').pop(),
    namespace: 'default',
    addresses: [ip4(10, 0, 0, last)],
    services: { [S1]: { ports: [{ servicePort: 80, targetPort: 8080 }] } },
    ...extra,
  },
})
const svc = (extra: object = {}) => ({
  service: {
    name: 'web',
    namespace: 'default',
    hostname: 'web.default.svc.cluster.local',
    addresses: [{ address: ip4(10, 96, 0, 10) }],
    ports: [{ servicePort: 80, targetPort: 8080 }],
    ...extra,
  },
})
const pol = { name: 'allow-web', namespace: 'default', action: 0 as const }

const isA = (b: ChangeBatch): b is AddressBatch => b.typeUrl === A
const isZ = (b: ChangeBatch): b is AuthorizationBatch => b.typeUrl === Z

t.test('initial sync: node identity, legacy wildcard for both types, full push, ACK, ready', async (t) => {
  const r = await rig(t, {}, {}, undefined)
  // the world before the client connects
  r.server.setQuietly(A, [wl(W1, 1), wl(W2, 2), svc()])
  r.server.setQuietly(Z, [pol])
  t.equal(r.client.isReady, false)
  await r.client.ready
  t.equal(r.client.isReady, true)
  const a = await r.batch(isA)
  const z = await r.batch(isZ)
  t.same(a.added.map((x) => x.name).sort(), [S1, W1, W2].sort())
  t.same([...(a as AddressBatch).added.find((x) => x.name === W1)!.value.workload!.addresses[0]!], [10, 0, 0, 1])
  t.same(
    z.added.map((x) => x.name),
    [P1],
  )
  const [st] = r.server.streams
  t.equal(st!.node!.id, NODE.id)
  t.equal(st!.node!.id, 'ztunnel~127.0.0.1~kmesh-abc.kmesh-system~kmesh-system.svc.cluster.local')
  t.same(st!.node!.metadata, {
    NAME: 'kmesh-abc',
    NAMESPACE: 'kmesh-system',
    INSTANCE_IPS: '127.0.0.1',
    NODE_NAME: 'node-1',
    CLUSTER_ID: 'Kubernetes',
  })
  const first = r.server.requests.filter((q) => q.request.responseNonce === '')
  t.same(
    first.map((q) => q.request.typeUrl),
    [A, Z],
    'one first request per type',
  )
  t.ok(first[0]!.request.node && !first[1]!.request.node, 'node only on the first request of the stream')
  for (const q of first)
    t.same([q.request.resourceNamesSubscribe, q.request.resourceNamesUnsubscribe], [[], []], 'legacy wildcard')
  await r.server.waitFor(() => r.server.acks.length >= 2 || undefined)
  t.same(r.server.nacks, [])
  t.same(r.server.acks.map((x) => x.typeUrl).sort(), [A, Z].sort())
  t.same(
    [...r.client.held(A).entries()].map(([n, h]) => [n, h.kind]).sort(),
    [
      [S1, 'service'],
      [W1, 'workload'],
      [W2, 'workload'],
    ].sort(),
  )
  t.equal(r.events.filter((e) => e.type === 'ready').length, 1)
})

t.test('add, update, remove in every order; removals classified', async (t) => {
  const r = await rig(t)
  await r.client.ready
  // workload before its service
  let [n] = r.server.upsertAddresses(wl(W1, 1))
  t.equal((await r.server.reply(n!)).ack, true)
  ;[n] = r.server.upsertAddresses(svc())
  t.equal((await r.server.reply(n!)).ack, true)
  // update: a second IP
  ;[n] = r.server.upsertAddresses(wl(W1, 1, { addresses: [ip4(10, 0, 0, 1), ip4(10, 0, 0, 11)] }))
  await r.server.reply(n!)
  const upd = r.batches.at(-1) as AddressBatch
  t.equal(upd.added[0]!.value.workload!.addresses.length, 2)
  // service removed before its workload, then the workload, then both kinds in one response
  r.server.upsertAddresses(wl(W2, 2))
  ;[n] = r.server.remove(A, [S1])
  await r.server.reply(n!)
  t.same((r.batches.at(-1) as AddressBatch).removed, [{ kind: 'service', name: S1 }])
  r.server.upsertAddresses(svc())
  ;[n] = r.server.remove(A, [W1, S1])
  await r.server.reply(n!)
  t.same((r.batches.at(-1) as AddressBatch).removed, [
    { kind: 'workload', name: W1 },
    { kind: 'service', name: S1 },
  ])
  t.same([...r.client.held(A).keys()], [W2])
  // policies
  ;[n] = r.server.upsertAuthorizations(pol)
  await r.server.reply(n!)
  ;[n] = r.server.remove(Z, [P1])
  await r.server.reply(n!)
  t.same((r.batches.at(-1) as AuthorizationBatch).removed, [{ kind: 'policy', name: P1 }])
  t.same(r.server.nacks, [])
})

t.test('NACK names every bad resource while the good ones in the same push apply', async (t) => {
  const r = await rig(t, {}, { limits: { maxPortsPerService: 10 } })
  await r.client.ready
  const good = encodeAddress(wl(W1, 1))
  const [n] = r.server.pushRaw(A, [
    { name: W1, payload: good },
    { name: 'bad-ip', payload: encodeAddress({ workload: { uid: 'bad-ip', addresses: [ip4(1, 2, 3, 4, 5)] } }) },
    { name: 'dup', payload: encodeAddress({ workload: { uid: 'dup' } }) },
    { name: 'dup', payload: encodeAddress({ workload: { uid: 'dup' } }) },
    {
      name: 'ns/many.ports',
      payload: encodeAddress({
        service: {
          namespace: 'ns',
          hostname: 'many.ports',
          ports: Array.from({ length: 11 }, (_, i) => ({ servicePort: 1000 + i })),
        },
      }),
    },
  ])
  const reply = await r.server.reply(n!)
  t.equal(reply.ack, false, 'NACK')
  t.equal(reply.errorDetail!.code, 3)
  t.match(
    reply.errorDetail!.message,
    /^bad-ip: workload\.addresses\[0\]: IP address must be 4 or 16 bytes, got 5; dup: name appears 2 times in one response; ns\/many\.ports: service\.ports: 11 ports, more than limits\.maxPortsPerService \(10\)$/,
  )
  const b = r.batches.at(-1) as AddressBatch
  t.same(
    b.added.map((x) => x.name),
    [W1],
    'the handler got the good one',
  )
  t.same([...r.client.held(A).keys()], [W1], 'rejected names are not remembered')
  const nack = await r.event('nack')
  t.equal(nack.rejections.length, 3)
})

t.test(
  'the consumer rejects what it cannot apply: NACK with its reason, name not held, resume asks again',
  async (t) => {
    const r = await rig(t)
    await r.client.ready
    r.reject = (b) =>
      isA(b)
        ? b.added.filter((x) => x.name === W2).map((x) => ({ name: x.name, reason: 'frontend map full (ENOSPC)' }))
        : []
    const [n] = r.server.upsertAddresses(wl(W1, 1), wl(W2, 2))
    const reply = await r.server.reply(n!)
    t.equal(reply.ack, false)
    t.equal(reply.errorDetail!.message, `${W2}: frontend map full (ENOSPC)`)
    t.same([...r.client.held(A).keys()], [W1])
    r.reject = () => undefined
    const streamsBefore = r.server.streams.length
    r.server.endStreams(GrpcStatus.UNAVAILABLE, 'istiod restarting')
    await r.server.waitFor(
      () => r.server.streams.length > streamsBefore && r.server.streams.at(-1)!.initialResourceVersions[A],
    )
    t.same(r.server.streams.at(-1)!.initialResourceVersions[A], { [W1]: '' }, 'only the applied name is listed')
    await r.batch((b) => isA(b) && b.added.some((x) => x.name === W2), r.batches.length)
    await r.server.waitFor(() => r.client.held(A).has(W2) || undefined)
    t.pass('the full push on resume delivered the rejected name again and it applied')
  },
)

t.test('a throwing handler NACKs the whole batch and nothing is remembered', async (t) => {
  const r = await rig(t)
  await r.client.ready
  r.reject = () => {
    throw new Error('disk on fire')
  }
  const [n] = r.server.upsertAddresses(wl(W1, 1))
  const reply = await r.server.reply(n!)
  t.equal(reply.errorDetail!.message, `${W1}: handler failed: disk on fire`)
  t.equal(r.client.held(A).size, 0)
})

t.test(
  'stream drop and resume: initial_resource_versions for both types; deletions made during the outage arrive',
  async (t) => {
    const r = await rig(t)
    r.server.setQuietly(A, [wl(W1, 1), wl(W2, 2), svc()])
    r.server.setQuietly(Z, [pol])
    await r.client.ready
    await r.server.waitFor(() => r.server.acks.length >= 2 || undefined)
    // outage: istiod loses W2, the service and the policy while the stream is down
    r.server.setQuietly(A, [], [W2, S1])
    r.server.setQuietly(Z, [], [P1])
    const mark = r.batches.length
    r.server.endStreams(GrpcStatus.UNAVAILABLE, 'connection reset')
    const st2 = await r.server.waitFor(() => r.server.streams[1])
    await r.server.waitFor(() => st2.initialResourceVersions[Z])
    t.same(st2.initialResourceVersions[A], { [W1]: '', [W2]: '', [S1]: '' })
    t.same(st2.initialResourceVersions[Z], { [P1]: '' })
    t.ok(st2.node, 'node again on the new stream')
    const ra = (await r.batch((b) => isA(b) && b.removed.length > 0, mark)) as AddressBatch
    t.same(
      ra.removed.sort((x, y) => x.name.localeCompare(y.name)),
      [
        { kind: 'service', name: S1 },
        { kind: 'workload', name: W2 },
      ],
    )
    const rz = await r.batch((b) => isZ(b) && b.removed.length > 0, mark)
    t.same(rz.removed, [{ kind: 'policy', name: P1 }])
    await r.server.waitFor(() => r.client.held(Z).size === 0 || undefined)
    t.same([...r.client.held(A).keys()], [W1])
    const disc = await r.event('disconnected')
    t.equal(disc.benign, true, 'UNAVAILABLE after a healthy stream is benign')
    t.equal(disc.code, GrpcStatus.UNAVAILABLE)
    t.ok(disc.retryInMs <= 10, `backoff reset: retry in ${disc.retryInMs} ms`)
  },
)

t.test('GOAWAY (Server.drain) is a routine reconnect, not an error', async (t) => {
  const r = await rig(t)
  r.server.setQuietly(A, [wl(W1, 1)])
  await r.client.ready
  r.server.goaway(20)
  const disc = await r.event('disconnected')
  t.equal(disc.benign, true, `benign: code ${disc.code} "${disc.details}"`)
  t.ok(disc.retryInMs <= 10)
  await r.server.waitFor(() => r.server.streams.length >= 2 || undefined)
  await r.server.waitFor(() => r.server.acks.filter((a) => a.streamId === 2).length >= 2 || undefined)
  t.same(r.server.streams[1]!.initialResourceVersions[A], { [W1]: '' })
  t.same(
    r.events.filter((e) => e.type === 'error'),
    [],
  )
  // a push on the new connection still arrives
  const [n] = r.server.upsertAddresses(wl(W2, 2))
  t.equal((await r.server.reply(n!)).ack, true)
})

t.test('istiod-style max connection age: GOAWAY every ~150 ms, every close benign, state intact', async (t) => {
  const r = await rig(t, { maxConnectionAgeMs: 150, maxConnectionAgeGraceMs: 30 })
  r.server.setQuietly(A, [wl(W1, 1)])
  await r.client.ready
  await r.server.waitFor(() => r.server.streams.length >= 4 || undefined, 5000)
  const discs = r.events.filter((e) => e.type === 'disconnected')
  t.ok(discs.length >= 3)
  for (const d of discs) if (d.type === 'disconnected') t.equal(d.benign, true, `code ${d.code} "${d.details}"`)
  t.same(r.server.nacks, [])
  t.same([...r.client.held(A).keys()], [W1])
})

t.test('subscribe / unsubscribe on demand', async (t) => {
  const r = await rig(t, {}, { addresses: { wildcard: false }, authorizations: false })
  await r.client.ready // no wildcard type: ready at once
  await r.server.waitFor(() => r.server.requests[0])
  const q0 = r.server.requests[0]!.request
  t.same([q0.resourceNamesSubscribe, q0.resourceNamesUnsubscribe], [['*'], ['*']], 'Istio "subscribe to nothing"')
  r.server.setQuietly(A, [svc()])
  r.client.subscribe(A, ['default/missing.svc', S1])
  const q1 = await r.server.waitFor(() => r.server.requests[1])
  t.same(q1.request.resourceNamesSubscribe, ['default/missing.svc', S1])
  t.equal(q1.request.responseNonce, '', 'a spontaneous request has no nonce')
  const b = (await r.batch(isA)) as AddressBatch
  t.same(
    b.added.map((x) => x.name),
    [S1],
  )
  t.same(b.removed, [{ kind: 'service', name: 'default/missing.svc' }])
  r.client.unsubscribe(A, [S1])
  const q2 = await r.server.waitFor(() =>
    r.server.requests.find((q) => q.request.resourceNamesUnsubscribe.includes(S1)),
  )
  t.same(q2.request.resourceNamesUnsubscribe, [S1])
  // the remaining names are restated on a new stream, with what is held
  r.server.endStreams()
  const st2 = await r.server.waitFor(() => r.server.requests.find((q) => q.streamId === 2))
  t.same(st2.request.resourceNamesSubscribe, ['default/missing.svc'])
  t.same(st2.request.initialResourceVersions, { [S1]: '' })
})

t.test('a name subscribed while in the legacy wildcard restates "*" explicitly', async (t) => {
  const r = await rig(t, {}, { authorizations: false })
  await r.client.ready
  r.client.subscribe(A, ['net1/10.0.0.1'])
  const q = await r.server.waitFor(() => r.server.requests.find((x) => x.request.resourceNamesSubscribe.length > 0))
  t.same(q.request.resourceNamesSubscribe, ['*', 'net1/10.0.0.1'])
  r.server.endStreams()
  const q2 = await r.server.waitFor(() => r.server.requests.find((x) => x.streamId === 2))
  t.same(q2.request.resourceNamesSubscribe, ['*', 'net1/10.0.0.1'], 'and on resume')
})

t.test('readiness waits for an ACKed first response of every wildcard type', async (t) => {
  const r = await rig(t, { autoRespond: false })
  await r.server.waitFor(() => r.server.requests.length >= 2 || undefined)
  t.equal(r.client.isReady, false)
  let [n] = r.server.pushRaw(A, [{ name: W1, payload: encodeAddress(wl(W1, 1)) }])
  await r.server.reply(n!)
  t.equal(r.client.isReady, false, 'Address alone is not enough')
  ;[n] = r.server.pushRaw(Z, [{ name: 'default/x', payload: new Uint8Array([0xff]) }])
  t.equal((await r.server.reply(n!)).ack, false)
  t.equal(r.client.isReady, false, 'a NACKed first response does not make the type ready')
  ;[n] = r.server.pushRaw(Z, [])
  await r.server.reply(n!)
  await r.client.ready
  t.equal(r.client.isReady, true)
})

t.test('close() before ready rejects ready; an aborted signal closes', async (t) => {
  const ac = new AbortController()
  const r = await rig(t, { autoRespond: false }, { signal: ac.signal })
  ac.abort()
  await t.rejects(r.client.ready, /closed before ready/)
  await r.client.close()
  t.equal(
    r.server.liveStreamCount === 0 || (await r.server.waitFor(() => r.server.liveStreamCount === 0 || undefined)),
    true,
  )
})

t.test(
  'skipUnchanged: a resource sent again with the same bytes is not handed over; changed, rejected and failed ones are',
  async (t) => {
    const r = await rig(t, {}, { skipUnchanged: true })
    await r.client.ready
    let [n] = r.server.upsertAddresses(wl(W1, 1), wl(W2, 2), svc())
    t.equal((await r.server.reply(n!)).ack, true)
    t.equal((r.batches.at(-1) as AddressBatch).added.length, 3)
    // the same three again, W2 changed: only W2 is decoded and handed over
    ;[n] = r.server.upsertAddresses(wl(W1, 1), wl(W2, 22), svc())
    t.equal((await r.server.reply(n!)).ack, true)
    let b = r.batches.at(-1) as AddressBatch
    t.same(
      b.added.map((a) => a.name),
      [W2],
    )
    t.equal(b.unchanged, 2)
    // a reconnect's full push of the same world: nothing to hand over, and it is ACKed
    r.server.setQuietly(A, [wl(W1, 1), wl(W2, 22), svc()])
    const mark = r.batches.length
    r.server.endStreams(GrpcStatus.UNAVAILABLE, 'istiod restarting')
    b = (await r.batch((x) => isA(x), mark)) as AddressBatch
    t.same([b.added.length, b.unchanged, b.removed.length], [0, 3, 0], 'resume: 3 unchanged, none handed over')
    // the consumer rejects W1's update: the next copy of W1 is handed over again even if its bytes are the old ones
    r.reject = (x) =>
      isA(x) ? x.added.filter((a) => a.name === W1).map((a) => ({ name: a.name, reason: 'no room' })) : []
    ;[n] = r.server.upsertAddresses(wl(W1, 11))
    t.equal((await r.server.reply(n!)).ack, false)
    r.reject = () => undefined
    ;[n] = r.server.upsertAddresses(wl(W1, 1))
    t.equal((await r.server.reply(n!)).ack, true)
    t.same(
      (r.batches.at(-1) as AddressBatch).added.map((a) => a.name),
      [W1],
      'the rejected name is decoded again',
    )
    // a throwing handler forgets every digest of its batch
    r.reject = () => {
      throw new Error('disk on fire')
    }
    ;[n] = r.server.upsertAddresses(wl(W2, 22))
    t.equal((await r.server.reply(n!)).ack, true, 'W2 unchanged: nothing handed over, so nothing to fail')
    ;[n] = r.server.upsertAddresses(wl(W2, 23))
    t.equal((await r.server.reply(n!)).ack, false)
    r.reject = () => undefined
    ;[n] = r.server.upsertAddresses(wl(W2, 22))
    t.equal((await r.server.reply(n!)).ack, true)
    t.same(
      (r.batches.at(-1) as AddressBatch).added.map((a) => a.name),
      [W2],
      'after a failed handler the old bytes are handed over again',
    )
  },
)

t.test('without skipUnchanged every resource is handed over, and unchanged is 0', async (t) => {
  const r = await rig(t)
  await r.client.ready
  for (let i = 0; i < 2; i++) {
    const [n] = r.server.upsertAddresses(wl(W1, 1))
    t.equal((await r.server.reply(n!)).ack, true)
    const b = r.batches.at(-1) as AddressBatch
    t.same([b.added.length, b.unchanged], [1, 0])
  }
})

t.test('convertAddress: values handed over converted; a throw rejects that resource; kinds still known', async (t) => {
  const { XdsClient } = await import('../src/index.js')
  const { startTestXdsServer } = await import('../src/testing/index.js')
  const server = await startTestXdsServer()
  t.teardown(() => server.close())
  const batches: ChangeBatch<string>[] = []
  const client = new XdsClient<string>({
    address: server.address,
    tls: 'insecure',
    node: NODE,
    addresses: {},
    authorizations: false,
    convertAddress: (a, name) => {
      if (name === W2) throw new Error('workload web-1: too many services for the backend record')
      return a.workload ? `workload ${a.workload.uid}` : `service ${a.service!.hostname}`
    },
    handler: (b) => {
      batches.push(b)
    },
  })
  t.teardown(() => client.close())
  await client.ready
  const [n] = server.upsertAddresses(wl(W1, 1), wl(W2, 2), svc())
  const reply = await server.reply(n!)
  t.equal(reply.ack, false)
  t.equal(reply.errorDetail!.message, `${W2}: workload web-1: too many services for the backend record`)
  const b = batches.at(-1) as AddressBatch<string>
  t.same(b.added.map((a) => a.value).sort(), [`service web.default.svc.cluster.local`, `workload ${W1}`])
  t.same(
    [...client.held(A).entries()].map(([name, h]) => [name, h.kind]).sort(),
    [
      [S1, 'service'],
      [W1, 'workload'],
    ].sort(),
    'the rejected name is not held; the others with their kind',
  )
})
