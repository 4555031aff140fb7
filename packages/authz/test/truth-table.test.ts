// Every row of the truth table in docs/reference/istio-l4-authz.md §6, read from the document itself: the
// connections and the expected (ztunnel) verdicts are parsed from the markdown; the policies, which the table
// writes in prose notation, are the fixtures below, keyed by row number, each checked to mention what the
// Policies cell names. A row added to the document without a fixture fails the test. The Kmesh column is ignored:
// we implement ztunnel's semantics, not Kmesh's deviations (§7).
import { readFileSync } from 'node:fs'
import type { Authorization } from '@kmesh-ts/xds-client'
import t from 'tap'
import { Action, address, clause, exact, match, policy, prefix, presence, rule, Scope, suffix } from '../src/index.js'
import { type Conn, ROOT, run } from './fixtures.js'

const { GLOBAL, WORKLOAD_SELECTOR: SEL } = Scope
const { DENY } = Action
const one = (fields: Parameters<typeof match>[0]) => [rule(clause(match(fields)))]
const ns = (name: string, rules?: ReturnType<typeof one>, more: Partial<Parameters<typeof policy>[0]> = {}) =>
  policy({ name, namespace: 'app', ...(rules ? { rules } : {}), ...more })

interface Fixture {
  policies: Authorization[]
  /** W.authorization_policies */
  list?: string[]
  /** texts the Policies cell must contain, so a fixture cannot drift from its row unnoticed */
  mentions: string[]
  /** row 30's parenthesised second case */
  alt?: { policies: Authorization[]; pattern: RegExp }
}

const sel = (name: string, rules?: ReturnType<typeof one>, more: Partial<Parameters<typeof policy>[0]> = {}) =>
  ns(name, rules, { scope: SEL, ...more })
const ips36 = one({ sourceIps: ['10.9.0.0/16', '10.8.0.0/16', '10.2.0.0/16'].map(address) })

const FIXTURES: Record<number, Fixture> = {
  1: { policies: [], mentions: ['none'] },
  2: { policies: [ns('allow-nothing')], mentions: ['NS-ALLOW', 'rules:none'] },
  3: { policies: [policy({ name: 'p', namespace: 'other' })], mentions: ['NS-ALLOW', 'rules:none', '`other`'] },
  4: { policies: [policy({ name: 'p', namespace: ROOT, scope: GLOBAL })], mentions: ['GL-ALLOW', 'rules:none'] },
  6: { policies: [ns('allow-all', [rule()])], mentions: ['NS-ALLOW', '`[[]]`'] },
  7: { policies: [ns('deny-all', [rule()], { action: DENY })], mentions: ['NS-DENY', '`[[]]`'] },
  8: { policies: [ns('p', undefined, { action: DENY })], mentions: ['NS-DENY', 'rules:none'] },
  10: {
    policies: [
      policy({ name: 'p', namespace: ROOT, scope: GLOBAL, action: DENY, rules: one({ namespaces: [exact('other')] }) }),
    ],
    mentions: ['GL-DENY', 'namespaces: exact "other"'],
  },
  11: { policies: [sel('x')], list: [], mentions: ['SEL-ALLOW', '`app/x`', '**not** in W'] },
  12: { policies: [sel('x')], list: ['x'], mentions: ["W's list contains `x`", '`app/x`'] },
  13: {
    policies: [sel('p', one({ principals: [presence()] }))],
    list: ['app/p'],
    mentions: ['SEL-ALLOW', 'principals: presence'],
  },
  15: {
    policies: [ns('p', one({ namespaces: [exact('client')] }))],
    mentions: ['NS-ALLOW', 'namespaces: exact "client"'],
  },
  16: {
    policies: [ns('p', one({ notNamespaces: [exact('client')] }), { action: DENY })],
    mentions: ['NS-DENY', 'not_namespaces: exact "client"'],
  },
  17: { policies: [ns('p', one({ namespaces: [presence()] }))], mentions: ['NS-ALLOW', 'namespaces: presence'] },
  18: {
    policies: [ns('p', one({ principals: [prefix('cluster.local/ns/client/')] }))],
    mentions: ['NS-ALLOW', 'principals: prefix "cluster.local/ns/client/"'],
  },
  19: {
    policies: [ns('p', one({ principals: [suffix('/sa/sleep')] }))],
    mentions: ['NS-ALLOW', 'principals: suffix "/sa/sleep"'],
  },
  21: {
    policies: [ns('p', one({ serviceAccounts: [{ namespace: 'client', serviceAccount: 'sleep' }] }))],
    mentions: ['NS-ALLOW', 'service_accounts: {client, sleep}'],
  },
  22: {
    policies: [
      ns('p', one({ notServiceAccounts: [{ namespace: 'client', serviceAccount: 'sleep' }] }), { action: DENY }),
    ],
    mentions: ['NS-DENY', 'not_service_accounts: {client, sleep}'],
  },
  23: {
    policies: [ns('p', one({ sourceIps: [address('10.2.0.0/16')] }))],
    mentions: ['NS-ALLOW', 'source_ips: 10.2.0.0/16'],
  },
  24: {
    policies: [ns('p', one({ sourceIps: [address('10.2.0.99/16')] }))],
    mentions: ['NS-ALLOW', 'source_ips: 10.2.0.99/16'],
  },
  25: {
    policies: [ns('p', one({ notSourceIps: [address('10.2.0.0/16')] }), { action: DENY })],
    mentions: ['NS-DENY', 'not_source_ips: 10.2.0.0/16'],
  },
  26: {
    policies: [ns('p', one({ sourceIps: [address('2001:db8:1::/48')] }))],
    mentions: ['NS-ALLOW', 'source_ips: 2001:db8:1::/48'],
  },
  27: {
    policies: [sel('p', one({ sourceIps: [address('2001:db8:1::/48')] }))],
    list: ['app/p'],
    mentions: ['SEL-ALLOW', 'same as 26'],
  },
  30: {
    policies: [ns('p', one({ destinationIps: [address('10.1.0.10/32')] }))],
    mentions: ['NS-ALLOW', 'destination_ips: 10.1.0.10/32', '`10.1.0.11/32`'],
    alt: {
      policies: [ns('p', one({ destinationIps: [address('10.1.0.11/32')] }))],
      pattern: /with `\.11`: (ALLOW|DENY)/,
    },
  },
  31: { policies: [ns('p', one({ destinationPorts: [8080] }))], mentions: ['NS-ALLOW', 'destination_ports: 8080'] },
  32: {
    policies: [ns('p', one({ notDestinationPorts: [8080] }), { action: DENY })],
    mentions: ['NS-DENY', 'not_destination_ports: 8080'],
  },
  34: {
    policies: [
      ns('p', [rule(clause(match({ destinationPorts: [9090] }))), rule(clause(match({ destinationPorts: [8080] })))]),
    ],
    mentions: ['NS-ALLOW', '[[[ports 9090]],[[ports 8080]]]'],
  },
  36: { policies: [ns('p', ips36)], mentions: ['NS-ALLOW', '10.9.0.0/16, 10.8.0.0/16, 10.2.0.0/16'] },
  37: { policies: [sel('p', ips36)], list: ['app/p'], mentions: ['SEL-ALLOW', 'same as 36'] },
  38: {
    policies: [
      ns('p', [rule(clause(match({ namespaces: [exact('client')] }), match({ sourceIps: [address('10.3.0.0/16')] })))]),
    ],
    mentions: ['NS-ALLOW', 'namespaces: exact client, source_ips: 10.3.0.0/16', '**two Matches**'],
  },
  39: {
    policies: [
      ns('p', [rule(clause(match({ destinationPorts: [8080] })), clause(match({ namespaces: [exact('client')] })))]),
    ],
    mentions: ['NS-ALLOW', '[[[ports 8080],[namespaces: exact client]]]', 'two clauses'],
  },
  40: {
    policies: [ns('p', one({ namespaces: [exact('client')], destinationPorts: [8080] }))],
    mentions: ['NS-ALLOW', '{namespaces: exact client, ports: 8080}', 'one Match with two fields'],
  },
  41: {
    policies: [sel('p', one({ namespaces: [exact('other')] }), { action: DENY })],
    list: ['app/p'],
    mentions: ['SEL-DENY', 'namespaces: exact "other"'],
  },
  43: {
    policies: [sel('p', one({}), { action: DENY })],
    list: ['app/p'],
    mentions: ['SEL-DENY', '`[[[{}]]]`'],
  },
  44: {
    policies: [ns('p', [rule()], { action: DENY, dryRun: true })],
    mentions: ['NS-DENY', '`[[]]`', '`dry_run=true`'],
  },
  45: { policies: [ns('p', undefined, { dryRun: true })], mentions: ['NS-ALLOW', 'rules:none', '`dry_run=true`'] },
  47: {
    policies: [ns('p', one({ notPrincipals: [exact('cluster.local/ns/client/sa/sleep')] }), { action: DENY })],
    mentions: ['NS-DENY', 'not_principals: exact "cluster.local/ns/client/sa/sleep"'],
  },
  48: {
    policies: [
      policy({ name: 'all', namespace: ROOT, scope: GLOBAL, rules: [rule()] }),
      ns('p', one({ namespaces: [exact('client')] }), { action: DENY }),
    ],
    mentions: ['GL-ALLOW `[[]]`', 'NS-DENY', 'namespaces: exact client'],
  },
}

interface Row {
  num: number
  policies: string
  conns: Conn[]
  verdicts: ('allow' | 'deny')[]
  logs: string[]
  expected: string
}

// §6 of the document, cut between its heading and §7's.
const doc = readFileSync(new URL('../../../docs/reference/istio-l4-authz.md', import.meta.url), 'utf8')
const section = doc.slice(doc.indexOf('\n## 6. Truth table'), doc.indexOf('\n## 7. '))

function cells(line: string): string[] {
  // Split on the table's pipes; none of the cells of §6 contains a pipe.
  return line
    .split('|')
    .slice(1, -1)
    .map((c) => c.trim())
}

function parseConns(text: string): Conn[] {
  return text.split(';').map((part) => {
    const m = /^(A′|A6|A|B|P)(?:→(\S+))?$/.exec(part.trim())
    if (!m) throw new Error(`connection not understood: ${JSON.stringify(part)}`)
    const [, from, target] = m as unknown as [string, string, string | undefined]
    if (target === undefined || target === 'W') return { from }
    if (/^\d+$/.test(target)) return { from, port: Number(target) }
    return { from, to: target }
  })
}

function parseExpected(text: string): { verdicts: ('allow' | 'deny')[]; logs: string[] } {
  const verdicts: ('allow' | 'deny')[] = []
  const logs: string[] = []
  for (const part of text.replace(/\([^)]*\)/g, '').split(';')) {
    const log = /logs `([^`]+)`/.exec(part)
    if (log) {
      logs.push(log[1] as string)
      continue
    }
    const found = part.match(/\b(ALLOW|DENY)\b/g) ?? []
    if (found.length !== 1) throw new Error(`expected verdict not understood: ${JSON.stringify(part)}`)
    verdicts.push((found[0] as string).toLowerCase() as 'allow' | 'deny')
  }
  return { verdicts, logs }
}

const rows = new Map<number, Row>()
for (const line of section.split('\n')) {
  const c = cells(line)
  if (c.length !== 5 || !/^\d+$/.test(c[0] as string)) continue
  const [num, pol, connText, expected] = c as [string, string, string, string]
  const n = Number(num)
  const same = (text: string) => /^same as (\d+)$/.exec(text)
  const connSame = same(connText)
  const expSame = same(expected)
  const conns = connSame ? (rows.get(Number(connSame[1]))?.conns ?? []) : parseConns(connText)
  const exp = expSame ? (rows.get(Number(expSame[1])) as Row) : { ...parseExpected(expected), expected }
  rows.set(n, { num: n, policies: pol, conns, verdicts: exp.verdicts, logs: exp.logs, expected: exp.expected })
}

t.ok(rows.size >= 38, `the §6 table was found (${rows.size} rows)`)
t.same(
  [...rows.keys()].filter((n) => !(n in FIXTURES)),
  [],
  'every row of §6 has a fixture',
)
t.same(
  Object.keys(FIXTURES)
    .map(Number)
    .filter((n) => !rows.has(n)),
  [],
  'every fixture has a row in §6',
)

for (const row of rows.values()) {
  const fx = FIXTURES[row.num]
  if (fx === undefined) continue
  t.test(`row ${row.num}: ${row.policies}`, (t) => {
    for (const m of fx.mentions) t.ok(row.policies.includes(m), `the Policies cell mentions ${m}`)
    t.equal(row.verdicts.length, row.conns.length, 'one expected verdict per connection')
    const logs: string[] = []
    row.conns.forEach((conn, i) => {
      const d = run(fx.policies, conn, fx.list ? { list: fx.list } : {})
      t.equal(d.verdict, row.verdicts[i], `${JSON.stringify(conn)} → ${row.verdicts[i]} (${d.reason})`)
      logs.push(d.reason, ...(d.dryRun ?? []).map((r) => r.log ?? ''))
      // §8: run every row against selector policies too. Rows whose policies are all NAMESPACE policies of
      // W's namespace give the same verdict when those policies are WORKLOAD_SELECTOR ones listed in W.
      if (fx.policies.length > 0 && fx.policies.every((p) => p.scope === Scope.NAMESPACE && p.namespace === 'app')) {
        const asSel = fx.policies.map((p) => ({ ...p, scope: SEL }))
        const s = run(asSel, conn, { list: asSel.map((p) => `${p.namespace}/${p.name}`) })
        t.equal(s.verdict, row.verdicts[i], `as selector policies: ${JSON.stringify(conn)} → ${row.verdicts[i]}`)
      }
    })
    for (const log of row.logs)
      t.ok(
        logs.some((l) => l.includes(log)),
        `reports ${log}`,
      )
    if (fx.alt) {
      const want = fx.alt.pattern.exec(row.expected)?.[1]?.toLowerCase()
      t.ok(want, 'the alternative case is in the Expected cell')
      for (const conn of row.conns) t.equal(run(fx.alt.policies, conn).verdict, want, `alternative: ${want}`)
    }
    t.end()
  })
}
