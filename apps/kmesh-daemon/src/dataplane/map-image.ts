/**
 * A byte-exact image of the four load-balancing maps: what the kernel holds (the mirror, updated only after the
 * kernel accepted a write) or what it should hold. Records are compared as bytes, so a plan writes exactly the
 * entries that differ.
 */
import { PRIO_COUNT } from '@kmesh-ts/kernel-abi'
import { endpointKey, endpointValue, serviceKey, serviceValue, type Codec } from '@kmesh-ts/bpf-maps/codecs'

/** The maps in the order a put must go (leaf to root): a record is written before anything refers to it. */
export const LB_MAPS = ['backend', 'endpoint', 'service', 'frontend'] as const
export type LbMapName = (typeof LB_MAPS)[number]

export interface MapRecord {
  key: Buffer
  value: Buffer
}
/** Per map, records by their key as hex. */
export type MapImage = Record<LbMapName, Map<string, MapRecord>>

/** Record-level changes: the records to put and the records to delete, per map. */
export interface RecordChanges {
  put: MapImage
  delete: MapImage
}

/**
 * One record encoded into a zeroed buffer. Records are a few bytes each and a full sync makes hundreds of
 * thousands: slices of Node's shared buffer pool (Buffer.allocUnsafe below 4 KiB) instead of one ArrayBuffer
 * per record (Buffer.alloc) cut allocation and garbage-collection time several-fold.
 */
export function encodeRecord<T>(codec: Codec<T>, value: T): Buffer {
  const buf = Buffer.allocUnsafe(codec.size).fill(0)
  codec.encode(value, buf, 0)
  return buf
}

export function emptyImage(): MapImage {
  return { backend: new Map(), endpoint: new Map(), service: new Map(), frontend: new Map() }
}

export function putRecord(image: MapImage, map: LbMapName, key: Buffer, value: Buffer): void {
  image[map].set(key.toString('hex'), { key, value })
}

/** The endpoint buckets of a service as the image holds them: buckets[prio][index-1] = backend uid. */
export function bucketsOf(image: MapImage, serviceId: number): number[][] {
  const rec = image.service.get(encodeRecord(serviceKey, { serviceId }).toString('hex'))
  const counts = rec ? serviceValue.decode(rec.value).prioEndpointCount : []
  return Array.from({ length: PRIO_COUNT }, (_, prio) => {
    const out: number[] = []
    for (let index = 1; index <= (counts[prio] ?? 0); index++) {
      const ep = image.endpoint.get(encodeRecord(endpointKey, { serviceId, prio, backendIndex: index }).toString('hex'))
      if (!ep) break // a hole can only come from a foreign writer; stop so indexes stay dense
      out.push(endpointValue.decode(ep.value).backendUid)
    }
    return out
  })
}
