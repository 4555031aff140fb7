/**
 * Which policies apply to a destination workload (docs/reference/istio-l4-authz.md §2.1) and the decision order
 * (§3.1), as ztunnel does them — not Kmesh's deviations (§7).
 */
import { isV4Mapped, parseIp, unmapV4 } from '@kmesh-ts/ip'
import type { Authorization } from '@kmesh-ts/xds-client'
import { type CompiledRules, type Connection, compileRules, firstMatchingRule, type Identity } from './match.js'
import { Action, Scope } from './wire.js'

/** The destination workload: what policy selection reads (a decoded xds-client `Workload` fits). */
export interface DestinationWorkload {
  uid: string
  namespace: string
  /** Keys `<namespace>/<name>` of the selector policies istiod listed for this workload (§2.1). */
  authorizationPolicies: readonly string[]
}

export interface EvaluateInput {
  /** Every Authorization known, as @kmesh-ts/xds-client decodes them; a later one with the same key replaces. */
  policies: Iterable<Authorization>
  workload: DestinationWorkload
  /** `identity` undefined: plaintext (no identity, §4.2). `ip`: text or 4/16 bytes; `::ffff:a.b.c.d` is IPv4. */
  source: { ip: string | Uint8Array; identity?: Identity | undefined }
  /** The port the connection is delivered to: the pod's target port (§5.1). */
  destination: { ip: string | Uint8Array; port: number }
  /**
   * When given, a GLOBAL policy applies only if it lives in this namespace (istiod makes GLOBAL only from the root
   * namespace, §1.2). When omitted, every GLOBAL policy applies whatever its namespace, as ztunnel files them (§2.1).
   */
  rootNamespace?: string | undefined
}

/** One dry-run policy that was evaluated (§3.1 steps 2 and 4): reported, never enforced. */
export interface DryRunResult {
  /** `<namespace>/<name>` */
  policy: string
  action: 'allow' | 'deny'
  matched: boolean
  /** The first matching rule's index, when matched. */
  rule?: number
  /** ztunnel's log line when matched: `dry-run: deny policy match` / `dry-run: allow policy match`. */
  log?: string
}

export interface Decision {
  verdict: 'allow' | 'deny'
  /** The enforced policy that decided: the matching DENY, or the matching ALLOW. Absent for the defaults. */
  policy?: string
  /** Index of the first matching rule of `policy`. */
  rule?: number
  /** The dry-run policies ztunnel evaluates on the way to this verdict (§3.1), in evaluation order. */
  dryRun?: DryRunResult[]
  /** Human text; includes ztunnel's `dry-run: no allow policies match` when it would log that (§3.1 step 5). */
  reason: string
  /** Keys listed in the workload's authorizationPolicies that resolve to no policy (skipped, §2.1). */
  unknownKeys?: string[]
}

/** `<namespace>/<name>`, the xDS resource name and the key in `Workload.authorizationPolicies` (§2.1). */
export const policyKey = (p: Pick<Authorization, 'namespace' | 'name'>): string => `${p.namespace}/${p.name}`

/** §4.2: the connection's addresses are canonicalised on accept, so `::ffff:a.b.c.d` is IPv4. */
export function canonicalAddress(ip: string | Uint8Array): Uint8Array {
  const bytes = typeof ip === 'string' ? parseIp(ip) : ip
  if (bytes.length !== 4 && bytes.length !== 16) {
    throw new RangeError(`an IP address is 4 or 16 bytes, got ${bytes.length}`)
  }
  return bytes.length === 16 && isV4Mapped(bytes) ? unmapV4(bytes) : bytes
}

/**
 * The intro of the reference: without mTLS the source identity comes from the source's workload record, with
 * ztunnel's defaults filled in (empty trust domain → `cluster.local`, empty service account → `default`). A source
 * that maps to no workload has no identity.
 */
export function workloadIdentity(
  w: { trustDomain: string; namespace: string; serviceAccount: string } | undefined,
): Identity | undefined {
  if (w === undefined) return undefined
  return {
    trustDomain: w.trustDomain === '' ? 'cluster.local' : w.trustDomain,
    namespace: w.namespace,
    serviceAccount: w.serviceAccount === '' ? 'default' : w.serviceAccount,
  }
}

interface Candidate {
  key: string
  policy: Authorization
  rules: CompiledRules
}

/**
 * §2.1: the union of NAMESPACE policies of W's namespace, every GLOBAL policy, and the keys W lists (whatever the
 * scope of the policy a listed key names: ztunnel looks each key up in one store). A WORKLOAD_SELECTOR policy
 * applies only through W's list. A policy whose scope or action is not a known number is rejected on arrival
 * (§3.1 "Actions") and so never applies.
 */
export function applicablePolicies(
  policies: Iterable<Authorization>,
  workload: DestinationWorkload,
  rootNamespace?: string,
): { policies: Authorization[]; unknownKeys: string[] } {
  const byKey = new Map<string, Authorization>()
  for (const p of policies) {
    const known =
      (p.scope === Scope.GLOBAL || p.scope === Scope.NAMESPACE || p.scope === Scope.WORKLOAD_SELECTOR) &&
      (p.action === Action.ALLOW || p.action === Action.DENY)
    // A resource ztunnel cannot convert is rejected on arrival: it is not stored, and changes nothing stored.
    if (known) byKey.set(policyKey(p), p)
  }
  const chosen = new Set<string>()
  for (const [key, p] of byKey) {
    if (p.scope === Scope.NAMESPACE && p.namespace === workload.namespace) chosen.add(key)
    if (p.scope === Scope.GLOBAL && (rootNamespace === undefined || p.namespace === rootNamespace)) chosen.add(key)
  }
  const unknownKeys: string[] = []
  for (const key of workload.authorizationPolicies) {
    if (byKey.has(key)) chosen.add(key)
    else unknownKeys.push(key) // `skipping unknown policy`
  }
  // ztunnel walks hash sets (§3.1 step 3: which matching DENY is reported is not deterministic); we walk by key.
  const keys = [...chosen].sort()
  return { policies: keys.map((k) => byKey.get(k) as Authorization), unknownKeys }
}

/** The decision of §3.1 for one connection to `workload`. */
export function evaluate(input: EvaluateInput): Decision {
  const { policies, unknownKeys } = applicablePolicies(input.policies, input.workload, input.rootNamespace)
  const port = input.destination.port
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new RangeError(`a destination port is an integer in 0..65535, got ${port}`)
  }
  const conn: Connection = {
    srcIp: canonicalAddress(input.source.ip),
    identity: input.source.identity,
    dstIp: canonicalAddress(input.destination.ip),
    dstPort: port,
  }
  const candidates: Candidate[] = policies.map((p) => ({ key: policyKey(p), policy: p, rules: compileRules(p) }))
  const pick = (action: number, dryRun: boolean) =>
    candidates.filter((c) => c.policy.action === action && c.policy.dryRun === dryRun)
  const dryRun: DryRunResult[] = []
  const finish = (d: Omit<Decision, 'dryRun' | 'unknownKeys'>): Decision => {
    const out: Decision = { ...d }
    if (dryRun.length > 0) out.dryRun = dryRun
    if (unknownKeys.length > 0) out.unknownKeys = unknownKeys
    return out
  }
  const runDry = (list: Candidate[], action: 'allow' | 'deny'): boolean => {
    let any = false
    for (const c of list) {
      const rule = firstMatchingRule(c.rules, conn)
      if (rule < 0) dryRun.push({ policy: c.key, action, matched: false })
      else {
        any = true
        dryRun.push({ policy: c.key, action, matched: true, rule, log: `dry-run: ${action} policy match` })
      }
    }
    return any
  }

  // Step 2: every dry-run DENY, reported only.
  runDry(pick(Action.DENY, true), 'deny')
  // Step 3: the first matching enforced DENY rejects.
  for (const c of pick(Action.DENY, false)) {
    const rule = firstMatchingRule(c.rules, conn)
    if (rule >= 0) return finish({ verdict: 'deny', policy: c.key, rule, reason: `denied by DENY policy ${c.key}` })
  }
  // Step 4: every dry-run ALLOW, reported only; dry-run ALLOWs never count as "the workload has ALLOW policies".
  const dryAllows = pick(Action.ALLOW, true)
  const dryAllowMatched = runDry(dryAllows, 'allow')
  const allows = pick(Action.ALLOW, false)
  // Step 5: no enforced ALLOW → allowed.
  if (allows.length === 0) {
    const note = dryAllows.length > 0 && !dryAllowMatched ? ' (dry-run: no allow policies match)' : ''
    return finish({ verdict: 'allow', reason: `allowed: no enforced ALLOW policy applies${note}` })
  }
  // Step 6: any matching enforced ALLOW → allowed.
  for (const c of allows) {
    const rule = firstMatchingRule(c.rules, conn)
    if (rule >= 0) return finish({ verdict: 'allow', policy: c.key, rule, reason: `allowed by ALLOW policy ${c.key}` })
  }
  // Step 7: NotAllowed.
  return finish({ verdict: 'deny', reason: `denied: ${allows.length} ALLOW policies apply and none matches` })
}
