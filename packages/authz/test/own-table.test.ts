// Our own table, written from the semantics of docs/reference/istio-l4-authz.md §2–§5 (not from any code): one
// connection per row, `exercises` naming the rule (and section) the row checks. Several rows are the opposite
// of a Kmesh deviation of §7 (K1–K7), which we must not repeat. Fixtures (W, A, A′, B, P, A6) are those of §6.
import type { Authorization } from '@kmesh-ts/xds-client'
import t, { type Test } from 'tap'
import {
  Action,
  address,
  clause,
  evaluate,
  exact,
  match,
  type PolicyInit,
  policy,
  prefix,
  presence,
  rule,
  Scope,
  suffix,
  workloadIdentity,
} from '../src/index.js'
import { type Conn, ROOT, run } from './fixtures.js'

const { GLOBAL, WORKLOAD_SELECTOR: SEL } = Scope
const { DENY } = Action
type Fields = Parameters<typeof match>[0]
const one = (fields: Fields) => [rule(clause(match(fields)))]
const P = (name: string, init: Partial<PolicyInit> = {}): Authorization => policy({ name, namespace: 'app', ...init })
const allowOn = (fields: Fields, init: Partial<PolicyInit> = {}) => P('p', { rules: one(fields), ...init })
const denyOn = (fields: Fields, init: Partial<PolicyInit> = {}) => P('p', { rules: one(fields), action: DENY, ...init })
const allowAll = (init: Partial<PolicyInit> = {}) => P('all', { rules: [rule()], ...init })
const denyAll = (init: Partial<PolicyInit> = {}) => P('none', { rules: [rule()], action: DENY, ...init })
const ip = (text: string) => [address(text)]
const raw = (bytes: number[], length: number) => [{ address: new Uint8Array(bytes), length }]
const sa = (namespace: string, serviceAccount: string) => [{ namespace, serviceAccount }]

interface Row {
  exercises: string
  policies: Authorization[]
  conn: Conn
  expect: 'allow' | 'deny'
  /** W.authorization_policies */
  list?: string[]
  /** default ROOT; null: not given */
  root?: string | null
  /** W's namespace, default app */
  namespace?: string
  /** the deciding policy and rule, when checked */
  policy?: string | null
  rule?: number
  /** more checks on the decision */
  check?: (d: ReturnType<typeof evaluate>, t: Tap) => void
}
type Tap = Test

const A: Conn = { from: 'A' }
const B: Conn = { from: 'B' }
const Pl: Conn = { from: 'P' }
const A6: Conn = { from: 'A6' }
const A2: Conn = { from: 'A′' }

const rows: Row[] = [
  // ---- §2.1 which policies apply
  { exercises: '§2.1 NAMESPACE policy of W’s namespace applies', policies: [P('nothing')], conn: A, expect: 'deny' },
  {
    exercises: '§2.1 NAMESPACE policy of another namespace does not apply',
    policies: [policy({ name: 'x', namespace: 'other', action: DENY, rules: [rule()] })],
    conn: A,
    expect: 'allow',
  },
  {
    exercises: '§2.1 GLOBAL policy in the root namespace applies to every namespace',
    policies: [denyAll({ namespace: ROOT, scope: GLOBAL })],
    conn: A,
    expect: 'deny',
    policy: `${ROOT}/none`,
  },
  {
    exercises: '§2.1 GLOBAL applies to a workload of any namespace',
    policies: [denyAll({ namespace: ROOT, scope: GLOBAL })],
    namespace: 'elsewhere',
    conn: A,
    expect: 'deny',
  },
  {
    exercises: '§2.1/§1.2 with rootNamespace given, a GLOBAL outside it does not apply',
    policies: [denyAll({ namespace: 'other', scope: GLOBAL })],
    conn: A,
    expect: 'allow',
  },
  {
    exercises: '§2.1 without rootNamespace every GLOBAL applies, as ztunnel files them under ""',
    policies: [denyAll({ namespace: 'other', scope: GLOBAL })],
    root: null,
    conn: A,
    expect: 'deny',
  },
  {
    exercises: '§2.1 WORKLOAD_SELECTOR applies when its key is listed in W',
    policies: [denyAll({ scope: SEL })],
    list: ['app/none'],
    conn: A,
    expect: 'deny',
    policy: 'app/none',
  },
  {
    exercises: '§2.1 WORKLOAD_SELECTOR not listed does not apply, even in W’s namespace',
    policies: [denyAll({ scope: SEL })],
    list: [],
    conn: A,
    expect: 'allow',
  },
  {
    exercises: '§2.1 a root-namespace selector policy listed in W applies (PeerAuthentication strict)',
    policies: [denyOn({ notPrincipals: [presence()] }, { namespace: ROOT, name: 'strict', scope: SEL })],
    list: [`${ROOT}/strict`],
    conn: Pl,
    expect: 'deny',
    policy: `${ROOT}/strict`,
  },
  {
    exercises: '§2.1 the candidates are a union of keys: a listed key applies whatever the policy’s scope',
    policies: [policy({ name: 'y', namespace: 'other', action: DENY, rules: [rule()] })],
    list: ['other/y'],
    conn: A,
    expect: 'deny',
  },
  {
    exercises: '§2.1 a listed key that names no policy is skipped and reported',
    policies: [],
    list: ['app/missing'],
    conn: A,
    expect: 'allow',
    check: (d, t) => t.same(d.unknownKeys, ['app/missing']),
  },
  {
    exercises: '§2.1 insert replaces: a later policy with the same key wins',
    policies: [denyAll({ name: 'k' }), allowAll({ name: 'k' })],
    conn: A,
    expect: 'allow',
    policy: 'app/k',
  },
  {
    exercises: '§3.1 Actions: an unknown action number is rejected on arrival, so it never applies',
    policies: [P('audit', { rules: [rule()], action: 2 as never })],
    conn: A,
    expect: 'allow',
  },
  {
    exercises: '§3.1 Actions: an unknown scope number is rejected on arrival',
    policies: [denyAll({ scope: 3 as never })],
    conn: A,
    expect: 'allow',
  },
  {
    exercises: '§2.1 a NAMESPACE policy of app does not apply to a workload in namespace other',
    policies: [denyAll()],
    namespace: 'other',
    conn: A,
    expect: 'allow',
  },
  // ---- §3.1 decision order
  {
    exercises: '§3.1 DENY is evaluated before ALLOW',
    policies: [allowAll(), denyAll()],
    conn: A,
    expect: 'deny',
    policy: 'app/none',
    rule: 0,
  },
  {
    exercises: '§3.1 step 3: of several matching DENYs we report the first by key',
    policies: [denyAll({ name: 'b' }), denyAll({ name: 'a' })],
    conn: A,
    expect: 'deny',
    policy: 'app/a',
  },
  {
    exercises: '§3.1 step 6: a DENY that does not match, then a matching ALLOW',
    policies: [denyOn({ namespaces: [exact('other')] }, { name: 'd' }), allowOn({ destinationPorts: [8080] })],
    conn: A,
    expect: 'allow',
    policy: 'app/p',
    rule: 0,
  },
  {
    exercises: '§3.1 step 6: any ALLOW: the first does not match, the second does',
    policies: [allowOn({ namespaces: [exact('other')] }, { name: 'a' }), allowOn({ namespaces: [exact('client')] })],
    conn: A,
    expect: 'allow',
    policy: 'app/p',
  },
  {
    exercises: '§3.1 step 7: ALLOWs apply and none matches → NotAllowed, no deciding policy',
    policies: [allowOn({ namespaces: [exact('other')] }, { name: 'a' }), allowOn({ destinationPorts: [1] })],
    conn: A,
    expect: 'deny',
    policy: null,
  },
  {
    exercises: '§3.1 step 5: no ALLOW policy at all → allowed, no deciding policy',
    policies: [denyOn({ namespaces: [exact('other')] })],
    conn: A,
    expect: 'allow',
    policy: null,
  },
  {
    exercises: '§3.1 step 2 (K1): a matching dry-run DENY is reported, not enforced',
    policies: [denyAll({ dryRun: true })],
    conn: A,
    expect: 'allow',
    check: (d, t) =>
      t.same(d.dryRun, [
        { policy: 'app/none', action: 'deny', matched: true, rule: 0, log: 'dry-run: deny policy match' },
      ]),
  },
  {
    exercises: '§3.1 step 2: a dry-run DENY that does not match is reported as not matched',
    policies: [denyOn({ namespaces: [exact('other')] }, { dryRun: true })],
    conn: A,
    expect: 'allow',
    check: (d, t) => t.same(d.dryRun, [{ policy: 'app/p', action: 'deny', matched: false }]),
  },
  {
    exercises: '§3.1 step 5 (K1): a dry-run allow-nothing alone does not make W default-deny',
    policies: [P('nothing', { dryRun: true })],
    conn: Pl,
    expect: 'allow',
    check: (d, t) => t.match(d.reason, 'dry-run: no allow policies match'),
  },
  {
    exercises: '§3.1 (K1): a matching dry-run ALLOW does not rescue a connection enforced ALLOWs reject',
    policies: [allowAll({ dryRun: true }), allowOn({ namespaces: [exact('other')] })],
    conn: A,
    expect: 'deny',
    check: (d, t) => t.same(d.dryRun?.[0]?.log, 'dry-run: allow policy match'),
  },
  {
    exercises: '§3.1 steps 3–4: an enforced DENY rejects before dry-run ALLOWs are evaluated',
    policies: [denyAll(), allowAll({ dryRun: true })],
    conn: A,
    expect: 'deny',
    check: (d, t) => t.equal(d.dryRun, undefined),
  },
  {
    exercises: '§3.1 step 5: a matching dry-run ALLOW → no "no allow policies match" note',
    policies: [allowAll({ dryRun: true })],
    conn: A,
    expect: 'allow',
    check: (d, t) => t.notMatch(d.reason, 'no allow policies match'),
  },
  {
    exercises: '§3.1 DENY wins across scopes: GLOBAL DENY over a listed selector ALLOW',
    policies: [denyOn({ namespaces: [exact('client')] }, { namespace: ROOT, scope: GLOBAL }), allowAll({ scope: SEL })],
    list: ['app/all'],
    conn: A,
    expect: 'deny',
    policy: `${ROOT}/p`,
  },
  // ---- §4.1 structure
  {
    exercises: '§4.1 a DENY with zero rules never matches (no-op)',
    policies: [P('d', { action: DENY })],
    conn: Pl,
    expect: 'allow',
  },
  {
    exercises: '§4.1 a rule with zero clauses matches everything, plaintext included',
    policies: [allowAll()],
    conn: Pl,
    expect: 'allow',
    policy: 'app/all',
  },
  {
    exercises: '§4.1 a clause with zero matches matches',
    policies: [P('d', { action: DENY, rules: [rule(clause())] })],
    conn: A,
    expect: 'deny',
  },
  {
    exercises: '§4.1 a clause of only empty Matches never matches (K6d)',
    policies: [P('a', { rules: [rule(clause(match(), match()))] })],
    conn: A,
    expect: 'deny',
  },
  {
    exercises: '§4.1 an empty Match is skipped, a matching sibling Match still matches (OR)',
    policies: [P('a', { rules: [rule(clause(match(), match({ destinationPorts: [8080] })))] })],
    conn: A,
    expect: 'allow',
  },
  {
    exercises: '§4.1 clauses AND: the second clause fails',
    policies: [
      P('a', {
        rules: [rule(clause(match({ destinationPorts: [8080] })), clause(match({ namespaces: [exact('x')] })))],
      }),
    ],
    conn: A,
    expect: 'deny',
  },
  {
    exercises: '§4.1 rules OR: the third rule matches and is reported (K6e: not only the first rule)',
    policies: [
      P('a', {
        rules: [
          ...one({ destinationPorts: [9090] }),
          ...one({ destinationPorts: [9091] }),
          ...one({ sourceIps: ip('10.2.0.0/16') }),
        ],
      }),
    ],
    conn: A,
    expect: 'allow',
    policy: 'app/a',
    rule: 2,
  },
  {
    exercises: '§4.1 a Match holding only extensions is empty (the twelve lists count)',
    policies: [
      P('d', { action: DENY, rules: [rule(clause(match({ extensions: [{ name: 'x', config: undefined }] })))] }),
    ],
    conn: A,
    expect: 'allow',
  },
  {
    exercises: '§4.2 ingest (K7): a Match whose only address has a bad length becomes empty: DENY no-op',
    policies: [denyOn({ sourceIps: raw([10, 2, 0, 5, 0], 32) })],
    conn: A,
    expect: 'allow',
  },
  {
    exercises: '§4.1 ingest: a StringMatch with no type is dropped, leaving an empty Match: ALLOW never matches',
    policies: [allowOn({ namespaces: [{}] })],
    conn: A,
    expect: 'deny',
  },
  {
    exercises: '§4.2 ingest: a dropped address removes the IP constraint of a Match with other fields',
    policies: [allowOn({ destinationPorts: [8080], sourceIps: raw([1, 2, 3], 24) })],
    conn: A,
    expect: 'allow',
  },
  {
    exercises: '§4.2 ingest: an IPv4 prefix over 32 is dropped',
    policies: [allowOn({ destinationPorts: [8080], sourceIps: raw([10, 9, 0, 0], 33) })],
    conn: A,
    expect: 'allow',
  },
  {
    exercises: '§4.2 ingest: the length is narrowed to u8 first: 272 is /16',
    policies: [allowOn({ sourceIps: raw([10, 2, 0, 0], 272) })],
    conn: A,
    expect: 'allow',
  },
  {
    exercises: '§4.2 ingest: the length narrowed to u8: 272 is /16, so 10.3.x is outside',
    policies: [allowOn({ sourceIps: raw([10, 2, 0, 0], 272) })],
    conn: B,
    expect: 'deny',
  },
  {
    exercises: '§4.2 ports are narrowed to u16: 65616 is 80',
    policies: [allowOn({ destinationPorts: [65616] })],
    conn: { from: 'A', port: 80 },
    expect: 'allow',
  },
  // ---- §4.2 principals
  {
    exercises: '§4.2 principals: exact without spiffe:// matches',
    policies: [allowOn({ principals: [exact('cluster.local/ns/client/sa/sleep')] })],
    conn: A,
    expect: 'allow',
  },
  {
    exercises: '§4.2 principals: a value containing spiffe:// never matches',
    policies: [allowOn({ principals: [exact('spiffe://cluster.local/ns/client/sa/sleep')] })],
    conn: A,
    expect: 'deny',
  },
  {
    exercises: '§4.2 principals: a prefix containing spiffe:// never matches',
    policies: [allowOn({ principals: [prefix('spiffe://')] })],
    conn: A,
    expect: 'deny',
  },
  {
    exercises: '§4.2 principals: presence matches any identity, any trust domain (K3)',
    policies: [allowOn({ principals: [presence()] })],
    conn: A2,
    expect: 'allow',
  },
  {
    exercises: '§4.2 principals: with no identity every StringMatch is false, even an empty exact',
    policies: [allowOn({ principals: [exact('')] })],
    conn: Pl,
    expect: 'deny',
  },
  {
    exercises: '§4.2 deny plaintext: not_principals presence fires for no identity (K3)',
    policies: [denyOn({ notPrincipals: [presence()] })],
    conn: Pl,
    expect: 'deny',
  },
  {
    exercises: '§4.2 deny plaintext: not_principals presence lets an identity through (K3)',
    policies: [denyOn({ notPrincipals: [presence()] })],
    conn: A,
    expect: 'allow',
  },
  {
    exercises: '§4.2 StringMatch is case-sensitive',
    policies: [allowOn({ principals: [exact('Cluster.local/ns/client/sa/sleep')] })],
    conn: A,
    expect: 'deny',
  },
  {
    exercises: '§4.2 principals include the trust domain: td2 matches its own exact principal',
    policies: [allowOn({ principals: [exact('td2/ns/client/sa/sleep')] })],
    conn: A2,
    expect: 'allow',
  },
  {
    exercises: '§4.2 principals include the trust domain: a cluster.local/ prefix misses td2',
    policies: [allowOn({ principals: [prefix('cluster.local/')] })],
    conn: A2,
    expect: 'deny',
  },
  {
    exercises: '§4.1 inside a family, positives OR: the second principal matches',
    policies: [allowOn({ principals: [exact('x/ns/y/sa/z'), suffix('/ns/other/sa/curl')] })],
    conn: B,
    expect: 'allow',
  },
  // ---- §4.2 namespaces
  {
    exercises: '§4.2 no identity: not_namespaces presence holds, so the DENY fires',
    policies: [denyOn({ notNamespaces: [presence()] })],
    conn: Pl,
    expect: 'deny',
  },
  {
    exercises: '§4.2 not_namespaces presence does not fire for an identity (K3)',
    policies: [denyOn({ notNamespaces: [presence()] })],
    conn: A,
    expect: 'allow',
  },
  {
    exercises: '§4.2 namespaces prefix',
    policies: [allowOn({ namespaces: [prefix('cli')] })],
    conn: A,
    expect: 'allow',
  },
  {
    exercises: '§4.2 namespaces suffix misses',
    policies: [allowOn({ namespaces: [suffix('ent')] })],
    conn: B,
    expect: 'deny',
  },
  {
    exercises: '§4.2 "with no identity the value is \'\'": an exact "" namespace matches plaintext (our reading)',
    policies: [allowOn({ namespaces: [exact('')] })],
    conn: Pl,
    expect: 'allow',
  },
  {
    exercises: '§4.1 negatives: one matching not_namespaces entry of several is enough to fail',
    policies: [allowOn({ notNamespaces: [exact('x'), exact('client')] })],
    conn: A,
    expect: 'deny',
  },
  // ---- §4.2 service accounts
  {
    exercises: '§4.2 service accounts: the name must be equal',
    policies: [allowOn({ serviceAccounts: sa('client', 'curl') })],
    conn: A,
    expect: 'deny',
  },
  {
    exercises: '§4.2 service accounts: the namespace must be equal',
    policies: [allowOn({ serviceAccounts: sa('other', 'sleep') })],
    conn: A,
    expect: 'deny',
  },
  {
    exercises: '§4.2 no identity: not_service_accounts holds, so the DENY fires (K2)',
    policies: [denyOn({ notServiceAccounts: sa('client', 'sleep') })],
    conn: Pl,
    expect: 'deny',
  },
  {
    exercises: '§4.1 (K2): a service-account constraint is kept next to other fields',
    policies: [allowOn({ serviceAccounts: sa('client', 'sleep'), destinationPorts: [8080] })],
    conn: B,
    expect: 'deny',
  },
  {
    exercises: '§4.2 (K2): a Match of only service_accounts is not empty: a DENY on it fires',
    policies: [denyOn({ serviceAccounts: sa('other', 'curl') })],
    conn: B,
    expect: 'deny',
  },
  // ---- §4.2 addresses
  {
    exercises: '§4.2 canonical: a v4-mapped source is IPv4 and matches an IPv4 CIDR',
    policies: [allowOn({ sourceIps: ip('10.2.0.0/16') })],
    conn: { from: { ip: '::ffff:10.2.0.5' } },
    expect: 'allow',
  },
  {
    exercises: '§4.2 a 16-byte v4-mapped policy entry stays IPv6: never matches a v4-mapped source (K6g)',
    policies: [allowOn({ sourceIps: ip('::ffff:10.2.0.0/112') })],
    conn: { from: { ip: '::ffff:10.2.0.5' } },
    expect: 'deny',
  },
  {
    exercises: '§4.2 a 16-byte v4-mapped policy entry never matches an IPv4 client (K7)',
    policies: [allowOn({ sourceIps: ip('::ffff:10.2.0.5') })],
    conn: A,
    expect: 'deny',
  },
  {
    exercises: '§4.2 canonical: v4-mapped source and destination both fold to IPv4',
    policies: [allowOn({ sourceIps: ip('10.2.0.5/32') })],
    conn: { from: { ip: '::ffff:10.2.0.5' }, to: '::ffff:10.1.0.10' },
    expect: 'allow',
  },
  {
    exercises: '§4.2 families must be equal: ::/0 matches an IPv6 source (K6h)',
    policies: [allowOn({ sourceIps: ip('::/0') })],
    conn: A6,
    expect: 'allow',
  },
  {
    exercises: '§4.2 families must be equal: ::/0 does not match an IPv4 source',
    policies: [allowOn({ sourceIps: ip('::/0') })],
    conn: A,
    expect: 'deny',
  },
  {
    exercises: '§4.2 0.0.0.0/0 matches every IPv4 source (K6i)',
    policies: [allowOn({ sourceIps: ip('0.0.0.0/0') })],
    conn: Pl,
    expect: 'allow',
  },
  {
    exercises: '§4.2 0.0.0.0/0 does not match an IPv6 source',
    policies: [allowOn({ sourceIps: ip('0.0.0.0/0') })],
    conn: A6,
    expect: 'deny',
  },
  {
    exercises: '§4.2 IPv6 CIDR with host bits set: host bits ignored (K6f)',
    policies: [allowOn({ sourceIps: ip('2001:db8:1::5/48') })],
    conn: { from: { ip: '2001:db8:1:ffff::1' }, to: 'fd00:1::10' },
    expect: 'allow',
  },
  {
    exercises: '§4.2 IPv6 /64 boundary: the next /64 is outside',
    policies: [allowOn({ sourceIps: ip('2001:db8:1:2::/64') })],
    conn: { from: { ip: '2001:db8:1:3::1' }, to: 'fd00:1::10' },
    expect: 'deny',
  },
  {
    exercises: '§4.1 negatives: not_source_ips IPv6 does not contain an IPv4 source, so the DENY fires',
    policies: [denyOn({ notSourceIps: ip('2001:db8:1::/48') })],
    conn: A,
    expect: 'deny',
  },
  {
    exercises: '§4.1 positives OR (K6e): the second address of the list matches',
    policies: [allowOn({ sourceIps: [...ip('10.9.0.0/16'), ...ip('10.2.0.0/16')] })],
    conn: A,
    expect: 'allow',
  },
  {
    exercises: '§4.1 negatives (K6e): the second not_source_ips entry contains the source',
    policies: [denyOn({ notSourceIps: [...ip('10.9.0.0/16'), ...ip('10.3.0.0/16')] })],
    conn: B,
    expect: 'allow',
  },
  {
    exercises: '§4.2 canonical destination: a v4-mapped destination matches destination_ips 10.1.0.10/32',
    policies: [allowOn({ destinationIps: ip('10.1.0.10/32') })],
    conn: { from: 'A', to: '::ffff:10.1.0.10' },
    expect: 'allow',
  },
  {
    exercises: '§4.1 not_destination_ips containing W: the DENY does not fire',
    policies: [denyOn({ notDestinationIps: ip('10.1.0.0/24') })],
    conn: A,
    expect: 'allow',
  },
  {
    exercises: '§4.1 not_destination_ips not containing W fires the DENY',
    policies: [denyOn({ notDestinationIps: ip('10.1.1.0/24') })],
    conn: A,
    expect: 'deny',
  },
  {
    exercises: '§4.2 destination_ips IPv6',
    policies: [allowOn({ destinationIps: ip('fd00:1::/64') })],
    conn: A6,
    expect: 'allow',
  },
  // ---- ports and more than four entries
  {
    exercises: '§4.1 not_destination_ports with two entries: the second matches → DENY fires',
    policies: [denyOn({ notDestinationPorts: [8080, 9090] })],
    conn: { from: 'A', port: 7070 },
    expect: 'deny',
  },
  {
    exercises: '§4.1 not_destination_ports: a listed port → the DENY does not fire',
    policies: [denyOn({ notDestinationPorts: [8080, 9090] })],
    conn: { from: 'A', port: 9090 },
    expect: 'allow',
  },
  {
    exercises: 'no cap on list sizes (K6e: 4 ports): the fifth port matches',
    policies: [allowOn({ destinationPorts: [1, 2, 3, 4, 8080] })],
    conn: A,
    expect: 'allow',
  },
  {
    exercises: 'no cap on W’s list (K6a: 4 policies): the fifth listed selector DENY applies',
    policies: [1, 2, 3, 4].map((i) => P(`s${i}`, { scope: SEL, rules: [rule()] })).concat(denyAll({ scope: SEL })),
    list: ['app/s1', 'app/s2', 'app/s3', 'app/s4', 'app/none'],
    conn: A,
    expect: 'deny',
  },
  {
    exercises: 'not first-match-wins in list order (K6b): a DENY listed after a matching ALLOW still denies',
    policies: [allowAll({ scope: SEL }), denyAll({ scope: SEL })],
    list: ['app/all', 'app/none'],
    conn: A,
    expect: 'deny',
  },
  {
    exercises: 'identity fields are checked on the selector path too (K6c): a DENY on another namespace',
    policies: [denyOn({ namespaces: [exact('other')] }, { scope: SEL })],
    list: ['app/p'],
    conn: A,
    expect: 'allow',
  },
  {
    exercises: '§4.1 one Match, three families AND-ed: source, port, principal all hold',
    policies: [allowOn({ sourceIps: ip('10.2.0.0/24'), destinationPorts: [8080], principals: [suffix('/sa/sleep')] })],
    conn: A2,
    expect: 'allow',
  },
  {
    exercises: '§4.1 one Match, three families AND-ed: the principal fails',
    policies: [allowOn({ sourceIps: ip('10.2.0.0/24'), destinationPorts: [8080], principals: [suffix('/sa/curl')] })],
    conn: A,
    expect: 'deny',
  },
]

// ---- identity derived from a workload record (the reference's intro; K4)
const fromRecord = (trustDomain: string, serviceAccount: string) =>
  workloadIdentity({ trustDomain, namespace: 'client', serviceAccount })
rows.push(
  {
    exercises: 'intro (K4): an empty trust domain is cluster.local, so cluster.local/ principals match',
    policies: [allowOn({ principals: [exact('cluster.local/ns/client/sa/sleep')] })],
    conn: { from: { ip: '10.2.0.5', identity: fromRecord('', 'sleep') as never } },
    expect: 'allow',
  },
  {
    exercises: 'intro: an empty service account is default',
    policies: [allowOn({ serviceAccounts: sa('client', 'default') })],
    conn: { from: { ip: '10.2.0.5', identity: fromRecord('td2', '') as never } },
    expect: 'allow',
  },
  {
    exercises: 'intro: a source that maps to no workload has no identity (plaintext)',
    policies: [allowOn({ principals: [presence()] })],
    conn: { from: { ip: '10.2.0.5', identity: workloadIdentity(undefined) as never } },
    expect: 'deny',
  },
)

t.ok(rows.length >= 90, `our table has ${rows.length} rows`)
for (const [i, row] of rows.entries()) {
  t.test(`${i + 1}: ${row.exercises}`, (t) => {
    const d = run(row.policies, row.conn, {
      ...(row.list ? { list: row.list } : {}),
      rootNamespace: row.root === null ? undefined : (row.root ?? ROOT),
      ...(row.namespace ? { namespace: row.namespace } : {}),
    })
    t.equal(d.verdict, row.expect, d.reason)
    if (row.policy !== undefined) t.equal(d.policy, row.policy ?? undefined, 'deciding policy')
    if (row.rule !== undefined) t.equal(d.rule, row.rule, 'deciding rule')
    row.check?.(d, t)
    t.end()
  })
}

t.test('addresses given as bytes; v4-mapped bytes fold to IPv4; bad lengths, texts and ports are refused', (t) => {
  const policies = [allowOn({ sourceIps: ip('10.2.0.0/16') })]
  const workload = { uid: 'W', namespace: 'app', authorizationPolicies: [] }
  const mapped = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 2, 0, 5])
  const destination = { ip: new Uint8Array([10, 1, 0, 10]), port: 8080 }
  t.equal(evaluate({ policies, workload, source: { ip: mapped }, destination }).verdict, 'allow')
  t.equal(evaluate({ policies, workload, source: { ip: new Uint8Array([10, 3, 0, 7]) }, destination }).verdict, 'deny')
  t.throws(() => evaluate({ policies, workload, source: { ip: new Uint8Array(5) }, destination }), RangeError)
  t.throws(() => evaluate({ policies, workload, source: { ip: '10.2.0.500' }, destination }), TypeError)
  const port = { ip: '10.1.0.10', port: 70000 }
  t.throws(() => evaluate({ policies, workload, source: { ip: '10.2.0.5' }, destination: port }), RangeError)
  t.end()
})
