/**
 * Node info in local mode: a directory of JSON files shaped like the `KmeshNodeInfo` custom resource (group
 * kmesh.net, version v1alpha1), one per node: `{ apiVersion, kind, metadata: { name }, spec: { spi, addresses,
 * bootID, podCIDRS } }` (note `podCIDRS`, Kmesh's JSON name). A node publishes its own file; every controller reads
 * all of them. Files are written by rename, so a reader never sees half a file. Cluster mode reads the same
 * documents from the Kubernetes API (node-info-k8s.ts) and validates them with nodeInfoFromObject.
 */
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { NodeInfo } from '@kmesh-ts/ipsec/pure'

export const NODE_INFO_API_VERSION = 'kmesh.net/v1alpha1'
export const NODE_INFO_KIND = 'KmeshNodeInfo'

export class NodeInfoError extends Error {
  constructor(
    readonly file: string,
    readonly key: string | undefined,
    message: string,
  ) {
    super(`node info ${file}${key ? ` (${key})` : ''}: ${message}`)
    this.name = 'NodeInfoError'
  }
}

/** The file a node publishes: `<dir>/<name>.json`. */
export function nodeInfoPath(dir: string, name: string): string {
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name))
    throw new NodeInfoError(
      name,
      'metadata.name',
      'a node name must be a DNS-1123 subdomain (lowercase letters, digits, - and .)',
    )
  return join(dir, `${name}.json`)
}

/** The CRD-shaped document of a node. */
export function nodeInfoDocument(n: NodeInfo): object {
  return {
    apiVersion: NODE_INFO_API_VERSION,
    kind: NODE_INFO_KIND,
    metadata: { name: n.name },
    spec: { spi: n.spi, addresses: n.addresses, bootID: n.bootID, podCIDRS: n.podCIDRs },
  }
}

/** Parses one node-info document; `file` names the source in errors. */
export function parseNodeInfo(text: string, file: string): NodeInfo {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw new NodeInfoError(file, undefined, `not JSON (${(err as Error).message})`)
  }
  return nodeInfoFromObject(doc, file)
}

/**
 * Validates an already parsed node-info document (a file's JSON, or a KmeshNodeInfo object from the Kubernetes API);
 * `file` names the source in errors (a path, or `namespace/name` of the custom resource).
 */
export function nodeInfoFromObject(doc: unknown, file: string): NodeInfo {
  const obj = (v: unknown, key: string): Record<string, unknown> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new NodeInfoError(file, key, 'must be an object')
    return v as Record<string, unknown>
  }
  const root = obj(doc, '(document)')
  if (root.kind !== undefined && root.kind !== NODE_INFO_KIND)
    throw new NodeInfoError(file, 'kind', `must be ${NODE_INFO_KIND}, got ${JSON.stringify(root.kind)}`)
  const name = obj(root.metadata, 'metadata').name
  if (typeof name !== 'string' || name === '')
    throw new NodeInfoError(file, 'metadata.name', 'must be a non-empty string')
  const spec = obj(root.spec, 'spec')
  const strings = (key: string): string[] => {
    const v = spec[key]
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string'))
      throw new NodeInfoError(file, `spec.${key}`, 'must be an array of strings')
    return v as string[]
  }
  const spi = spec.spi
  if (typeof spi !== 'number' || !Number.isInteger(spi) || spi < 1 || spi > 0xffffffff)
    throw new NodeInfoError(file, 'spec.spi', `must be an integer from 1 to 4294967295, got ${JSON.stringify(spi)}`)
  if (typeof spec.bootID !== 'string') throw new NodeInfoError(file, 'spec.bootID', 'must be a string')
  return { name, spi, addresses: strings('addresses'), bootID: spec.bootID, podCIDRs: strings('podCIDRS') }
}

/** Every readable node-info file of `dir`; a broken file is reported to `onError` and left out. */
export function readNodeInfoDir(dir: string, onError: (err: NodeInfoError) => void): Map<string, NodeInfo> {
  const out = new Map<string, NodeInfo>()
  let names: string[]
  try {
    names = readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .sort()
  } catch (err) {
    onError(
      new NodeInfoError(
        dir,
        undefined,
        `cannot read the directory (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      ),
    )
    return out
  }
  for (const f of names) {
    const file = join(dir, f)
    try {
      const info = parseNodeInfo(readFileSync(file, 'utf8'), file)
      if (out.has(info.name))
        throw new NodeInfoError(
          file,
          'metadata.name',
          `node ${info.name} is described by another file too; the first one wins`,
        )
      out.set(info.name, info)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue // removed while we listed
      onError(err instanceof NodeInfoError ? err : new NodeInfoError(file, undefined, (err as Error).message))
    }
  }
  return out
}

/** Publishes a node's info atomically (temporary file + rename). */
export function writeNodeInfo(dir: string, info: NodeInfo): string {
  const path = nodeInfoPath(dir, info.name)
  const tmp = join(dir, `.${info.name}.json.${process.pid}.tmp`)
  writeFileSync(tmp, `${JSON.stringify(nodeInfoDocument(info), null, 2)}\n`)
  renameSync(tmp, path)
  return path
}

export function removeNodeInfo(dir: string, name: string): void {
  rmSync(nodeInfoPath(dir, name), { force: true })
}
