// Turns one DeltaDiscoveryResponse into a change batch: every resource decoded and validated on its own, the
// removals collected and classified, and each bad resource turned into a rejection with a reason
// (reference/istio-workload-api.md §2.2, §3.2). Pure: no I/O, no client state beyond a lookup of held kinds.
import { DEFAULT_DECODE_LIMITS, InvalidResourceError, decodeAddress, decodeAuthorization } from './decode.js';
import type { DecodeLimits } from './decode.js';
import { addressKindByShape } from './names.js';
import { ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL } from './types.js';
import type { Address, Authorization, TypeUrl } from './types.js';
import type { DeltaDiscoveryResponse } from './wire.js';

/** google.rpc.Code NOT_FOUND: a resource error with this code counts as a removal (reference §2.1). */
const NOT_FOUND = 5;

/** What a name refers to. Address names are workloads or services; Authorization names are policies. */
export type ResourceKind = 'workload' | 'service' | 'policy';

/** One accepted resource of a response. */
export interface Added<T> {
  /** xDS resource name: workload uid, `namespace/hostname` or `namespace/name` */
  name: string;
  /** per-resource version (istiod sends "") */
  version: string;
  /** other names the server gave this resource (istiod: `network/IP`) */
  aliases: string[];
  value: T;
}

export interface Removal {
  kind: ResourceKind;
  name: string;
}

/** A resource (or removal) that was not applied, and why. */
export interface Rejection {
  name: string;
  reason: string;
}

interface BatchBase {
  nonce: string;
  systemVersionInfo: string;
  removed: Removal[];
  /** resources the client itself rejected (decode/validation); they will be in the NACK */
  rejected: Rejection[];
}
export interface AddressBatch extends BatchBase {
  typeUrl: typeof ADDRESS_TYPE_URL;
  added: Added<Address>[];
}
export interface AuthorizationBatch extends BatchBase {
  typeUrl: typeof AUTHORIZATION_TYPE_URL;
  added: Added<Authorization>[];
}
/** The changes of one response, for one type. Discriminate on `typeUrl`. */
export type ChangeBatch = AddressBatch | AuthorizationBatch;

export interface ProcessOptions {
  limits?: DecodeLimits;
  /** What the client already holds under a name, used to classify removals before falling back to shape. */
  heldKind?: (name: string) => ResourceKind | undefined;
}

export function isWatchedType(typeUrl: string): typeUrl is TypeUrl {
  return typeUrl === ADDRESS_TYPE_URL || typeUrl === AUTHORIZATION_TYPE_URL;
}

function resourceName(r: DeltaDiscoveryResponse['resources'][number]): string {
  return r.name !== '' ? r.name : (r.resourceName?.name ?? '');
}

function reasonOf(e: unknown): string {
  return e instanceof InvalidResourceError ? e.message : `unexpected error: ${(e as Error)?.message ?? String(e)}`;
}

/** Build the change batch of a response whose type is Address or Authorization. */
export function processResponse(
  res: DeltaDiscoveryResponse & { typeUrl: typeof ADDRESS_TYPE_URL },
  opts?: ProcessOptions,
): AddressBatch;
export function processResponse(
  res: DeltaDiscoveryResponse & { typeUrl: typeof AUTHORIZATION_TYPE_URL },
  opts?: ProcessOptions,
): AuthorizationBatch;
export function processResponse(res: DeltaDiscoveryResponse & { typeUrl: TypeUrl }, opts?: ProcessOptions): ChangeBatch;
export function processResponse(res: DeltaDiscoveryResponse & { typeUrl: TypeUrl }, opts: ProcessOptions = {}): ChangeBatch {
  const limits = opts.limits ?? DEFAULT_DECODE_LIMITS;
  const typeUrl = res.typeUrl;
  const rejected: Rejection[] = [];

  // Delta forbids the same name twice in one response; every copy is rejected (reference §2.2).
  const counts = new Map<string, number>();
  for (const r of res.resources) {
    const n = resourceName(r);
    counts.set(n, (counts.get(n) ?? 0) + 1);
  }
  const reportedDuplicate = new Set<string>();

  const removedNames = new Set<string>(res.removedResources);
  for (const rn of res.removedResourceNames) removedNames.add(rn.name);
  for (const e of res.resourceErrors) {
    const n = e.resourceName?.name;
    if (n && e.errorDetail?.code === NOT_FOUND) removedNames.add(n);
  }

  const addedAddr: Added<Address>[] = [];
  const addedAuthz: Added<Authorization>[] = [];
  res.resources.forEach((r, i) => {
    const name = resourceName(r);
    const reject = (reason: string): void => {
      rejected.push({ name: name === '' ? `<resources[${i}]>` : name, reason });
    };
    if (name === '') return reject('resource has no name');
    const count = counts.get(name) ?? 0;
    if (count > 1) {
      if (!reportedDuplicate.has(name)) {
        reportedDuplicate.add(name);
        rejected.push({ name, reason: `name appears ${count} times in one response` });
      }
      return;
    }
    if (removedNames.has(name)) return reject('name is both a resource and a removal in one response');
    if (!r.resource) return reject('resource has no payload (TTL heartbeats are not supported)');
    if (r.resource.typeUrl !== typeUrl) return reject(`payload type ${r.resource.typeUrl} is not ${typeUrl}`);
    try {
      if (typeUrl === ADDRESS_TYPE_URL) {
        const value = decodeAddress(r.resource.value, name, limits);
        addedAddr.push({ name, version: r.version, aliases: r.aliases, value });
      } else {
        const value = decodeAuthorization(r.resource.value, name);
        addedAuthz.push({ name, version: r.version, aliases: r.aliases, value });
      }
    } catch (e) {
      reject(reasonOf(e));
    }
  });

  const removed: Removal[] = [];
  for (const name of removedNames) {
    if (counts.has(name)) continue; // already rejected above
    let kind: ResourceKind;
    if (typeUrl === AUTHORIZATION_TYPE_URL) kind = 'policy';
    else {
      const held = opts.heldKind?.(name);
      kind = held === 'workload' || held === 'service' ? held : addressKindByShape(name);
    }
    removed.push({ kind, name });
  }

  const base = { nonce: res.nonce, systemVersionInfo: res.systemVersionInfo, removed, rejected };
  return typeUrl === ADDRESS_TYPE_URL
    ? { ...base, typeUrl, added: addedAddr }
    : { ...base, typeUrl, added: addedAuthz };
}

/**
 * The NACK message: every rejected name and why, joined with "; " (as ztunnel does, reference §3.2), so the
 * operator reading istiod's LastError sees all of them at once.
 */
export function nackMessage(rejections: readonly Rejection[]): string {
  return rejections.map((r) => `${r.name}: ${r.reason}`).join('; ');
}
