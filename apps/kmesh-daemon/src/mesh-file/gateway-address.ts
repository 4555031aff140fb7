/** GatewayAddress: `waypoint`, `networkGateway`, `weightedWaypoints[].destination` (reference §4.1). */
import { isMap, isScalar } from 'yaml'

import { At, readParsed, readStruct, readUint, type YNode } from './reader.js'
import type { GatewayAddress } from '../model/mesh.js'
import { parseGatewayDestination } from './values.js'

const FIELDS = ['destination', 'hboneMtlsPort'] as const

export function readGatewayAddress(at: At, raw: YNode): GatewayAddress | undefined {
  const node = at.sink.deref(raw)
  if (node && isScalar(node)) {
    at.error(
      `expected a mapping {destination, hboneMtlsPort}, found a scalar; ` +
        `write destination: "${String(node.value)}" and hboneMtlsPort: 15008 under it`,
      node,
    )
    return undefined
  }
  const fields = readStruct(at, node, {
    fields: FIELDS,
    required: FIELDS,
    unknown: 'reject',
    hints: {
      address: 'write `destination: "<network>/<ip>"`',
      hostname: 'write `destination: "<namespace>/<hostname>"`',
    },
    missingHints: { hboneMtlsPort: 'there is no default (usually 15008)' },
  })
  if (!fields) return undefined
  const destEntry = fields.get('destination')
  const portEntry = fields.get('hboneMtlsPort')
  let destination: GatewayAddress['destination'] | undefined
  if (destEntry) {
    const destNode = at.sink.deref(destEntry.value)
    // An untagged enum in ztunnel: serde buffers the value, so it must be a YAML string (as in §2.4).
    const destAt = new At(at.sink, at.entry, at.field('destination').key, true, destNode)
    if (destNode && isMap(destNode)) {
      const get = (k: string): string | undefined => {
        const v = destNode.get(k, true)
        return v && isScalar(v) ? String(v.value) : undefined
      }
      const ns = get('namespace')
      const host = get('hostname')
      const example = ns !== undefined && host !== undefined ? `"${ns}/${host}"` : '"<namespace>/<hostname>"'
      destAt.error(
        `destination is a single string, not a mapping (the protobuf shape does not parse); write destination: ${example}`,
        destNode,
      )
    } else {
      destination = readParsed(destAt, destNode, parseGatewayDestination)
    }
  }
  const port = portEntry ? readUint(at.field('hboneMtlsPort', portEntry.keyNode), portEntry.value, 16) : undefined
  if (!destination || port === undefined) return undefined
  return { destination, hboneMtlsPort: port }
}

/** For messages: the destination as written. */
export function destinationText(g: GatewayAddress): string {
  const d = g.destination
  return d.kind === 'address' ? `${d.network}/${d.ip}` : `${d.namespace}/${d.hostname}`
}
