/**
 * Matching one connection against one Authorization, with ztunnel's semantics as docs/reference/istio-l4-authz.md
 * describes them (§4). Written from that text; the later kernel implementation is compared against this.
 *
 * A policy is first *compiled* the way ztunnel converts it on arrival (§4.2 "Invalid entries are dropped at
 * ingest"): StringMatches without a type and unusable addresses are dropped, ports are narrowed to 16 bits. Only
 * then is a Match judged empty (§4.1: a Match can *become* empty at conversion).
 */
import { type Cidr, cidrContains } from '@kmesh-ts/ip'
import type { Authorization, AuthorizationAddress, Match, ServiceAccountMatch, StringMatch } from '@kmesh-ts/xds-client'

/** The source identity: a SPIFFE id `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`. */
export interface Identity {
  trustDomain: string
  namespace: string
  serviceAccount: string
}

/** One connection as the matcher sees it: canonical addresses (v4-mapped folded to IPv4, §4.2), the port. */
export interface Connection {
  srcIp: Uint8Array
  /** undefined: plaintext, no identity (§4.2, §5.1 plaintext passthrough). */
  identity: Identity | undefined
  dstIp: Uint8Array
  dstPort: number
}

type Str = { kind: 'exact' | 'prefix' | 'suffix'; value: string } | { kind: 'presence' }

interface CompiledMatch {
  namespaces: Str[]
  notNamespaces: Str[]
  serviceAccounts: ServiceAccountMatch[]
  notServiceAccounts: ServiceAccountMatch[]
  principals: Str[]
  notPrincipals: Str[]
  sourceIps: Cidr[]
  notSourceIps: Cidr[]
  destinationIps: Cidr[]
  notDestinationIps: Cidr[]
  destinationPorts: number[]
  notDestinationPorts: number[]
}

/** rule → clause → match, after ingest. */
export type CompiledRules = CompiledMatch[][][]

/**
 * A StringMatch's one member. The decoded oneof has at most one; a hand-built object with several is read in the
 * proto's field order (exact, prefix, suffix, presence). None → `undefined`: dropped at ingest (§4.1).
 */
function compileString(s: StringMatch): Str | undefined {
  if (s.exact !== undefined) return { kind: 'exact', value: s.exact }
  if (s.prefix !== undefined) return { kind: 'prefix', value: s.prefix }
  if (s.suffix !== undefined) return { kind: 'suffix', value: s.suffix }
  if (s.presence !== undefined) return { kind: 'presence' }
  return undefined
}

/**
 * §4.2 Source and destination IPs: 4 bytes → IPv4, 16 → IPv6 (an IPv4-mapped entry stays IPv6), any other length
 * is dropped; `length` is narrowed to u8 *before* the bound check (256 → 0), then a prefix over 32/128 is dropped.
 * Host bits in the address are kept and ignored by containment.
 */
function compileAddress(a: AuthorizationAddress): Cidr | undefined {
  const bytes = a.address
  if (bytes.length !== 4 && bytes.length !== 16) return undefined
  const family = bytes.length === 4 ? 4 : 6
  const prefixLength = (a.length >>> 0) & 0xff
  if (prefixLength > (family === 4 ? 32 : 128)) return undefined
  return { address: bytes, prefixLength, family }
}

function defined<T>(x: T | undefined): x is T {
  return x !== undefined
}

const strings = (list: readonly StringMatch[]): Str[] => list.map(compileString).filter(defined)
const addresses = (list: readonly AuthorizationAddress[]): Cidr[] => list.map(compileAddress).filter(defined)
/** §4.2 Destination ports: the u32 is narrowed to u16 (`as u16`: 65616 → 80). */
const ports = (list: readonly number[]): number[] => list.map((p) => (p >>> 0) & 0xffff)

function compileMatch(m: Match): CompiledMatch {
  return {
    namespaces: strings(m.namespaces),
    notNamespaces: strings(m.notNamespaces),
    serviceAccounts: [...m.serviceAccounts],
    notServiceAccounts: [...m.notServiceAccounts],
    principals: strings(m.principals),
    notPrincipals: strings(m.notPrincipals),
    sourceIps: addresses(m.sourceIps),
    notSourceIps: addresses(m.notSourceIps),
    destinationIps: addresses(m.destinationIps),
    notDestinationIps: addresses(m.notDestinationIps),
    destinationPorts: ports(m.destinationPorts),
    notDestinationPorts: ports(m.notDestinationPorts),
  }
}

/** The policy's rules as ztunnel holds them after conversion (§4.2 ingest). */
export function compileRules(policy: Pick<Authorization, 'rules'>): CompiledRules {
  return policy.rules.map((rule) => rule.clauses.map((clause) => clause.matches.map(compileMatch)))
}

/** §4.1 Empty Match: all twelve lists empty (extensions do not count). */
function isEmpty(m: CompiledMatch): boolean {
  return (
    m.namespaces.length === 0 &&
    m.notNamespaces.length === 0 &&
    m.serviceAccounts.length === 0 &&
    m.notServiceAccounts.length === 0 &&
    m.principals.length === 0 &&
    m.notPrincipals.length === 0 &&
    m.sourceIps.length === 0 &&
    m.notSourceIps.length === 0 &&
    m.destinationIps.length === 0 &&
    m.notDestinationIps.length === 0 &&
    m.destinationPorts.length === 0 &&
    m.notDestinationPorts.length === 0
  )
}

/** §4.2 StringMatch kinds, case-sensitive; presence: the value is not empty. */
function stringMatches(s: Str, value: string): boolean {
  switch (s.kind) {
    case 'exact':
      return value === s.value
    case 'prefix':
      return value.startsWith(s.value)
    case 'suffix':
      return value.endsWith(s.value)
    case 'presence':
      return value !== ''
  }
}

const SPIFFE = 'spiffe://'

/**
 * §4.2 Principals: the identity is rendered `spiffe://<td>/ns/<ns>/sa/<sa>` and compared with `spiffe://` stripped,
 * so policy values are written without the scheme; a policy value containing `spiffe://` never matches. With no
 * identity every StringMatch is false, presence included.
 */
function principalMatches(s: Str, identity: Identity | undefined): boolean {
  if (identity === undefined) return false
  if (s.kind !== 'presence' && s.value.includes(SPIFFE)) return false
  return stringMatches(s, `${identity.trustDomain}/ns/${identity.namespace}/sa/${identity.serviceAccount}`)
}

/**
 * §4.2 Namespaces: the value is the identity's namespace; "With no identity the value is `""`" — so presence (and
 * every non-empty pattern) fails for a plaintext source, which is §4.2 "Connections without an identity".
 */
function namespaceMatches(s: Str, identity: Identity | undefined): boolean {
  return stringMatches(s, identity?.namespace ?? '')
}

/** §4.2 Service accounts: namespace and service account equal, trust domain ignored; no identity → false. */
function serviceAccountMatches(sa: ServiceAccountMatch, identity: Identity | undefined): boolean {
  return identity !== undefined && identity.namespace === sa.namespace && identity.serviceAccount === sa.serviceAccount
}

/**
 * §4.1 "Inside a Match": positives satisfied when the list is empty or any entry matches; negatives when the list
 * is empty or no entry matches. Because the negative of a no-identity check is "no entry matches", the `not_*`
 * identity forms always hold for a plaintext source (§4.2 "Connections without an identity").
 */
function family<T>(pos: readonly T[], neg: readonly T[], test: (x: T) => boolean): boolean {
  return (pos.length === 0 || pos.some(test)) && !neg.some(test)
}

/** §4.1: every family of a non-empty Match AND-ed. The caller has skipped empty Matches. */
function matchMatches(m: CompiledMatch, c: Connection): boolean {
  return (
    family(m.destinationIps, m.notDestinationIps, (n) => cidrContains(n, c.dstIp)) &&
    family(m.sourceIps, m.notSourceIps, (n) => cidrContains(n, c.srcIp)) &&
    family(m.destinationPorts, m.notDestinationPorts, (p) => p === c.dstPort) &&
    family(m.serviceAccounts, m.notServiceAccounts, (sa) => serviceAccountMatches(sa, c.identity)) &&
    family(m.principals, m.notPrincipals, (s) => principalMatches(s, c.identity)) &&
    family(m.namespaces, m.notNamespaces, (s) => namespaceMatches(s, c.identity))
  )
}

/**
 * §4.1 structure: the index of the first matching rule, or -1. Zero rules → never matches; a rule with zero
 * clauses matches; clauses AND-ed; a clause with zero matches matches; matches OR-ed; an empty Match is skipped
 * (counts as not matching).
 */
export function firstMatchingRule(rules: CompiledRules, c: Connection): number {
  return rules.findIndex((clauses) =>
    clauses.every((matches) => matches.length === 0 || matches.some((m) => !isEmpty(m) && matchMatches(m, c))),
  )
}
