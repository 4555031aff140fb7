// Delta discovery messages (docs/reference/istio-workload-api.md §2.1) as plain shapes, and their gRPC
// (de)serializers. Shared by the client and the testing server.
import { types } from './proto.js'
import { LENGTH_DELIMITED, VARINT, WireReader } from './wire-reader.js'
import { drain } from './slices.js'
import type { Any } from './types.js'

/** google.rpc.Status */
export interface RpcStatus {
  code: number
  message: string
  details: Any[]
}

/** A JSON-like value, as carried in google.protobuf.Struct (node metadata). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

/** envoy.config.core.v3.Node, the fields this client sends. */
export interface XdsNode {
  id: string
  cluster?: string
  metadata?: Record<string, JsonValue>
  locality?: { region?: string; zone?: string; subZone?: string }
  userAgentName?: string
  userAgentVersion?: string
  clientFeatures?: string[]
}

export interface DeltaDiscoveryRequest {
  node?: XdsNode | undefined
  typeUrl: string
  resourceNamesSubscribe: string[]
  resourceNamesUnsubscribe: string[]
  initialResourceVersions: Record<string, string>
  responseNonce: string
  errorDetail?: RpcStatus | undefined
}

export interface WireResource {
  name: string
  /** resource_name.name when the server used the ResourceName form (field 8) */
  resourceName?: { name: string } | undefined
  aliases: string[]
  version: string
  resource?: Any | undefined
  ttl?: { seconds: number; nanos: number } | undefined
}

export interface ResourceError {
  resourceName?: { name: string } | undefined
  errorDetail?: RpcStatus | undefined
}

export interface DeltaDiscoveryResponse {
  systemVersionInfo: string
  resources: WireResource[]
  typeUrl: string
  removedResources: string[]
  removedResourceNames: { name: string }[]
  nonce: string
  controlPlane?: { identifier: string } | undefined
  resourceErrors: ResourceError[]
}

/**
 * protobufjs's bundled google.protobuf.Any names its field `type_url` (not camelCase like everything else), so
 * Any values are converted at this boundary.
 */
interface WireAny {
  type_url: string
  value: Uint8Array
}
export function anyToWire(a: Any): WireAny {
  return { type_url: a.typeUrl, value: a.value }
}
export function anyFromWire(a: unknown): Any {
  const w = (a ?? {}) as Partial<WireAny>
  return { typeUrl: w.type_url ?? '', value: w.value ?? new Uint8Array(0) }
}
function statusToWire(s: RpcStatus | undefined): object | undefined {
  return s ? { ...s, details: (s.details ?? []).map(anyToWire) } : undefined
}
function statusFromWire(s: unknown): RpcStatus | undefined {
  if (s === null || s === undefined) return undefined
  const o = s as { code?: number; message?: string; details?: unknown[] }
  return { code: o.code ?? 0, message: o.message ?? '', details: (o.details ?? []).map(anyFromWire) }
}

/** gRPC method path of delta ADS (reference §1.1). */
export const DELTA_ADS_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources'

// toObject with these options yields the shapes above: defaults filled, enums/longs as numbers, bytes kept as
// Buffer. Message fields that are absent come back null and are normalised to undefined below.
const TO_OBJECT = { defaults: true, arrays: true, objects: true, longs: Number, enums: Number } as const

function nullToUndefined<T extends object>(o: T, fields: readonly (keyof T)[]): T {
  for (const f of fields) if (o[f] === null) o[f] = undefined as T[keyof T]
  return o
}

function toStruct(v: Record<string, JsonValue>): object {
  const fields: Record<string, object> = {}
  for (const [k, x] of Object.entries(v)) fields[k] = toValue(x)
  return { fields }
}
function toValue(v: JsonValue): object {
  if (v === null) return { nullValue: 0 }
  if (typeof v === 'string') return { stringValue: v }
  if (typeof v === 'number') return { numberValue: v }
  if (typeof v === 'boolean') return { boolValue: v }
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } }
  return { structValue: toStruct(v) }
}
function fromValue(v: Record<string, unknown>): JsonValue {
  if (typeof v['stringValue'] === 'string') return v['stringValue']
  if (typeof v['numberValue'] === 'number') return v['numberValue']
  if (typeof v['boolValue'] === 'boolean') return v['boolValue']
  const list = v['listValue'] as { values?: Record<string, unknown>[] } | undefined
  if (list) return (list.values ?? []).map(fromValue)
  const st = v['structValue'] as { fields?: Record<string, Record<string, unknown>> } | undefined
  if (st) return fromStruct(st)
  return null
}
function fromStruct(s: { fields?: Record<string, Record<string, unknown>> }): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {}
  for (const [k, v] of Object.entries(s.fields ?? {})) out[k] = fromValue(v)
  return out
}

export function encodeDeltaRequest(req: Partial<DeltaDiscoveryRequest> & { typeUrl: string }): Buffer {
  const obj: Record<string, unknown> = { ...req, errorDetail: statusToWire(req.errorDetail) }
  if (req.node) obj['node'] = { ...req.node, metadata: req.node.metadata ? toStruct(req.node.metadata) : undefined }
  const t = types.deltaRequest
  return Buffer.from(t.encode(t.fromObject(obj)).finish())
}

/** initial_resource_versions is field 5 of DeltaDiscoveryRequest: map<string, string>, one entry per name. */
const INITIAL_VERSIONS_TAG = (5 << 3) | 2

/** Bytes of a varint under 2^31. */
function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5
}
function writeVarint(buf: Buffer, at: number, v: number): number {
  while (v >= 0x80) {
    buf[at++] = (v & 0x7f) | 0x80
    v >>>= 7
  }
  buf[at++] = v
  return at
}

/**
 * The initial_resource_versions entries of a DeltaDiscoveryRequest, encoded by hand a slice of `slice` names at a
 * time, to be appended to the rest of the request as encodeDeltaRequest gives it (protobuf fields may come in
 * any order; map entries add up). A resume restates every held name — 110k of them in a big mesh — and building
 * them as an object for protobufjs held the event loop ~0.2 s on every reconnect. An empty version is left out
 * of its entry, as proto3 encoders do.
 */
export function* encodeInitialVersionsSteps(
  entries: Iterable<readonly [name: string, version: string]>,
  slice: number,
): Generator<void, Buffer, void> {
  const chunks: Buffer[] = []
  const it = entries[Symbol.iterator]()
  const batch: Array<readonly [string, string]> = []
  let next = it.next()
  for (let done = false; !done; ) {
    batch.length = 0
    for (; !next.done && batch.length < slice; next = it.next()) batch.push(next.value)
    done = next.done === true
    let size = 0
    // per entry: the name's bytes, the version's bytes, the entry's size
    const lengths = new Int32Array(batch.length * 3)
    for (let i = 0; i < batch.length; i++) {
      const [name, version] = batch[i]!
      const k = Buffer.byteLength(name)
      const v = version === '' ? 0 : Buffer.byteLength(version)
      const entry = 1 + varintSize(k) + k + (v > 0 ? 1 + varintSize(v) + v : 0)
      lengths[i * 3] = k
      lengths[i * 3 + 1] = v
      lengths[i * 3 + 2] = entry
      size += 1 + varintSize(entry) + entry
    }
    const chunk = Buffer.allocUnsafe(size)
    let at = 0
    for (let i = 0; i < batch.length; i++) {
      const [name, version] = batch[i]!
      const k = lengths[i * 3]!
      const v = lengths[i * 3 + 1]!
      chunk[at++] = INITIAL_VERSIONS_TAG
      at = writeVarint(chunk, at, lengths[i * 3 + 2]!)
      chunk[at++] = (1 << 3) | 2
      at = writeVarint(chunk, at, k)
      at += chunk.write(name, at, 'utf8')
      if (v > 0) {
        chunk[at++] = (2 << 3) | 2
        at = writeVarint(chunk, at, v)
        at += chunk.write(version, at, 'utf8')
      }
    }
    if (size > 0) chunks.push(chunk)
    if (!done) yield
  }
  return Buffer.concat(chunks)
}

export function decodeDeltaRequest(buf: Uint8Array): DeltaDiscoveryRequest {
  const t = types.deltaRequest
  const o = t.toObject(t.decode(buf), TO_OBJECT) as DeltaDiscoveryRequest & { node: unknown; errorDetail: unknown }
  nullToUndefined(o, ['node'])
  o.errorDetail = statusFromWire(o.errorDetail)
  const node = o.node as (XdsNode & { metadata?: unknown }) | undefined
  if (node) {
    nullToUndefined(node, ['locality'])
    node.metadata = node.metadata
      ? fromStruct(node.metadata as { fields?: Record<string, Record<string, unknown>> })
      : {}
  }
  return o
}

export function encodeDeltaResponse(res: Partial<DeltaDiscoveryResponse> & { typeUrl: string; nonce: string }): Buffer {
  const t = types.deltaResponse
  const obj = {
    ...res,
    resources: (res.resources ?? []).map((r) => ({ ...r, resource: r.resource ? anyToWire(r.resource) : undefined })),
    resourceErrors: (res.resourceErrors ?? []).map((e) => ({ ...e, errorDetail: statusToWire(e.errorDetail) })),
  }
  return Buffer.from(t.encode(t.fromObject(obj)).finish())
}

/**
 * Decode a response without converting resource payloads: each `resource.value` stays raw bytes (a view into
 * `buf`, no copy) so the client decodes (and may reject) every resource on its own. Read straight from the wire
 * format (wire-reader.ts): a full push of a big mesh is one message of tens of megabytes, and a graph of protobufjs
 * objects for its envelope cost more than the rest of the client's work on it. Unknown fields are skipped; a
 * singular field given twice keeps the last (as protobufjs does). Throws WireFormatError on a malformed message.
 */
export function decodeDeltaResponse(buf: Uint8Array): DeltaDiscoveryResponse {
  return drain(decodeDeltaResponseSteps(buf, Number.POSITIVE_INFINITY))
}

/**
 * decodeDeltaResponse as a generator that yields after every `slice` resources, so a caller can give the event
 * loop a turn in the middle of a big push (the client does).
 */
export function* decodeDeltaResponseSteps(
  buf: Uint8Array,
  slice: number,
): Generator<void, DeltaDiscoveryResponse, void> {
  const r = new WireReader(buf)
  const out = emptyDeltaResponse()
  while (!r.done) {
    const t = r.rawTag()
    readResponseField(out, t, r)
    if (t === RESOURCES && out.resources.length % slice === 0) yield
  }
  return out
}

export function emptyDeltaResponse(): DeltaDiscoveryResponse {
  return {
    systemVersionInfo: '',
    resources: [],
    typeUrl: '',
    removedResources: [],
    removedResourceNames: [],
    nonce: '',
    controlPlane: undefined,
    resourceErrors: [],
  }
}

/** One top-level field of a DeltaDiscoveryResponse into `out`: `r` is just past its tag `t`. */
export function readResponseField(out: DeltaDiscoveryResponse, t: number, r: WireReader): void {
  if (t === RESOURCES) {
    // The hot field (one per resource of a push): read in place, its tag compared whole.
    out.resources.push(readResource(r))
    return
  }
  const field = Math.floor(t / 8)
  const type = t % 8
  if (field === 1 && type === LENGTH_DELIMITED) out.systemVersionInfo = r.string()
  else if (field === 4 && type === LENGTH_DELIMITED) out.typeUrl = r.string()
  else if (field === 5 && type === LENGTH_DELIMITED) out.nonce = r.string()
  else if (field === 6 && type === LENGTH_DELIMITED) out.removedResources.push(r.string())
  else if (field === 8 && type === LENGTH_DELIMITED) out.removedResourceNames.push(readResourceName(r.message()))
  else if (field === 7 && type === LENGTH_DELIMITED) out.controlPlane = { identifier: firstString(r.message()) }
  else if (field === 9 && type === LENGTH_DELIMITED) {
    const m = r.message()
    const e: ResourceError = { resourceName: undefined, errorDetail: undefined }
    while (!m.done) {
      const [f, t] = m.tag()
      if (f === 1 && t === LENGTH_DELIMITED) e.resourceName = readResourceName(m.message())
      else if (f === 2 && t === LENGTH_DELIMITED) e.errorDetail = readStatus(m.message())
      else m.skip(t)
    }
    out.resourceErrors.push(e)
  } else r.skip(type)
}

/** Tags of the hot fields, field number * 8 + wire type. */
const RESOURCES = (2 << 3) | LENGTH_DELIMITED
const RESOURCE_NAME = (3 << 3) | LENGTH_DELIMITED
const RESOURCE_PAYLOAD = (2 << 3) | LENGTH_DELIMITED
const ANY_TYPE_URL = (1 << 3) | LENGTH_DELIMITED
const ANY_VALUE = (2 << 3) | LENGTH_DELIMITED

/** The last payload type URL read: every resource of a push repeats it, and keeps this one string. */
let lastTypeUrl = ''

/** A Resource, read in place: `r` is at its length. */
function readResource(r: WireReader): WireResource {
  const outer = r.enter()
  const res: WireResource = {
    name: '',
    resourceName: undefined,
    aliases: [],
    version: '',
    resource: undefined,
    ttl: undefined,
  }
  while (!r.done) {
    const t = r.rawTag()
    if (t === RESOURCE_PAYLOAD) {
      res.resource = readAny(r)
      continue
    }
    if (t === RESOURCE_NAME) {
      res.name = r.string()
      continue
    }
    const field = Math.floor(t / 8)
    const type = t % 8
    if (field === 1 && type === LENGTH_DELIMITED) res.version = r.string()
    else if (field === 4 && type === LENGTH_DELIMITED) res.aliases.push(r.string())
    else if (field === 8 && type === LENGTH_DELIMITED) res.resourceName = readResourceName(r.message())
    else if (field === 6 && type === LENGTH_DELIMITED) {
      const m = r.message()
      const ttl = { seconds: 0, nanos: 0 }
      while (!m.done) {
        const [f, t] = m.tag()
        if (f === 1 && t === VARINT) ttl.seconds = m.int64()
        else if (f === 2 && t === VARINT) ttl.nanos = m.int32()
        else m.skip(t)
      }
      res.ttl = ttl
    } else r.skip(type)
  }
  r.leave(outer)
  return res
}

function readResourceName(r: WireReader): { name: string } {
  return { name: firstString(r) }
}

/** Field 1 of a message whose only field we read is a string (ResourceName.name, ControlPlane.identifier). */
function firstString(r: WireReader): string {
  let value = ''
  while (!r.done) {
    const [f, t] = r.tag()
    if (f === 1 && t === LENGTH_DELIMITED) value = r.string()
    else r.skip(t)
  }
  return value
}

/** An Any, read in place: `r` is at its length. */
function readAny(r: WireReader): Any {
  const outer = r.enter()
  let typeUrl = ''
  let value: Uint8Array = EMPTY
  while (!r.done) {
    const t = r.rawTag()
    if (t === ANY_TYPE_URL) typeUrl = lastTypeUrl = r.stringLike(lastTypeUrl)
    else if (t === ANY_VALUE) value = r.bytes()
    else r.skip(t % 8)
  }
  r.leave(outer)
  return { typeUrl, value }
}

function readStatus(r: WireReader): RpcStatus {
  const s: RpcStatus = { code: 0, message: '', details: [] }
  while (!r.done) {
    const [f, t] = r.tag()
    if (f === 1 && t === VARINT) s.code = r.int32()
    else if (f === 2 && t === LENGTH_DELIMITED) s.message = r.string()
    else if (f === 3 && t === LENGTH_DELIMITED) s.details.push(readAny(r))
    else r.skip(t)
  }
  return s
}

const EMPTY = new Uint8Array(0)
