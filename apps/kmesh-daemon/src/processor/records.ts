/**
 * From an intent to map records: the endpoint layout of each service against the buckets the kernel holds now
 * (stable indexes, fewest writes), and the whole image the maps should hold.
 */
import { PRIO_COUNT } from '@kmesh-ts/kernel-abi'
import {
  backendKey,
  backendValue,
  endpointKey,
  endpointValue,
  frontendKey,
  frontendValue,
  serviceKey,
  serviceValue,
  type EndpointKey,
  type EndpointValue,
  type ServiceKey,
} from '@kmesh-ts/bpf-maps/codecs'
import { bucketsOf, emptyImage, encodeRecord, type LbMapName, type MapImage } from '../dataplane/map-image.js'
import { membersByPriority, type Intent, type IntentSink, type ServiceIntent } from './resources.js'
import { drain, endsSlice, type Steps } from '../util/slices.js'

/**
 * Lays out new buckets with as few endpoint writes as possible: a member that stays keeps its indexes, a slot a
 * member no longer needs is filled by the bucket's last entry (indexes stay dense 1..count, docs/reference/kmesh-dataplane.md §3), and
 * new slots are appended in uid order. `wanted` gives each member's number of slots (capacity weights, see
 * @kmesh-ts/lb-model `endpointSlots`); a Set means one slot each.
 */
export function layoutBucket(
  current: readonly number[],
  wanted: ReadonlySet<number> | ReadonlyMap<number, number>,
): number[] {
  const left = new Map<number, number>()
  if (wanted instanceof Map) for (const [uid, n] of wanted) left.set(uid, n)
  else for (const uid of wanted as ReadonlySet<number>) left.set(uid, 1)
  const bucket = [...current]
  for (let i = 0; i < bucket.length; ) {
    const uid = bucket[i]!
    const n = left.get(uid) ?? 0
    if (n > 0) {
      left.set(uid, n - 1)
      i++
      continue
    }
    const last = bucket.pop()!
    if (i < bucket.length) bucket[i] = last
  }
  for (const [uid, n] of [...left].sort((a, b) => a[0] - b[0])) for (let k = 0; k < n; k++) bucket.push(uid)
  return bucket
}

/** Where a service's records go as they are laid out (an image's tables, or encoded records). */
export interface ServiceRecordSink {
  endpoint(key: EndpointKey, value: EndpointValue): void
  service(key: ServiceKey, value: ServiceRecordValue): void
}

/** What the service record is encoded from (its waypoint's address as text or bytes). */
type ServiceRecordValue = Parameters<typeof serviceValue.encode>[0]

const NO_SLOTS: ReadonlyMap<number, number> = new Map()

/**
 * The service record and its endpoint records, laid out against the buckets the kernel holds now, into `sink`;
 * returns the endpoint count per priority. A priority with no member and no endpoint now is skipped: a full
 * recompute lays out 100k services, most with one priority in use.
 */
export function emitServiceRecords(
  serviceId: number,
  svc: ServiceIntent,
  current: readonly (readonly number[])[],
  sink: ServiceRecordSink,
): number[] {
  const wantedByPrio = membersByPriority(svc.members, (uid) => svc.slots?.get(uid) ?? 1)
  const prioEndpointCount: number[] = []
  for (let prio = 0; prio < PRIO_COUNT; prio++) {
    const now = current[prio] ?? []
    const wanted = wantedByPrio[prio]
    if (!wanted && now.length === 0) {
      prioEndpointCount.push(0)
      continue
    }
    const bucket = layoutBucket(now, wanted ?? NO_SLOTS)
    prioEndpointCount.push(bucket.length)
    for (let i = 0; i < bucket.length; i++)
      sink.endpoint({ serviceId, prio, backendIndex: i + 1 }, { backendUid: bucket[i]! })
  }
  sink.service({ serviceId }, { prioEndpointCount, lbPolicy: svc.lbPolicy, ports: svc.ports, waypoint: svc.waypoint })
  return prioEndpointCount
}

/** emitServiceRecords as encoded records (a change of a few services). */
export function serviceRecords(
  serviceId: number,
  svc: ServiceIntent,
  current: readonly (readonly number[])[],
): [LbMapName, Buffer, Buffer][] & { counts: number[] } {
  const out = [] as unknown as [LbMapName, Buffer, Buffer][] & { counts: number[] }
  out.counts = emitServiceRecords(serviceId, svc, current, {
    endpoint: (k, v) => out.push(['endpoint', encodeRecord(endpointKey, k), encodeRecord(endpointValue, v)]),
    service: (k, v) => out.push(['service', encodeRecord(serviceKey, k), encodeRecord(serviceValue, v)]),
  })
  return out
}

/** The image the maps should hold for an intent, given what they hold now (for stable endpoint indexes). */
export function imageOf(intent: Intent, current: MapImage): MapImage {
  return drain(imageOfSteps(intent, current))
}

/** imageOf, yielding every SLICE items. */
export function* imageOfSteps(intent: Intent, current: MapImage): Steps<MapImage> {
  const image = emptyImage()
  const sink = imageSink(image, current)
  let n = 0
  for (const [backendUid, be] of intent.backends) {
    sink.backend(backendUid, be)
    if (endsSlice(++n)) yield
  }
  for (const [serviceId, svc] of intent.services) {
    sink.service(serviceId, svc)
    if (endsSlice(++n)) yield
  }
  for (const [address, upstreamId] of intent.frontends) {
    sink.frontend(address, upstreamId)
    if (endsSlice(++n)) yield
  }
  return image
}

/**
 * Puts each record as it is derived into `image`, endpoints laid out against the buckets `current` holds (what the
 * kernel holds now): backend and frontend records are encoded straight into the image's tables.
 */
export function imageSink(image: MapImage, current: MapImage): IntentSink {
  return {
    backend: (backendUid, be) => image.backend.putEncoded(backendKey, { backendUid }, backendValue, be),
    service: (serviceId, svc) => {
      emitServiceRecords(serviceId, svc, bucketsOf(current, serviceId), {
        endpoint: (k, v) => image.endpoint.putEncoded(endpointKey, k, endpointValue, v),
        service: (k, v) => image.service.putEncoded(serviceKey, k, serviceValue, v),
      })
    },
    frontend: (address, upstreamId) =>
      image.frontend.putEncoded(frontendKey, { address }, frontendValue, { upstreamId }),
  }
}
