// Encoding of workload-API resources: used by the testing server, and by anyone who wants to build payloads.
// Inputs may leave out any field (proto3 defaults apply), so tests can write `{ workload: { uid, addresses } }`.
import { types } from './proto.js'
import type { Address, Authorization, Service, Workload } from './types.js'

/** A recursive partial: every field optional, arrays of partials. */
export type Init<T> = T extends Uint8Array
  ? Uint8Array
  : T extends (infer E)[]
    ? Init<E>[]
    : T extends object
      ? { [K in keyof T]?: Init<T[K]> }
      : T

export type WorkloadInit = Init<Workload>
export type ServiceInit = Init<Service>
export type AddressInit =
  | { workload: WorkloadInit; service?: undefined }
  | { service: ServiceInit; workload?: undefined }
export type AuthorizationInit = Init<Authorization>

/**
 * protobufjs's bundled google.protobuf.Any names its field `type_url`: rewrite every `extensions[].config` on the
 * way out. Not on a hot path (the client only decodes).
 */
function withWireExtensions<T>(o: T): T {
  if (Array.isArray(o)) return o.map(withWireExtensions) as T
  if (o === null || typeof o !== 'object' || o instanceof Uint8Array) return o
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(o)) {
    if (k === 'extensions' && Array.isArray(v)) {
      out[k] = v.map((e: { name?: string; config?: { typeUrl?: string; value?: Uint8Array } }) => ({
        name: e.name,
        config: e.config ? { type_url: e.config.typeUrl, value: e.config.value } : undefined,
      }))
    } else out[k] = withWireExtensions(v)
  }
  return out as T
}

export function encodeAddress(address: AddressInit | Address): Uint8Array {
  let obj: object = address
  if (address.workload && address.workload.capacity !== undefined) {
    // google.protobuf.UInt32Value is a message on the wire
    obj = { workload: { ...address.workload, capacity: { value: address.workload.capacity } } }
  }
  const t = types.address
  return t.encode(t.fromObject(withWireExtensions(obj) as Record<string, unknown>)).finish()
}

export function encodeAuthorization(policy: AuthorizationInit | Authorization): Uint8Array {
  const t = types.authorization
  return t.encode(t.fromObject(withWireExtensions(policy) as Record<string, unknown>)).finish()
}
