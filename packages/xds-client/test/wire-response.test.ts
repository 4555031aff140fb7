// The hand-written DeltaDiscoveryResponse reader (wire.ts over wire-reader.ts) against protobufjs's reflection
// decoder of the same .proto: random responses with every field (and unknown ones), equal field by field;
// truncated and malformed messages refused by both.
import t from 'tap'
import protobuf from 'protobufjs'
import { decodeDeltaResponse } from '../src/wire.js'
import { types } from '../src/proto.js'
import { WireFormatError } from '../src/wire-reader.js'

const SEED = Number(process.env['KMESH_WIRE_SEED'] ?? Date.now() % 1e9)
let state = SEED >>> 0 || 1
const rnd = (n: number): number => {
  state = (Math.imul(state, 1103515245) + 12345) >>> 0
  return (state >>> 8) % n
}
const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!
const text = (): string =>
  pick(['', 'a', 'Kubernetes//Pod/ns/p-1', 'ns/svc.ns.svc.cluster.local', 'näme-ü', '☃'.repeat(40), 'x'.repeat(70)])
const bytes = (): Uint8Array => Uint8Array.from({ length: rnd(40) }, () => rnd(256))

/** Writes `field` as an unknown field of a random wire type (readers must skip it). */
function unknown(w: protobuf.Writer): void {
  const field = 100 + rnd(50)
  switch (rnd(4)) {
    case 0:
      w.uint32((field << 3) | 0).uint64(rnd(1e9) * 1e4)
      break
    case 1:
      w.uint32((field << 3) | 1).fixed64(rnd(1e9))
      break
    case 2:
      w.uint32((field << 3) | 2).bytes(bytes())
      break
    default:
      w.uint32((field << 3) | 5).fixed32(rnd(1e9))
  }
}

function randomResponse(): Uint8Array {
  const w = protobuf.Writer.create()
  const n = rnd(6)
  for (let i = 0; i < n; i++) {
    const r = protobuf.Writer.create()
    if (rnd(4)) r.uint32((3 << 3) | 2).string(text())
    if (!rnd(5))
      r.uint32((8 << 3) | 2)
        .fork()
        .uint32((1 << 3) | 2)
        .string(text())
        .ldelim()
    for (let k = rnd(3); k > 0; k--) r.uint32((4 << 3) | 2).string(text())
    if (rnd(2)) r.uint32((1 << 3) | 2).string(text())
    if (rnd(5)) {
      r.uint32((2 << 3) | 2).fork()
      if (rnd(6)) r.uint32((1 << 3) | 2).string(pick(['type.googleapis.com/istio.workload.Address', text()]))
      if (rnd(6)) r.uint32((2 << 3) | 2).bytes(bytes())
      if (!rnd(4)) unknown(r)
      r.ldelim()
    }
    if (!rnd(6))
      r.uint32((6 << 3) | 2)
        .fork()
        .uint32(8)
        .int64(rnd(1e6))
        .uint32(16)
        .int32(rnd(1e9))
        .ldelim()
    if (!rnd(4)) unknown(r)
    w.uint32((2 << 3) | 2).bytes(r.finish())
  }
  if (rnd(2)) w.uint32((1 << 3) | 2).string(text())
  if (rnd(4)) w.uint32((4 << 3) | 2).string(pick(['type.googleapis.com/istio.workload.Address', text()]))
  if (rnd(4)) w.uint32((5 << 3) | 2).string(text())
  for (let k = rnd(3); k > 0; k--) w.uint32((6 << 3) | 2).string(text())
  for (let k = rnd(3); k > 0; k--)
    w.uint32((8 << 3) | 2)
      .fork()
      .uint32((1 << 3) | 2)
      .string(text())
      .ldelim()
  if (!rnd(3))
    w.uint32((7 << 3) | 2)
      .fork()
      .uint32((1 << 3) | 2)
      .string(text())
      .ldelim()
  for (let k = rnd(2); k > 0; k--) {
    w.uint32((9 << 3) | 2).fork()
    w.uint32((1 << 3) | 2)
      .fork()
      .uint32((1 << 3) | 2)
      .string(text())
      .ldelim()
    w.uint32((2 << 3) | 2)
      .fork()
      .uint32(8)
      .int32(pick([0, 5, 3, -1, -2147483648, 2147483647]))
    w.uint32((2 << 3) | 2).string(text())
    if (rnd(2))
      w.uint32((3 << 3) | 2)
        .fork()
        .uint32((1 << 3) | 2)
        .string(text())
        .uint32((2 << 3) | 2)
        .bytes(bytes())
        .ldelim()
    w.ldelim().ldelim()
  }
  if (!rnd(3)) unknown(w)
  return w.finish()
}

/** protobufjs's reading of the same bytes, in the shape decodeDeltaResponse returns. */
function reference(buf: Uint8Array): unknown {
  // biome-ignore lint/suspicious/noExplicitAny: protobufjs gives the decoded message untyped
  type O = Record<string, any>
  const m = types.deltaResponse.decode(buf) as unknown as O
  const anyOf = (a: O | null | undefined) =>
    a ? { typeUrl: a['type_url'] ?? '', value: Array.from(a['value'] ?? []) } : undefined
  const nameOf = (o: O | null | undefined) => (o ? { name: o['name'] ?? '' } : undefined)
  return {
    systemVersionInfo: m['systemVersionInfo'] ?? '',
    resources: (m['resources'] ?? []).map((r: O) => ({
      name: r['name'] ?? '',
      resourceName: nameOf(r['resourceName']),
      aliases: r['aliases'] ?? [],
      version: r['version'] ?? '',
      resource: anyOf(r['resource']),
      ttl: r['ttl'] ? { seconds: Number(r['ttl'].seconds ?? 0), nanos: r['ttl'].nanos ?? 0 } : undefined,
    })),
    typeUrl: m['typeUrl'] ?? '',
    removedResources: m['removedResources'] ?? [],
    removedResourceNames: (m['removedResourceNames'] ?? []).map(nameOf),
    nonce: m['nonce'] ?? '',
    controlPlane: m['controlPlane'] ? { identifier: m['controlPlane'].identifier ?? '' } : undefined,
    resourceErrors: (m['resourceErrors'] ?? []).map((e: O) => ({
      resourceName: nameOf(e['resourceName']),
      errorDetail: e['errorDetail']
        ? {
            code: e['errorDetail'].code ?? 0,
            message: e['errorDetail'].message ?? '',
            details: (e['errorDetail'].details ?? []).map(anyOf),
          }
        : undefined,
    })),
  }
}

const plain = (res: ReturnType<typeof decodeDeltaResponse>): unknown => ({
  ...res,
  resources: res.resources.map((r) => ({
    ...r,
    resource: r.resource ? { typeUrl: r.resource.typeUrl, value: Array.from(r.resource.value) } : undefined,
  })),
  resourceErrors: res.resourceErrors.map((e) => ({
    ...e,
    errorDetail: e.errorDetail
      ? {
          ...e.errorDetail,
          details: e.errorDetail.details.map((d) => ({ typeUrl: d.typeUrl, value: Array.from(d.value) })),
        }
      : undefined,
  })),
})

t.test(`random responses read as protobufjs reads them (seed ${SEED}, KMESH_WIRE_SEED)`, async (t) => {
  let fields = 0
  for (let i = 0; i < 2000; i++) {
    const buf = randomResponse()
    const ours = plain(decodeDeltaResponse(buf))
    const theirs = reference(buf)
    if (JSON.stringify(ours) !== JSON.stringify(theirs)) {
      t.same(ours, theirs, `response ${i} (${Buffer.from(buf).toString('hex')})`)
      return
    }
    fields += JSON.stringify(ours).length
  }
  t.ok(fields > 100_000, 'the responses were not empty')
})

t.test('payloads are views into the message, not copies', async (t) => {
  const w = protobuf.Writer.create()
  w.uint32((2 << 3) | 2)
    .fork()
    .uint32((3 << 3) | 2)
    .string('w')
    .uint32((2 << 3) | 2)
    .fork()
  w.uint32((2 << 3) | 2)
    .bytes(Uint8Array.of(1, 2, 3))
    .ldelim()
    .ldelim()
  const buf = w.finish()
  const value = decodeDeltaResponse(buf).resources[0]!.resource!.value
  t.same(Array.from(value), [1, 2, 3])
  t.equal(value.buffer, buf.buffer)
})

t.test('malformed messages are refused, as protobufjs refuses them', async (t) => {
  let refused = 0
  for (let i = 0; i < 500; i++) {
    const buf = randomResponse()
    if (buf.length < 4) continue
    const cut = buf.subarray(0, 1 + rnd(buf.length - 1))
    let theirs: unknown
    try {
      theirs = reference(cut)
    } catch {
      theirs = 'error'
    }
    let ours: unknown
    try {
      ours = plain(decodeDeltaResponse(cut))
    } catch (e) {
      if (!(e instanceof WireFormatError)) throw e
      ours = 'error'
    }
    if (ours === 'error') refused++
    if (JSON.stringify(ours) !== JSON.stringify(theirs)) {
      t.same(ours, theirs, `cut ${i} (${Buffer.from(cut).toString('hex')})`)
      return
    }
  }
  t.ok(refused > 50, `${refused} cut messages refused`)
  for (const [hex, why] of [
    ['12ffffffff0f', 'a length past the end'],
    ['13', 'a group (wire type 3)'],
    ['00', 'field number 0'],
    ['08ffffffffffffffffffff01', 'a varint longer than 10 bytes'],
  ] as const) {
    t.throws(() => decodeDeltaResponse(Buffer.from(hex, 'hex')), { name: 'WireFormatError' }, why)
  }
})
