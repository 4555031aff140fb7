// Encoding of workload-API resources: used by the testing server, and by anyone who wants to build payloads.
// Inputs may leave out any field (proto3 defaults apply), so tests can write `{ workload: { uid, addresses } }`.
import { types } from './proto.js';
import type { Address, Authorization, Service, Workload } from './types.js';

/** A recursive partial: every field optional, arrays of partials. */
export type Init<T> = T extends Uint8Array
  ? Uint8Array
  : T extends (infer E)[]
    ? Init<E>[]
    : T extends object
      ? { [K in keyof T]?: Init<T[K]> }
      : T;

export type WorkloadInit = Init<Workload>;
export type ServiceInit = Init<Service>;
export type AddressInit = { workload: WorkloadInit; service?: undefined } | { service: ServiceInit; workload?: undefined };
export type AuthorizationInit = Init<Authorization>;

export function encodeAddress(address: AddressInit | Address): Uint8Array {
  let obj: object = address;
  if (address.workload && address.workload.capacity !== undefined) {
    // google.protobuf.UInt32Value is a message on the wire
    obj = { workload: { ...address.workload, capacity: { value: address.workload.capacity } } };
  }
  const t = types.address;
  return t.encode(t.fromObject(obj as Record<string, unknown>)).finish();
}

export function encodeAuthorization(policy: AuthorizationInit | Authorization): Uint8Array {
  const t = types.authorization;
  return t.encode(t.fromObject(policy as Record<string, unknown>)).finish();
}
