/**
 * A compiled set as packed records for one generation, ready for one batch write per map. Local node ids become
 * kernel ids in the generation's own range (generation g owns g·AUTHZ_MAX_NODES + 1 .. (g+1)·AUTHZ_MAX_NODES), so
 * the two generations never overwrite each other's nodes.
 */
import {
  type AuthzNode,
  authzAddrKey,
  authzIdentKey,
  authzMapSpecs,
  authzNode,
  authzPortKey,
  authzSrcKey,
  type Codec,
  u32Value,
} from '@kmesh-ts/bpf-maps/codecs'
import { AUTHZ_MAX_NODES } from '@kmesh-ts/kernel-abi'
import type { CompiledAuthz, CompiledRoot } from './compile.js'
import type { NodeTable } from './diagram.js'

/** `count` keys and values packed back to back. */
export interface PackedRecords {
  keys: Uint8Array
  values: Uint8Array
  count: number
}

export type AuthzMapRole = 'root' | 'sourceIdentity' | 'node' | 'port' | 'source' | 'identity'

/** The kernel id of local node `local` in generation `gen` (0 stays 0: "no node"). */
export const kernelNodeId = (local: number, gen: number): number => (local === 0 ? 0 : gen * AUTHZ_MAX_NODES + local)

function pack<T, K, V>(
  items: readonly T[],
  keyCodec: Codec<K>,
  valueCodec: Codec<V>,
  toRecord: (item: T) => [K, V],
): PackedRecords {
  const keys = new Uint8Array(items.length * keyCodec.size)
  const values = new Uint8Array(items.length * valueCodec.size)
  items.forEach((item, i) => {
    const [k, v] = toRecord(item)
    keyCodec.encode(k, keys, i * keyCodec.size)
    valueCodec.encode(v, values, i * valueCodec.size)
  })
  return { keys, values, count: items.length }
}

/** Every record of the set in generation `gen`, per map role (authzMapSpecs names the maps). */
export function encodeGeneration(set: CompiledAuthz, gen: number): Record<AuthzMapRole, PackedRecords> {
  return {
    root: encodeRoots(set.roots, gen),
    sourceIdentity: encodeSources(set.sources, gen),
    ...encodeTable(set.table, gen, { node: 1, portEdge: 0, sourceEdge: 0, identityEdge: 0 }),
  }
}

/** Source addresses and their identity ids (km_authz_srcid) in generation `gen`. */
export function encodeSources(
  sources: ReadonlyArray<{ address: Uint8Array; identity: number }>,
  gen: number,
): PackedRecords {
  return pack(sources, authzAddrKey, u32Value, (s) => [{ gen, address: s.address }, s.identity])
}

export function encodeRoots(roots: readonly CompiledRoot[], gen: number): PackedRecords {
  return pack(roots, authzAddrKey, u32Value, (r) => [{ gen, address: r.address }, kernelNodeId(r.node, gen)])
}

/**
 * The table's nodes and edges in generation `gen`, from the given positions on (local node id, edge indexes):
 * all of them for a whole set, or only what updateRoots added to the table.
 */
export function encodeTable(
  table: NodeTable,
  gen: number,
  from: { node: number; portEdge: number; sourceEdge: number; identityEdge: number },
): Record<'node' | 'port' | 'source' | 'identity', PackedRecords> {
  const id = (local: number) => kernelNodeId(local, gen)
  const nodes = table.nodes.slice(from.node).map((n, i) => [from.node + i, n] as const)
  return {
    node: pack(nodes, u32Value, authzNode, ([local, n]): [number, AuthzNode] => [
      id(local),
      { ...n, next: id(n.next) },
    ]),
    port: pack(table.portEdges.slice(from.portEdge), authzPortKey, u32Value, (e) => [
      { node: id(e.node), port: e.port },
      id(e.child),
    ]),
    source: pack(table.sourceEdges.slice(from.sourceEdge), authzSrcKey, u32Value, (e) => [
      { node: id(e.node), prefixLength: e.prefix.length, address: e.prefix.bytes },
      id(e.child),
    ]),
    identity: pack(table.identityEdges.slice(from.identityEdge), authzIdentKey, u32Value, (e) => [
      { node: id(e.node), identity: e.identity },
      id(e.child),
    ]),
  }
}

/** The map each role is written to. */
export const mapOfRole: Record<AuthzMapRole, string> = {
  root: authzMapSpecs.root.name,
  sourceIdentity: authzMapSpecs.sourceIdentity.name,
  node: authzMapSpecs.node.name,
  port: authzMapSpecs.port.name,
  source: authzMapSpecs.source.name,
  identity: authzMapSpecs.identity.name,
}
