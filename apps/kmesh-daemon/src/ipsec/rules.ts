/**
 * The pure core of the IPsec controller: from the local node, the remote nodes and the key history, every XFRM
 * state, XFRM policy, km_nodeinfo CIDR and km_ipsec_peer entry this node must have (planNodeRules from
 * @kmesh-ts/ipsec per remote), and the ordered steps that turn one such set into another.
 */
import {
  peerMark,
  planNodeRules,
  policyIdOf,
  stateIdOf,
  type EgressDecision,
  type KeyLookup,
  type NodeInfo,
  type PlanOptions,
  type XfrmPolicy,
  type XfrmPolicyId,
  type XfrmState,
  type XfrmStateId,
} from '@kmesh-ts/ipsec/pure'
import { networkCidr } from '@kmesh-ts/ipsec/pure'

export interface RuleSet {
  /** By SA identity: `dst spi proto`. */
  states: Map<string, XfrmState>
  /** By policy identity: `dir src dst mark/mask`. */
  policies: Map<string, XfrmPolicy>
  /** Remote pod CIDRs (networks) for km_nodeinfo. */
  cidrs: Set<string>
  /** km_ipsec_peer: remote node address -> the mark its inbound ESP gets (absent: Kmesh's layout, no peer marks). */
  peers?: Map<string, number>
}

export interface DesiredRules extends RuleSet {
  egress: Map<string, EgressDecision>
  /** Remote nodes that could not be planned, with the reason (bad node info, unknown local key …). */
  errors: Map<string, string>
}

/** The kernel's identity of an SA: (dst, SPI, proto) and, when it has one, the mark (per-peer IN states share the rest). */
export const stateKey = (s: XfrmStateId): string =>
  `${s.dst} ${s.spi} ${s.proto ?? 50}${s.mark ? ` ${s.mark.value}/${s.mark.mask}` : ''}`
export const policyKey = (p: XfrmPolicyId): string =>
  `${p.dir} ${p.selector.src} ${p.selector.dst} ${p.mark?.value ?? 0}/${p.mark?.mask ?? 0}`

/**
 * Everything this node must install for `remotes`.
 *
 * Rotation: the ingress states of an older local SPI `s` stay while a remote still publishes an SPI ≤ s, because
 * that remote has not moved yet and may still encrypt to us with `s` (the peer picks our SPI from our node info,
 * which it may not have re-read). Once the remote publishes a newer SPI they go.
 *
 * `options.rejectPlaintext` (default on, beyond Kmesh) adds per remote the IN/FWD policies that drop unmarked
 * plaintext from its pod CIDRs to ours (planNodeRules in @kmesh-ts/ipsec); they are reconciled and removed like the
 * rest.
 *
 * `options.peerIds` (remote name -> small id, see PeerIds) turns on per-peer marks: each remote's IN states carry its
 * mark and `peers` maps each of its addresses to that mark for tc_mark_decrypt. A remote without an id is planned
 * as Kmesh would (one such remote only can work on a node).
 */
export function desiredRules(
  local: NodeInfo,
  remotes: Iterable<NodeInfo>,
  keys: KeyLookup & { spis: number[] },
  options: Omit<PlanOptions, 'peerId'> & { peerIds?: ReadonlyMap<string, number> | undefined } = {},
): DesiredRules {
  const { peerIds, ...planOptions } = options
  const out: DesiredRules = {
    states: new Map(),
    policies: new Map(),
    cidrs: new Set(),
    peers: new Map(),
    egress: new Map(),
    errors: new Map(),
  }
  for (const remote of remotes) {
    if (remote.name === local.name) continue
    try {
      const peerId = peerIds?.get(remote.name)
      // Planned without a mark, its IN state (mark 0/0) would match every peer's ESP and shadow their states.
      if (peerIds && peerId === undefined) throw new Error('no free peer id (65535 remote peers at most)')
      const options: PlanOptions = { ...planOptions, peerId }
      const plan = planNodeRules(local, remote, keys, options)
      const older = keys.spis.filter((s) => s < local.spi && s >= remote.spi)
      const ingressOfOlder = older.flatMap((spi) =>
        planNodeRules({ ...local, spi }, remote, keys, options).states.filter(
          (s) => s.spi === spi && local.addresses.includes(s.dst),
        ),
      )
      for (const s of [...plan.states, ...ingressOfOlder]) out.states.set(stateKey(s), s)
      for (const p of plan.policies) out.policies.set(policyKey(p), p)
      for (const c of remote.podCIDRs) out.cidrs.add(networkCidr(c))
      if (peerId !== undefined) for (const a of remote.addresses) out.peers!.set(a, peerMark(peerId).value)
      out.egress.set(remote.name, plan.egress)
    } catch (err) {
      out.errors.set(remote.name, (err as Error).message)
    }
  }
  return out
}

export type Step =
  | { op: 'delete-cidr'; cidr: string }
  | { op: 'delete-peer'; address: string }
  | { op: 'put-peer'; address: string; mark: number }
  | { op: 'delete-policy'; id: XfrmPolicyId; key: string }
  | { op: 'delete-state'; id: XfrmStateId; key: string }
  | { op: 'add-state'; state: XfrmState; key: string }
  | { op: 'update-policy'; policy: XfrmPolicy; key: string }
  | { op: 'add-cidr'; cidr: string }

/**
 * The steps from `installed` to `desired`, in an order that never leaves marked traffic without its rules: stop
 * marking for vanished CIDRs first, then drop policies, then states and the peer marks that selected them; add states,
 * then the peer marks that select them, before the policies that use them, and mark new CIDRs last. A state whose content changed (a new pair key after a boot id change) is deleted and
 * added again: the kernel's update keeps an existing SA's algorithm and key.
 */
export function planSteps(installed: RuleSet, desired: RuleSet): Step[] {
  const steps: Step[] = []
  for (const cidr of installed.cidrs) if (!desired.cidrs.has(cidr)) steps.push({ op: 'delete-cidr', cidr })
  for (const [key, p] of installed.policies)
    if (!desired.policies.has(key)) steps.push({ op: 'delete-policy', id: policyIdOf(p), key })
  const changedStates: XfrmState[] = []
  for (const [key, s] of installed.states) {
    const want = desired.states.get(key)
    if (!want || !sameState(s, want)) steps.push({ op: 'delete-state', id: stateIdOf(s), key })
  }
  for (const [key, s] of desired.states) {
    const have = installed.states.get(key)
    if (!have || !sameState(have, s)) changedStates.push(s)
  }
  const peersHave = installed.peers ?? new Map<string, number>()
  const peersWant = desired.peers ?? new Map<string, number>()
  for (const address of peersHave.keys()) if (!peersWant.has(address)) steps.push({ op: 'delete-peer', address })
  for (const s of changedStates) steps.push({ op: 'add-state', state: s, key: stateKey(s) })
  for (const [address, mark] of peersWant)
    if (peersHave.get(address) !== mark) steps.push({ op: 'put-peer', address, mark })
  for (const [key, p] of desired.policies) {
    const have = installed.policies.get(key)
    if (!have || JSON.stringify(have) !== JSON.stringify(p)) steps.push({ op: 'update-policy', policy: p, key })
  }
  for (const cidr of desired.cidrs) if (!installed.cidrs.has(cidr)) steps.push({ op: 'add-cidr', cidr })
  return steps
}

/** Equal configuration, key bytes included (compared, never printed). */
export function sameState(a: XfrmState, b: XfrmState): boolean {
  const { aead: ka, ...ra } = a
  const { aead: kb, ...rb } = b
  if (JSON.stringify(ra) !== JSON.stringify(rb)) return false
  if (!ka || !kb) return ka === kb
  return ka.name === kb.name && ka.icvLengthBits === kb.icvLengthBits && ka.key.equals(kb.key)
}

/** A step as a log line's fields: ids only, never key material. */
export function describeStep(s: Step): Record<string, string> {
  switch (s.op) {
    case 'delete-cidr':
    case 'add-cidr':
      return { op: s.op, cidr: s.cidr }
    case 'delete-peer':
      return { op: s.op, peer: s.address }
    case 'put-peer':
      return { op: s.op, peer: s.address, mark: `0x${s.mark.toString(16)}` }
    case 'delete-policy':
    case 'update-policy':
    case 'delete-state':
    case 'add-state':
      return { op: s.op, rule: s.key }
  }
}
