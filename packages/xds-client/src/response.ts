// Turns one DeltaDiscoveryResponse into a change batch: every resource decoded and validated on its own, the
// removals collected and classified, and each bad resource turned into a rejection with a reason
// (docs/reference/istio-workload-api.md §2.2, §3.2). Pure: no I/O, no client state beyond a lookup of held kinds.
import { DEFAULT_DECODE_LIMITS, InvalidResourceError, decodeAddress, decodeAuthorization } from './decode.js'
import type { DecodeLimits } from './decode.js'
import { addressKindByShape } from './names.js'
import { payloadDigest } from './digest.js'
import { nextTurn } from './slices.js'
import { ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL } from './types.js'
import type { Address, Authorization, TypeUrl } from './types.js'
import type { DeltaDiscoveryResponse } from './wire.js'

/** google.rpc.Code NOT_FOUND: a resource error with this code counts as a removal (reference §2.1). */
const NOT_FOUND = 5

/** What a name refers to. Address names are workloads or services; Authorization names are policies. */
export type ResourceKind = 'workload' | 'service' | 'policy'

/** One accepted resource of a response. */
export interface Added<T> {
  /** xDS resource name: workload uid, `namespace/hostname` or `namespace/name` */
  name: string
  /** per-resource version (istiod sends "") */
  version: string
  /** other names the server gave this resource (istiod: `network/IP`) */
  aliases: string[]
  value: T
}

export interface Removal {
  kind: ResourceKind
  name: string
}

/** A resource (or removal) that was not applied, and why. */
export interface Rejection {
  name: string
  reason: string
}

interface BatchBase {
  nonce: string
  systemVersionInfo: string
  removed: Removal[]
  /** resources the client itself rejected (decode/validation); they will be in the NACK */
  rejected: Rejection[]
  /**
   * resources left out because their payload bytes equal those of the copy the consumer holds (only with the
   * client's `skipUnchanged`; 0 otherwise)
   */
  unchanged: number
}
/**
 * `A` is what each accepted Address is handed over as: the decoded Address, or what the client's `convertAddress`
 * made of it.
 */
export interface AddressBatch<A = Address> extends BatchBase {
  typeUrl: typeof ADDRESS_TYPE_URL
  added: Added<A>[]
}
export interface AuthorizationBatch extends BatchBase {
  typeUrl: typeof AUTHORIZATION_TYPE_URL
  added: Added<Authorization>[]
}
/** The changes of one response, for one type. Discriminate on `typeUrl`. */
export type ChangeBatch<A = Address> = AddressBatch<A> | AuthorizationBatch

export interface ProcessOptions {
  limits?: DecodeLimits
  /** What the client already holds under a name, used to classify removals before falling back to shape. */
  heldKind?: (name: string) => ResourceKind | undefined
  /**
   * The payload digest (digest.ts) of the copy held under a name. When given, a resource whose payload has the
   * same digest is not decoded nor added (counted in `unchanged`), and the digest of every other payload is
   * recorded for the caller (buildBatchInSlices).
   */
  heldDigest?: (name: string) => number | undefined
  /**
   * Turns each Address into what the batch carries, right after it is decoded (so the decoded form dies young);
   * a throw rejects that resource with the error's message.
   */
  convertAddress?: (address: Address, name: string) => unknown
}

/**
 * A batch being built, with what the client remembers of it: payload digests and the kind of each Address, in
 * arrays beside `batch.added` (entry i describes added[i]) rather than maps by name: a first push adds 100k names.
 */
export interface BuiltBatch<A = Address> {
  batch: ChangeBatch<A>
  /** the payload digest of each added resource (only with heldDigest) */
  digests: readonly (number | undefined)[]
  /** workload or service, for each Address added */
  kinds: readonly ResourceKind[]
}

export function isWatchedType(typeUrl: string): typeUrl is TypeUrl {
  return typeUrl === ADDRESS_TYPE_URL || typeUrl === AUTHORIZATION_TYPE_URL
}

function resourceName(r: DeltaDiscoveryResponse['resources'][number]): string {
  return r.name !== '' ? r.name : (r.resourceName?.name ?? '')
}

function reasonOf(e: unknown): string {
  return e instanceof InvalidResourceError ? e.message : `unexpected error: ${(e as Error)?.message ?? String(e)}`
}

/**
 * Builds a batch resource by resource, so a caller can do the work in slices and let the event loop breathe
 * between them (a full push can carry 100k resources).
 */
class BatchBuilder {
  readonly total: number
  private readonly limits: DecodeLimits
  private readonly rejected: Rejection[] = []
  private readonly counts = new Map<string, number>()
  private readonly reportedDuplicate = new Set<string>()
  private readonly removedNames = new Set<string>()
  private readonly addedAddr: Added<unknown>[] = []
  /** beside added (BuiltBatch) */
  readonly kinds: ResourceKind[] = []
  private readonly addedAuthz: Added<Authorization>[] = []
  /** beside added: payload digests (only with heldDigest) */
  readonly digests: (number | undefined)[] = []
  private unchanged = 0
  private counted = 0
  private next = 0

  constructor(
    private readonly res: DeltaDiscoveryResponse & { typeUrl: TypeUrl },
    private readonly opts: ProcessOptions,
  ) {
    this.limits = opts.limits ?? DEFAULT_DECODE_LIMITS
    this.total = res.resources.length
    for (const n of res.removedResources) this.removedNames.add(n)
    for (const rn of res.removedResourceNames) this.removedNames.add(rn.name)
    for (const e of res.resourceErrors) {
      const n = e.resourceName?.name
      if (n && e.errorDetail?.code === NOT_FOUND) this.removedNames.add(n)
    }
  }

  get done(): boolean {
    return this.counted >= this.total && this.next >= this.total
  }

  /**
   * Decode and validate up to `count` more resources. The names are counted first (also `count` at a time):
   * delta forbids the same name twice in one response, and every copy is rejected (reference §2.2).
   */
  step(count: number): void {
    if (this.counted < this.total) {
      const end = Math.min(this.total, this.counted + count)
      for (let i = this.counted; i < end; i++) {
        const n = resourceName(this.res.resources[i]!)
        this.counts.set(n, (this.counts.get(n) ?? 0) + 1)
      }
      this.counted = end
      return
    }
    const { res, limits } = this
    const typeUrl = res.typeUrl
    const end = Math.min(this.total, this.next + count)
    for (let i = this.next; i < end; i++) {
      const r = res.resources[i]!
      const name = resourceName(r)
      const reject = (reason: string): void => {
        this.rejected.push({ name: name === '' ? `<resources[${i}]>` : name, reason })
      }
      if (name === '') {
        reject('resource has no name')
        continue
      }
      const count = this.counts.get(name) ?? 0
      if (count > 1) {
        if (!this.reportedDuplicate.has(name)) {
          this.reportedDuplicate.add(name)
          this.rejected.push({ name, reason: `name appears ${count} times in one response` })
        }
        continue
      }
      if (this.removedNames.has(name)) {
        reject('name is both a resource and a removal in one response')
        continue
      }
      if (!r.resource) {
        reject('resource has no payload (TTL heartbeats are not supported)')
        continue
      }
      if (r.resource.typeUrl !== typeUrl) {
        reject(`payload type ${r.resource.typeUrl} is not ${typeUrl}`)
        continue
      }
      let digest: number | undefined
      if (this.opts.heldDigest) {
        digest = payloadDigest(r.resource.value)
        if (this.opts.heldDigest(name) === digest) {
          this.unchanged++
          continue
        }
      }
      try {
        if (typeUrl === ADDRESS_TYPE_URL) {
          const address = decodeAddress(r.resource.value, name, limits)
          const convert = this.opts.convertAddress
          let value: unknown = address
          if (convert) {
            try {
              value = convert(address, name)
            } catch (e) {
              reject((e as Error)?.message ?? String(e))
              continue
            }
          }
          this.kinds.push(address.workload ? 'workload' : 'service')
          this.addedAddr.push({ name, version: r.version, aliases: r.aliases, value })
        } else {
          const value = decodeAuthorization(r.resource.value, name)
          this.addedAuthz.push({ name, version: r.version, aliases: r.aliases, value })
        }
        this.digests.push(digest)
      } catch (e) {
        reject(reasonOf(e))
      }
    }
    this.next = end
  }

  finish(): ChangeBatch<unknown> {
    const { res, opts } = this
    const typeUrl = res.typeUrl
    const removed: Removal[] = []
    for (const name of this.removedNames) {
      if (this.counts.has(name)) continue // already rejected above
      let kind: ResourceKind
      if (typeUrl === AUTHORIZATION_TYPE_URL) kind = 'policy'
      else {
        const held = opts.heldKind?.(name)
        kind = held === 'workload' || held === 'service' ? held : addressKindByShape(name)
      }
      removed.push({ kind, name })
    }
    const base = {
      nonce: res.nonce,
      systemVersionInfo: res.systemVersionInfo,
      removed,
      rejected: this.rejected,
      unchanged: this.unchanged,
    }
    return typeUrl === ADDRESS_TYPE_URL
      ? { ...base, typeUrl, added: this.addedAddr }
      : { ...base, typeUrl, added: this.addedAuthz }
  }
}

/** Build the change batch of a response whose type is Address or Authorization. */
export function processResponse(
  res: DeltaDiscoveryResponse & { typeUrl: typeof ADDRESS_TYPE_URL },
  opts?: ProcessOptions,
): AddressBatch
export function processResponse(
  res: DeltaDiscoveryResponse & { typeUrl: typeof AUTHORIZATION_TYPE_URL },
  opts?: ProcessOptions,
): AuthorizationBatch
export function processResponse(res: DeltaDiscoveryResponse & { typeUrl: TypeUrl }, opts?: ProcessOptions): ChangeBatch
export function processResponse(
  res: DeltaDiscoveryResponse & { typeUrl: TypeUrl },
  opts: ProcessOptions = {},
): ChangeBatch {
  const b = new BatchBuilder(res, opts)
  while (!b.done) b.step(b.total)
  return b.finish() as ChangeBatch
}

/**
 * The same as processResponse, in slices of `sliceSize` resources with a macrotask between slices, so that a big
 * push does not hold the event loop (admin endpoints, timers and the stream keep working).
 */
export async function processResponseInSlices(
  res: DeltaDiscoveryResponse & { typeUrl: TypeUrl },
  opts: ProcessOptions = {},
  sliceSize = 2000,
): Promise<ChangeBatch> {
  return (await buildBatchInSlices(res, opts, sliceSize)).batch as ChangeBatch
}

/** processResponseInSlices, with the payload digests of the resources it decoded (with `opts.heldDigest`). */
export async function buildBatchInSlices(
  res: DeltaDiscoveryResponse & { typeUrl: TypeUrl },
  opts: ProcessOptions = {},
  sliceSize = 2000,
): Promise<BuiltBatch<unknown>> {
  const b = new BatchBuilder(res, opts)
  b.step(sliceSize)
  while (!b.done) {
    await nextTurn()
    b.step(sliceSize)
  }
  return { batch: b.finish(), digests: b.digests, kinds: b.kinds }
}

/**
 * The NACK message: every rejected name and why, joined with "; " (as ztunnel does, reference §3.2), so the
 * operator reading istiod's LastError sees all of them at once.
 */
export function nackMessage(rejections: readonly Rejection[]): string {
  return rejections.map((r) => `${r.name}: ${r.reason}`).join('; ')
}
