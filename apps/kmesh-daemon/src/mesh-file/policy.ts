/** Authorization policies (docs/reference/local-config.md §6) and their tagged string matchers (§2.5). */
import { isMap, isScalar, isSeq } from 'yaml'

import {
  At,
  rawText,
  readBool,
  readEnum,
  readName,
  readParsedList,
  readSeq,
  readString,
  readStruct,
  readUint,
  sizeOk,
  type Sink,
  type YNode,
} from './reader.js'
import type { Match, Policy, ServiceAccountMatch, StringMatch } from '../model/mesh.js'
import { parseCidr } from './values.js'

const FIELDS = ['name', 'namespace', 'scope', 'action', 'rules', 'dryRun'] as const

const STRING_MATCH_KEYS = ['namespaces', 'notNamespaces', 'principals', 'notPrincipals'] as const
const SA_KEYS = ['serviceAccounts', 'notServiceAccounts'] as const
const CIDR_KEYS = ['sourceIps', 'notSourceIps', 'destinationIps', 'notDestinationIps'] as const
const PORT_KEYS = ['destinationPorts', 'notDestinationPorts'] as const
export const MATCH_FIELDS: readonly string[] = [...STRING_MATCH_KEYS, ...SA_KEYS, ...CIDR_KEYS, ...PORT_KEYS]

const MATCH_HINTS: Record<string, string> = {
  ports: 'write `destinationPorts`',
  notPorts: 'write `notDestinationPorts`',
  ipBlocks: 'write `sourceIps`',
  remoteIpBlocks: 'write `sourceIps`',
  clauses: 'rules are plain nested lists (rules[rule][clause][match]); there is no `clauses:` key',
  matches: 'rules are plain nested lists (rules[rule][clause][match]); there is no `matches:` key',
}

const VARIANTS = ['Exact', 'Prefix', 'Suffix', 'Presence'] as const

/** `policies[1] (backend/deny-untrusted)`. */
export function policyLabel(sink: Sink, index: number, raw: YNode): string {
  const ns = rawText(sink, raw, 'namespace')
  const name = rawText(sink, raw, 'name')
  return ns !== undefined && name !== undefined ? `policies[${index}] (${ns}/${name})` : `policies[${index}]`
}

/** `[!Presence]`: an empty tagged scalar whose tag is directly followed by `]` (libyaml cannot scan it). */
function tagTouchesBracket(at: At, range: readonly number[] | null | undefined): boolean {
  const start = range?.[0]
  if (start === undefined || at.sink.charAt(start) !== ']') return false
  return !/\s/.test(at.sink.charAt(start - 1))
}

/**
 * serde_yaml 0.9 reads the `StringMatch` enum only from YAML tags: `!Exact x`, `!Prefix x`, `!Suffix x`,
 * `!Presence []` or a bare `!Presence`. `{Exact: x}` and untagged strings are refused.
 */
export function readStringMatch(at: At, raw: YNode): StringMatch | undefined {
  const node = at.sink.deref(raw)
  const tag = node && (isScalar(node) || isSeq(node) || isMap(node)) ? node.tag : undefined
  if (tag === undefined || tag === null) {
    if (node && isMap(node)) {
      const first = node.items[0]
      const k = first && isScalar(first.key) ? String(first.key.value) : undefined
      const v = first && isScalar(first.value) ? String(first.value.value) : undefined
      const example =
        node.items.length === 1 && k !== undefined && (VARIANTS as readonly string[]).includes(k)
          ? k === 'Presence'
            ? '`- !Presence []`'
            : `\`- !${k} ${v ?? ''}\``
          : '`- !Exact value`'
      at.error(`invalid type: map, expected a YAML tag starting with '!'; write ${example} (reference §2.5)`, node)
    } else {
      const text = node && isScalar(node) ? String(node.value ?? '') : ''
      const example = text === 'Presence' ? '`- !Presence []`' : `\`- !Exact ${text}\` (or !Prefix, !Suffix)`
      at.error(`a string matcher needs a YAML tag; write ${example} (reference §2.5)`, node)
    }
    return undefined
  }
  const variant = tag.startsWith('!') ? tag.slice(1) : tag
  if (!(VARIANTS as readonly string[]).includes(variant)) {
    const near = VARIANTS.find((v) => v.toLowerCase() === variant.toLowerCase())
    at.error(
      `unknown string matcher tag ${tag}, expected one of !Exact, !Prefix, !Suffix, !Presence` +
        (near ? `; write !${near} (tags are case-sensitive)` : ''),
      node,
    )
    return undefined
  }
  if (variant === 'Presence') {
    if (node && isSeq(node) && node.items.length === 0) return { kind: 'Presence' }
    if (node && isScalar(node) && String(node.value ?? '') === '') {
      // libyaml (ztunnel's parser) cannot scan a tag directly followed by `]` in a flow sequence.
      if (tagTouchesBracket(at, node.range)) {
        at.warn(
          'ztunnel cannot parse `[!Presence]` (libyaml scan error); write `[!Presence ]` or `- !Presence []`',
          node,
        )
      }
      return { kind: 'Presence' }
    }
    at.error('!Presence takes no value; write `!Presence []` or a bare `!Presence`', node)
    return undefined
  }
  if (!node || !isScalar(node)) {
    at.error(`!${variant} takes a string, e.g. \`!${variant} value\``, node)
    return undefined
  }
  if (!sizeOk(at, node, String(node.value ?? ''))) return undefined
  if (String(node.value ?? '') === '' && tagTouchesBracket(at, node.range)) {
    at.warn(`ztunnel cannot parse \`[!${variant}]\` (libyaml scan error)`, node)
  }
  return { kind: variant as 'Exact' | 'Prefix' | 'Suffix', value: String(node.value ?? '') }
}

function readServiceAccounts(at: At, raw: YNode): ServiceAccountMatch[] | undefined {
  const items = readSeq(at, raw)
  if (!items) return undefined
  const out: ServiceAccountMatch[] = []
  let good = true
  items.forEach((item, i) => {
    const here = at.index(i, at.sink.deref(item))
    const f = readStruct(here, item, {
      fields: ['namespace', 'serviceAccount'],
      required: ['namespace', 'serviceAccount'],
      unknown: 'ignoredUpstream',
      hints: { service_account: 'write `serviceAccount` (camelCase since ztunnel #1430)' },
    })
    if (!f) {
      good = false
      return
    }
    const n = f.get('namespace')
    const s = f.get('serviceAccount')
    const namespace = n ? readString(here.field('namespace', n.keyNode), n.value) : undefined
    const serviceAccount = s ? readString(here.field('serviceAccount', s.keyNode), s.value) : undefined
    if (namespace === undefined || serviceAccount === undefined) good = false
    else out.push({ namespace, serviceAccount })
  })
  return good ? out : undefined
}

function emptyMatch(): Match {
  return {
    namespaces: [],
    notNamespaces: [],
    principals: [],
    notPrincipals: [],
    serviceAccounts: [],
    notServiceAccounts: [],
    sourceIps: [],
    notSourceIps: [],
    destinationIps: [],
    notDestinationIps: [],
    destinationPorts: [],
    notDestinationPorts: [],
  }
}

/** A match object. ztunnel ignores unknown keys here; we refuse them (§8 item 9). */
function readMatch(at: At, raw: YNode, action: string | undefined): Match | undefined {
  const node = at.sink.deref(raw)
  if (!node || !isMap(node)) {
    const found = node && isSeq(node) ? 'a list (one level of nesting too many?)' : 'a scalar'
    at.error(`expected a match object (a mapping such as {principals: [...]}), found ${found}`, node)
    return undefined
  }
  const before = at.sink.errorCount
  const f = readStruct(at, node, { fields: MATCH_FIELDS, unknown: 'ignoredUpstream', hints: MATCH_HINTS })
  if (!f) return undefined
  const m = emptyMatch()
  for (const k of STRING_MATCH_KEYS) {
    const e = f.get(k)
    if (!e) continue
    const kAt = at.field(k, e.keyNode)
    const items = readSeq(kAt, e.value)
    if (!items) continue
    m[k] = items.map((it, i) => readStringMatch(kAt.index(i, at.sink.deref(it)), it)).filter((x) => x !== undefined)
  }
  for (const k of SA_KEYS) {
    const e = f.get(k)
    if (!e) continue
    m[k] = readServiceAccounts(at.field(k, e.keyNode), e.value) ?? []
  }
  for (const k of CIDR_KEYS) {
    const e = f.get(k)
    if (!e) continue
    m[k] = readParsedList(at.field(k, e.keyNode), e.value, parseCidr) ?? []
  }
  for (const k of PORT_KEYS) {
    const e = f.get(k)
    if (!e) continue
    const kAt = at.field(k, e.keyNode)
    const items = readSeq(kAt, e.value)
    if (!items) continue
    m[k] = items.map((it, i) => readUint(kAt.index(i, at.sink.deref(it)), it, 16)).filter((x) => x !== undefined)
  }
  if (at.sink.errorCount === before && node.items.length === 0) {
    at.warn(
      'an empty match object {} never matches on its own (it does not mean "match everything")' +
        (action === 'Deny' ? '; in this Deny policy it denies nothing' : ''),
      node,
    )
  }
  return at.sink.errorCount === before ? m : undefined
}

const NESTING =
  'rules are nested lists three levels deep: rules[rule][clause][match], e.g. `rules: [[[{principals: [!Exact x]}]]]`'

function readRules(at: At, raw: YNode, action: string | undefined): Match[][][] | undefined {
  const before = at.sink.errorCount
  const rules = readSeq(at, raw)
  if (!rules) return undefined
  const out = rules.map((rule, r) => {
    const rAt = at.index(r, at.sink.deref(rule))
    const clauses = readSeq(rAt, rule, `; ${NESTING}`) ?? []
    return clauses.map((clause, c) => {
      const cAt = rAt.index(c, at.sink.deref(clause))
      const matches = readSeq(cAt, clause, `; ${NESTING}`) ?? []
      return matches.map((m, i) => readMatch(cAt.index(i, at.sink.deref(m)), m, action)).filter((x) => x !== undefined)
    })
  })
  return at.sink.errorCount === before ? out : undefined
}

/** One policy entry; `undefined` when it has problems (all of them recorded). */
export function readPolicy(sink: Sink, index: number, raw: YNode): Policy | undefined {
  const node = sink.deref(raw)
  const at = new At(sink, policyLabel(sink, index, node), '', false, node)
  const before = sink.errorCount
  const f = readStruct(at, node, {
    fields: FIELDS,
    required: FIELDS,
    unknown: 'reject',
    hints: { dry_run: 'write `dryRun`', groups: 'the local file has no `groups`', clauses: NESTING },
    missingHints: { dryRun: 'it has no default; write `dryRun: false` to enforce the policy (reference §6)' },
  })
  if (!f) return undefined
  const fieldAt = (k: string): At => at.field(k, f.get(k)?.keyNode)
  const value = (k: string): YNode => f.get(k)?.value
  const name = f.has('name') ? readName(fieldAt('name'), value('name')) : undefined
  const namespace = f.has('namespace') ? readName(fieldAt('namespace'), value('namespace')) : undefined
  const scope = f.has('scope')
    ? readEnum(fieldAt('scope'), value('scope'), ['Global', 'Namespace', 'WorkloadSelector'] as const)
    : undefined
  const action = f.has('action') ? readEnum(fieldAt('action'), value('action'), ['Allow', 'Deny'] as const) : undefined
  const dryRun = f.has('dryRun') ? readBool(fieldAt('dryRun'), value('dryRun')) : undefined
  const rules = f.has('rules') ? readRules(fieldAt('rules'), value('rules'), action) : undefined
  if (sink.errorCount !== before) return undefined
  if (name === undefined || namespace === undefined || !scope || !action || dryRun === undefined || !rules)
    return undefined
  return { name, namespace, scope, action, dryRun, rules }
}
