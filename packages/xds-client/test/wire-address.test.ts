// The direct Address reader (wire-address.ts) answers only what protobufjs's path answers: random Addresses —
// every field, valid and invalid values, then wire-level changes (unknown fields, a field sent twice, a flipped or
// cut byte) — each decoded both ways. Where the direct reader gives a result it must equal the protobufjs
// path's, key for key and byte for byte; where that path refuses, the direct reader must decline. Seeded:
// KMESH_WIRE_SEED=<n> replays a run.
import t from 'tap'
import { seededRandom } from '@kmesh-ts/testkit'
import { decodeAddressWithProtobufjs, DEFAULT_DECODE_LIMITS } from '../src/decode.js'
import { encodeAddress, type AddressInit } from '../src/encode.js'
import { readAddressDirect } from '../src/wire-address.js'

const CASES = Number(process.env.KMESH_WIRE_CASES ?? 6000)
const { seed, random, pick, chance } = seededRandom('KMESH_WIRE_SEED')
const some = <T>(make: () => T, max: number): T[] => Array.from({ length: Math.floor(random() * (max + 1)) }, make)
const maybe = <T>(p: number, make: () => T): T | undefined => (chance(p) ? make() : undefined)

/** Mostly valid values, sometimes one the validation refuses (rare enough that most cases are valid). */
const text = () =>
  chance(0.98)
    ? pick(['', 'a', 'web-0', 'default', 'Kubernetes', 'cluster.local', 'node-1', 'x'.repeat(70)])
    : 'é-non-ascii'
const ns = () => (chance(0.97) ? pick(['default', 'bench', 'istio-system']) : pick(['', 'Bad_NS', 'a/b']))
const host = () =>
  chance(0.97) ? pick(['web.default.svc.cluster.local', 'api', 'db.bench']) : pick(['', 'bad host', '-x'])
const ip = () =>
  chance(0.97)
    ? pick([Uint8Array.of(10, 0, 0, random() * 255), Uint8Array.from({ length: 16 }, (_, i) => (i === 0 ? 0xfd : i))])
    : pick([new Uint8Array(0), Uint8Array.of(1, 2, 3, 4, 5)])
const port = () => (chance(0.97) ? pick([80, 443, 8080, 15008]) : pick([0, 70000, 2 ** 32 - 1]))
const enumOf = (max: number) => (chance(0.97) ? Math.floor(random() * (max + 1)) : pick([max + 1, 99]))
const ports = () =>
  some(() => ({ servicePort: port(), targetPort: chance(0.2) ? 0 : port(), appProtocol: enumOf(5) }), 3)
const networkAddress = () => ({
  network: pick(['', 'net-1']),
  address: ip(),
  ...(chance(0.3) ? { length: chance(0.95) ? pick([8, 16, 32]) : 200 } : {}),
})
const gateway = () =>
  chance(0.5)
    ? { hostname: { namespace: ns(), hostname: host() }, hboneMtlsPort: 15008 }
    : { address: networkAddress(), hboneMtlsPort: chance(0.5) ? 15008 : 0 }
const extensions = () =>
  some(() => ({ name: text(), config: { typeUrl: 'type.googleapis.com/x', value: Uint8Array.of(1) } }), 2)

function randomWorkload(name: string): AddressInit {
  const uid = chance(0.98) ? name : pick(['', 'other'])
  return {
    workload: {
      uid,
      name: maybe(0.9, text),
      namespace: maybe(0.9, ns),
      addresses: some(ip, 2),
      hostname: maybe(0.1, host),
      network: maybe(0.3, text),
      tunnelProtocol: maybe(0.5, () => enumOf(2)),
      trustDomain: maybe(0.3, text),
      serviceAccount: maybe(0.6, text),
      waypoint: maybe(0.05, gateway),
      networkGateway: maybe(0.05, gateway),
      node: maybe(0.7, text),
      canonicalName: maybe(0.5, text),
      canonicalRevision: maybe(0.5, text),
      workloadType: maybe(0.5, () => enumOf(3)),
      workloadName: maybe(0.5, text),
      nativeTunnel: maybe(0.2, () => chance(0.5)),
      applicationTunnel: maybe(0.05, () => ({ protocol: enumOf(1), port: port() })),
      services: Object.fromEntries(
        some(() => [chance(0.98) ? `${ns()}/${host()}` : 'no-slash', { ports: ports() }] as const, 3),
      ),
      authorizationPolicies: some(() => `${ns()}/${text()}`, 2),
      status: maybe(0.3, () => enumOf(1)),
      clusterId: maybe(0.5, text),
      locality: maybe(0.3, () => ({ region: text(), zone: text(), subzone: text() })),
      networkMode: maybe(0.2, () => enumOf(1)),
      extensions: maybe(0.05, extensions),
      capacity: maybe(0.2, () => pick([0, 1, 5, 2 ** 32 - 1])),
    },
  } as AddressInit
}

function randomService(): { init: AddressInit; name: string } {
  const namespace = ns()
  const hostname = host()
  return {
    name: chance(0.98) ? `${namespace}/${hostname}` : 'other/name',
    init: {
      service: {
        name: maybe(0.9, text),
        namespace,
        hostname,
        addresses: some(networkAddress, 2),
        ports: ports(),
        subjectAltNames: some(() => `spiffe://${text()}`, 2),
        waypoint: maybe(0.05, gateway),
        loadBalancing: maybe(0.2, () => ({
          routingPreference: some(() => enumOf(6), 3),
          mode: enumOf(3),
          healthPolicy: enumOf(1),
        })),
        ipFamilies: maybe(0.3, () => enumOf(3)),
        extensions: maybe(0.05, extensions),
        canonical: maybe(0.3, () => chance(0.5)),
        ingressUseWaypoint: maybe(0.1, () => chance(0.5)),
        weightedWaypoints: maybe(0.05, () => some(() => ({ destination: gateway(), weight: 1 }), 2)),
        visibility: maybe(0.2, () => enumOf(1)),
      },
    } as AddressInit,
  }
}

const varint = (v: number): number[] => {
  const out: number[] = []
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80)
    v = Math.floor(v / 0x80)
  }
  out.push(v)
  return out
}

/** Changes at the wire level: protobufjs's reading of each is the reference. */
function mutate(bytes: Uint8Array): { bytes: Uint8Array; how: string } {
  const b = [...bytes]
  switch (Math.floor(random() * 6)) {
    case 0: {
      // an unknown field at the top level, or inside the workload/service (its length grows with it)
      const extra = chance(0.5) ? [...varint(40 * 8), ...varint(12345)] : [...varint(41 * 8 + 2), 3, 1, 2, 3]
      return { bytes: Uint8Array.from([...b, ...extra]), how: 'unknown field' }
    }
    case 1: {
      // the whole workload/service sent twice
      return { bytes: Uint8Array.from([...b, ...b]), how: 'message twice' }
    }
    case 2: {
      const i = Math.floor(random() * b.length)
      b[i] = Math.floor(random() * 256)
      return { bytes: Uint8Array.from(b), how: `byte ${i} changed` }
    }
    case 3:
      return { bytes: Uint8Array.from(b.slice(0, Math.floor(random() * b.length))), how: 'cut short' }
    case 4: {
      // a varint field of the inner message with an over-long value (protobufjs keeps the low 32 bits)
      const inner = b.slice(2 + (b[1]! >= 0x80 ? 1 : 0))
      const field = b[0] === 0x0a ? pick([5, 12, 14, 17, 25, 27]) : pick([9, 11, 12, 14])
      const big = varint(2 ** 32 + pick([0, 1, 2]))
      const value = field === 27 ? [...varint(27 * 8 + 2), big.length + 1, 8, ...big] : [...varint(field * 8), ...big]
      const added = [...inner, ...value]
      return { bytes: Uint8Array.from([b[0]!, ...varint(added.length), ...added]), how: `field ${field} past 32 bits` }
    }
    default:
      return { bytes: Uint8Array.from(b), how: 'as encoded' }
  }
}

/** A comparable form: byte arrays as plain arrays (protobufjs and the reader may return Buffer or Uint8Array). */
const plain = (v: unknown): unknown =>
  JSON.parse(
    JSON.stringify(v, (_k, x) => (x instanceof Uint8Array ? { bytes: [...x] } : x === undefined ? '<undefined>' : x)),
  )
/** The own keys of every object, in order, to hold the shapes equal too (a key present with undefined included). */
const keysOf = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.map(keysOf)
    : v && typeof v === 'object' && !(v instanceof Uint8Array)
      ? Object.entries(v).map(([k, x]) => [k, keysOf(x)])
      : typeof v

t.test(`the direct reader equals protobufjs's path where it answers (${CASES} random payloads)`, async (t) => {
  t.comment(`seed ${seed} (replay: KMESH_WIRE_SEED=${seed})`)
  let decided = 0
  let declinedValid = 0
  let plainDecided = 0
  let plainCases = 0
  let wrong = 0
  for (let i = 0; i < CASES && wrong < 5; i++) {
    const isWorkload = chance(0.6)
    const { init, name } = isWorkload
      ? { init: randomWorkload('Kubernetes//Pod/default/web-0'), name: 'Kubernetes//Pod/default/web-0' }
      : randomService()
    const encoded = encodeAddress(init)
    const { bytes, how } = chance(0.3) ? mutate(encoded) : { bytes: encoded, how: 'as encoded' }
    const payload = chance(0.5) ? Buffer.from(bytes) : bytes
    const limits = chance(0.1) ? { maxPortsPerService: 1 } : DEFAULT_DECODE_LIMITS
    let slow: unknown
    let slowError: string | undefined
    try {
      slow = decodeAddressWithProtobufjs(payload, name, limits)
    } catch (e) {
      slowError = (e as Error).message
    }
    const fast = readAddressDirect(payload, name, limits)
    const where = () => `case ${i} (${how}): ${JSON.stringify(plain(init)).slice(0, 1500)}`
    if (fast === undefined) {
      if (slowError === undefined) declinedValid++
    } else {
      decided++
      if (slowError !== undefined) {
        wrong++
        t.fail(`protobufjs's path refused (${slowError}), the direct reader answered — ${where()}`)
      } else if (
        JSON.stringify(plain(fast)) !== JSON.stringify(plain(slow)) ||
        JSON.stringify(keysOf(fast)) !== JSON.stringify(keysOf(slow))
      ) {
        wrong++
        t.fail(
          `results differ — ${where()}\n direct:     ${JSON.stringify(plain(fast))}\n protobufjs: ${JSON.stringify(plain(slow))}`,
        )
      }
    }
    // The shape istiod sends for nearly every resource must be decided directly.
    const w = init.workload
    const s = init.service
    const usual =
      how === 'as encoded' &&
      slowError === undefined &&
      !(w?.waypoint || w?.networkGateway || w?.applicationTunnel || w?.extensions) &&
      !(s?.waypoint || s?.extensions || s?.weightedWaypoints) &&
      !JSON.stringify(init).includes('é')
    if (usual) {
      plainCases++
      if (fast !== undefined) plainDecided++
    }
  }
  t.equal(wrong, 0, `${decided} payloads decided directly, none differs`)
  t.equal(plainDecided, plainCases, `every usual payload decided directly (${plainDecided} of ${plainCases})`)
  t.ok(declinedValid > 0, `valid payloads left to protobufjs: ${declinedValid}`)
  t.ok(decided > CASES / 3, `decided directly: ${decided} of ${CASES}`)
})
