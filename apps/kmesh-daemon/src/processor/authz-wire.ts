/**
 * A mesh-file policy (model/mesh.ts, ztunnel's local-config format) in the wire form istiod sends
 * (`istio.security.Authorization` as @kmesh-ts/xds-client decodes it), so both sources feed one compiler. The mesh
 * file was validated on load (CIDRs canonical, string matches typed), so nothing is dropped here.
 */
import { parseCidr } from '@kmesh-ts/ip'
import type {
  Authorization,
  AuthorizationAddress,
  Match as WireMatch,
  StringMatch as WireString,
} from '@kmesh-ts/xds-client'
import type { Match, Policy, StringMatch } from '../model/index.js'

const SCOPE = { Global: 0, Namespace: 1, WorkloadSelector: 2 } as const
const ACTION = { Allow: 0, Deny: 1 } as const

function wireString(s: StringMatch): WireString {
  if (s.kind === 'Presence') return { presence: {} }
  if (s.kind === 'Exact') return { exact: s.value }
  if (s.kind === 'Prefix') return { prefix: s.value }
  return { suffix: s.value }
}

function wireAddress(cidr: string): AuthorizationAddress {
  const c = parseCidr(cidr)
  return { address: c.address, length: c.prefixLength }
}

function wireMatch(m: Match): WireMatch {
  return {
    namespaces: m.namespaces.map(wireString),
    notNamespaces: m.notNamespaces.map(wireString),
    principals: m.principals.map(wireString),
    notPrincipals: m.notPrincipals.map(wireString),
    serviceAccounts: m.serviceAccounts.map((s) => ({ ...s })),
    notServiceAccounts: m.notServiceAccounts.map((s) => ({ ...s })),
    sourceIps: m.sourceIps.map(wireAddress),
    notSourceIps: m.notSourceIps.map(wireAddress),
    destinationIps: m.destinationIps.map(wireAddress),
    notDestinationIps: m.notDestinationIps.map(wireAddress),
    destinationPorts: [...m.destinationPorts],
    notDestinationPorts: [...m.notDestinationPorts],
    extensions: [],
  }
}

export function policyToWire(p: Policy): Authorization {
  return {
    name: p.name,
    namespace: p.namespace,
    scope: SCOPE[p.scope],
    action: ACTION[p.action],
    dryRun: p.dryRun,
    extensions: [],
    rules: p.rules.map((clauses) => ({ clauses: clauses.map((matches) => ({ matches: matches.map(wireMatch) })) })),
  }
}
