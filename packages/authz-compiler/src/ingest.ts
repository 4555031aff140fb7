/**
 * One policy as the kernel will judge it: every Match reduced to what a SYN can be tested on. Written from
 * docs/reference/istio-l4-authz.md §4 on its own — it shares no code with @kmesh-ts/authz (the model the kernel is
 * compared with), so a misreading here shows up as a disagreement in the property test instead of hiding in both.
 *
 * Ingest (§4.2): a StringMatch without a kind and an address that is not 4 or 16 bytes, or whose prefix (narrowed
 * to a byte) is too long for its family, are dropped; ports are narrowed to 16 bits. A Match left with nothing
 * (§4.1 "Empty Match") never matches.
 */
import type { Authorization, Match, ServiceAccountMatch, StringMatch } from '@kmesh-ts/xds-client'

/** A CIDR: family 4 (4 bytes) or 6 (16 bytes), the address with host bits cleared. */
export interface Prefix {
  family: 4 | 6
  bytes: Uint8Array
  length: number
}

export type StringTest =
  | { kind: 'exact'; value: string }
  | { kind: 'prefix'; value: string }
  | { kind: 'suffix'; value: string }
  | { kind: 'presence' }

/** The identity part of a Match: decided per known identity by `identityHolds`. */
export interface IdentityTests {
  namespaces: StringTest[]
  notNamespaces: StringTest[]
  principals: StringTest[]
  notPrincipals: StringTest[]
  serviceAccounts: ServiceAccountMatch[]
  notServiceAccounts: ServiceAccountMatch[]
}

/** A Match after ingest. `undefined` positives mean "no constraint" (the list was empty). */
export interface MatchTests {
  dstIps: Prefix[] | undefined
  notDstIps: Prefix[]
  ports: Set<number> | undefined
  notPorts: Set<number>
  srcIps: Prefix[] | undefined
  notSrcIps: Prefix[]
  /** undefined: the Match tests no identity field */
  identity: IdentityTests | undefined
}

/** rule → clause → matches. A clause that had no matches at all is `'always'` (§4.1: it matches). */
export type PolicyTests = Array<Array<MatchTests[] | 'always'>>

function stringTest(s: StringMatch): StringTest | undefined {
  if (s.exact !== undefined) return { kind: 'exact', value: s.exact }
  if (s.prefix !== undefined) return { kind: 'prefix', value: s.prefix }
  if (s.suffix !== undefined) return { kind: 'suffix', value: s.suffix }
  if (s.presence !== undefined) return { kind: 'presence' }
  return undefined
}

function prefixOf(address: Uint8Array, rawLength: number): Prefix | undefined {
  if (address.length !== 4 && address.length !== 16) return undefined
  const family = address.length === 4 ? 4 : 6
  const length = rawLength & 0xff // u32 narrowed to u8 before the bound check
  if (length > address.length * 8) return undefined
  const bytes = new Uint8Array(address.length)
  for (let bit = 0; bit < length; bit += 8) {
    const i = bit >> 3
    const keep = Math.min(8, length - bit)
    bytes[i] = (address[i] as number) & ((0xff << (8 - keep)) & 0xff)
  }
  return { family, bytes, length }
}

const keepDefined = <T>(list: Array<T | undefined>): T[] => list.filter((x): x is T => x !== undefined)

function ingestMatch(m: Match): MatchTests | undefined {
  const strings = (l: readonly StringMatch[]) => keepDefined(l.map(stringTest))
  const prefixes = (l: readonly { address: Uint8Array; length: number }[]) =>
    keepDefined(l.map((a) => prefixOf(a.address, a.length)))
  const ports = (l: readonly number[]) => new Set(l.map((p) => (p >>> 0) & 0xffff))
  const identity: IdentityTests = {
    namespaces: strings(m.namespaces),
    notNamespaces: strings(m.notNamespaces),
    principals: strings(m.principals),
    notPrincipals: strings(m.notPrincipals),
    serviceAccounts: [...m.serviceAccounts],
    notServiceAccounts: [...m.notServiceAccounts],
  }
  const dstIps = prefixes(m.destinationIps)
  const notDstIps = prefixes(m.notDestinationIps)
  const srcIps = prefixes(m.sourceIps)
  const notSrcIps = prefixes(m.notSourceIps)
  const portSet = ports(m.destinationPorts)
  const notPorts = ports(m.notDestinationPorts)
  const identityEmpty = Object.values(identity).every((l) => l.length === 0)
  const empty =
    identityEmpty &&
    dstIps.length + notDstIps.length + srcIps.length + notSrcIps.length + portSet.size + notPorts.size === 0
  if (empty) return undefined
  return {
    dstIps: dstIps.length > 0 ? dstIps : undefined,
    notDstIps,
    ports: portSet.size > 0 ? portSet : undefined,
    notPorts,
    srcIps: srcIps.length > 0 ? srcIps : undefined,
    notSrcIps,
    identity: identityEmpty ? undefined : identity,
  }
}

/** A policy's rules after ingest; empty Matches are gone (a clause of only empty Matches has none left). */
export function ingestPolicy(policy: Pick<Authorization, 'rules'>): PolicyTests {
  return policy.rules.map((rule) =>
    rule.clauses.map((clause) =>
      clause.matches.length === 0 ? 'always' : keepDefined(clause.matches.map(ingestMatch)),
    ),
  )
}

/** Does `prefix` contain every address of `inner` (same family, not longer, same leading bits)? */
export function prefixCovers(prefix: Prefix, inner: Prefix): boolean {
  if (prefix.family !== inner.family || prefix.length > inner.length) return false
  for (let bit = 0; bit < prefix.length; bit += 8) {
    const i = bit >> 3
    const keep = Math.min(8, prefix.length - bit)
    const mask = (0xff << (8 - keep)) & 0xff
    if (((inner.bytes[i] as number) & mask) !== (prefix.bytes[i] as number)) return false
  }
  return true
}

/** An address as a full-length prefix. */
export function hostPrefix(bytes: Uint8Array): Prefix {
  return { family: bytes.length === 4 ? 4 : 6, bytes, length: bytes.length * 8 }
}

// --- identities ---------------------------------------------------------------------------------------------------

/** A source identity as the mesh gives it to an address (SPIFFE: `<trustDomain>/ns/<namespace>/sa/<serviceAccount>`). */
export interface SourceIdentity {
  trustDomain: string
  namespace: string
  serviceAccount: string
}

function stringHolds(t: StringTest, value: string): boolean {
  if (t.kind === 'presence') return value.length > 0
  if (t.kind === 'exact') return value === t.value
  if (t.kind === 'prefix') return value.startsWith(t.value)
  return value.endsWith(t.value)
}

/** §4.2 Principals: compared without the `spiffe://` scheme; a pattern holding the scheme never matches. */
function principalHolds(t: StringTest, id: SourceIdentity | undefined): boolean {
  if (!id) return false
  if (t.kind !== 'presence' && t.value.includes('spiffe://')) return false
  return stringHolds(t, `${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`)
}

/** Positives: empty or any holds; negatives: none holds. */
function listHolds<T>(pos: readonly T[], neg: readonly T[], holds: (x: T) => boolean): boolean {
  if (pos.length > 0 && !pos.some(holds)) return false
  return !neg.some(holds)
}

/** Whether a Match's identity tests hold for a source with this identity (undefined: no identity). */
export function identityHolds(tests: IdentityTests, id: SourceIdentity | undefined): boolean {
  const namespace = id ? id.namespace : '' // §4.2: with no identity the namespace compared is ""
  const sa = (s: ServiceAccountMatch) =>
    id !== undefined && s.namespace === id.namespace && s.serviceAccount === id.serviceAccount
  return (
    listHolds(tests.namespaces, tests.notNamespaces, (t) => stringHolds(t, namespace)) &&
    listHolds(tests.principals, tests.notPrincipals, (t) => principalHolds(t, id)) &&
    listHolds(tests.serviceAccounts, tests.notServiceAccounts, sa)
  )
}
