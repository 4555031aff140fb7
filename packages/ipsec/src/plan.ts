import {
  IPSEC_MARK_DECRYPT,
  IPSEC_MARK_ENCRYPT,
  IPSEC_MARK_PEER,
  IPSEC_MARK_PEER_MASK,
  IPSEC_MAX_PEERS,
  IPSEC_PEER_ID_SHIFT,
} from '@kmesh-ts/kernel-abi'
import { derivePairKey } from './derive.js'
import { DerivationError, PlanError, XfrmCodecError } from './errors.js'
import type { IpsecKey } from './keyfile.js'
import { AF_INET, addressFamily, networkCidr, parseCidr } from './xfrm/address.js'
import { IPPROTO_ESP, type XfrmPolicyDir } from './xfrm/constants.js'
import type {
  XfrmMark,
  XfrmPolicy,
  XfrmPolicyId,
  XfrmSelector,
  XfrmState,
  XfrmStateId,
  XfrmTemplate,
} from './xfrm/types.js'

/** A node as its `KmeshNodeInfo` describes it (group kmesh.net, v1alpha1; JSON `spec.podCIDRS`). */
export interface NodeInfo {
  name: string
  spi: number
  /** The node's NIC addresses, as written in the node info (they enter the key derivation verbatim). */
  addresses: string[]
  bootID: string
  podCIDRs: string[]
}

/** Marks shared with the tc programs (docs/reference/kmesh-dataplane.md §1.10, §4.4): include/ipsec.h owns them. */
export const KMESH_MARK_ENCRYPT = IPSEC_MARK_ENCRYPT
export const KMESH_MARK_DECRYPT = IPSEC_MARK_DECRYPT
export const KMESH_MARK_MASK = 0xffffffff
export const KMESH_REQID = 1

const mark = (value: number): XfrmMark => ({ value, mask: KMESH_MARK_MASK })

export type EgressDecision =
  /** OUT state and policies planned with the remote node's SPI. */
  | 'planned'
  /** The remote node already uses a newer SPI than ours: wait until our key file catches up. */
  | 'remote-spi-newer'
  /** The remote SPI is not newer, but its key is not in our history (e.g. after a restart): nothing to encrypt with. */
  | 'remote-key-unknown'

export interface NodeRules {
  remote: string
  states: XfrmState[]
  policies: XfrmPolicy[]
  egress: EgressDecision
}

/** What the planner needs from the key history. */
export interface KeyLookup {
  get(spi: number): IpsecKey | undefined
}

export interface PlanOptions {
  /**
   * kmesh-ts extension, beyond Kmesh (default true): per (remote pod CIDR, local pod CIDR) pair, IN and FWD policies
   * for packets that arrive unmarked, with the same ESP template as the 0xd0 policies, so plaintext from a remote
   * node's pods is dropped instead of delivered. `false` plans exactly Kmesh's rules.
   */
  rejectPlaintext?: boolean
  /**
   * kmesh-ts bookkeeping for three nodes and more (README "Three nodes and more"): this remote's small id. Its IN
   * states carry `peerMark(peerId)` (ESP from it gets that mark in tc_mark_decrypt), and the IN/FWD 0xd0 policies'
   * template takes any source, so one policy per local pod CIDR serves every peer. Keys, SPIs and ESP on the wire
   * are unchanged. Absent: Kmesh's layout, which holds one remote peer only.
   */
  peerId?: number | undefined
}

/**
 * The mark the IN states of remote peer `id` carry, and tc_mark_decrypt sets on ESP from that peer's addresses
 * (include/ipsec.h: `(id << 16) | 0xc0` under mask 0xffff00ff, ids 1..65535). Local bookkeeping only: the mark never
 * leaves the node and the IN state's output mark replaces it with 0xd0 after decryption.
 */
export function peerMark(id: number): XfrmMark {
  if (!Number.isInteger(id) || id < 1 || id > IPSEC_MAX_PEERS)
    throw new RangeError(`peer id must be an integer from 1 to ${IPSEC_MAX_PEERS}, got ${id}`)
  return { value: ((id << IPSEC_PEER_ID_SHIFT) | IPSEC_MARK_PEER) >>> 0, mask: IPSEC_MARK_PEER_MASK }
}

/** The planner's option defaults, in one place. */
export const planDefaults = { rejectPlaintext: true } as const satisfies Required<Omit<PlanOptions, 'peerId'>>

/** Mark value of a packet that tc_mark_decrypt left unmarked (it clears every mark but 0xd0 on a node NIC). */
export const KMESH_MARK_NONE = 0

/**
 * The XFRM states and policies Kmesh installs for one remote node (reference: issue 6, "Ingress" / "Egress").
 *
 * Ingress, per (remote address, local address) of one family: an IN state remote → local with the local SPI,
 * reqid 1, tunnel mode, the pair key derived from the local SPI's key, output mark 0xd0; per local pod CIDR an IN
 * and a FWD policy (src any, mark 0xd0) whose template is that pair.
 * Egress, only when the remote SPI is not newer than ours: an OUT state local → remote with the remote SPI and the
 * pair key from that SPI's key (and output mark 0xd0, as Kmesh sets on every state it makes); per remote pod CIDR an
 * OUT policy (mark 0xe0) whose template carries the SPI.
 *
 * Where we differ from Kmesh on purpose: Kmesh skips a remote node entirely when the remote SPI's key is unknown;
 * here the ingress rules are still planned (they only let the peer reach us) and `egress` says why none is sent.
 * Pod CIDRs enter the selector as networks (host bits cleared), as Go's net.ParseCIDR gives them to Kmesh.
 *
 * A policy is keyed by (selector, direction, mark), so with several address pairs the pairs' policies coincide;
 * Kmesh writes them with "update" in address order, so the last pair's template stays: the plan keeps that one.
 * Address pairs of different families are skipped (an ESP tunnel's two ends share a family).
 * The selector's source is `0.0.0.0/0`, or `::/0` for an IPv6 pod CIDR (a selector has one family).
 *
 * Beyond Kmesh (`rejectPlaintext`, on by default): with Kmesh's rules alone, plaintext from a remote node's pods to
 * ours is still delivered — tc_mark_decrypt clears its mark and no policy matches mark 0. So per remote pod CIDR and
 * local pod CIDR of one family, IN and FWD policies `src <remote pod CIDR> dst <local pod CIDR>`, mark 0/0xffffffff,
 * with the ingress ESP template: a packet from a remote pod that did not come out of our ESP state has no security
 * path and fails the template (XfrmInTmplMismatch). Decrypted packets carry 0xd0 and never match mark 0 under a full
 * mask, so the two sets are disjoint and both keep priority 0 (no ordering needed); same-node traffic and traffic
 * from node addresses are not from a remote pod CIDR and pass as before.
 */
export function planNodeRules(
  local: NodeInfo,
  remote: NodeInfo,
  keys: KeyLookup,
  options: PlanOptions = {},
): NodeRules {
  const { rejectPlaintext } = { ...planDefaults, ...options }
  const ingressMark = options.peerId === undefined ? undefined : peerMark(options.peerId)
  if (typeof rejectPlaintext !== 'boolean')
    throw new TypeError(
      `planNodeRules: option rejectPlaintext must be a boolean, got ${JSON.stringify(rejectPlaintext)}`,
    )
  checkNode(local)
  checkNode(remote)
  const localKey = keys.get(local.spi)
  if (!localKey) throw new PlanError(local.name, `no key for the local SPI ${local.spi} in the key history`)

  const states: XfrmState[] = []
  const policies = new Map<string, XfrmPolicy>()
  const putPolicy = (p: XfrmPolicy): void => {
    policies.delete(policyKey(p))
    policies.set(policyKey(p), p)
  }

  for (const [ra, la] of pairs(remote.addresses, local.addresses)) {
    const inState = tunnelState(
      ra,
      la,
      local.spi,
      localKey,
      derive(remote, localKey, ra, la, remote.bootID, local.bootID),
    )
    if (ingressMark) inState.mark = ingressMark
    states.push(inState)
    const ingress = (src = ra): XfrmTemplate[] => [
      { src, dst: la, proto: IPPROTO_ESP, reqid: KMESH_REQID, mode: 'tunnel' },
    ]
    // With per-peer marks every peer's packets meet the same 0xd0 policy, so its template must accept any peer: a
    // template source of 0.0.0.0 (::) is a wildcard in the kernel's template check (xfrm_state_addr_cmp).
    const decrypted = ingressMark ? ingress(addressFamily(la) === AF_INET ? '0.0.0.0' : '::') : ingress()
    for (const cidr of local.podCIDRs) {
      for (const dir of ['in', 'fwd'] as const)
        putPolicy({ selector: anySourceTo(cidr), dir, mark: mark(KMESH_MARK_DECRYPT), templates: decrypted })
    }
    if (rejectPlaintext) {
      for (const [remoteCidr, localCidr] of cidrPairs(remote.podCIDRs, local.podCIDRs)) {
        for (const dir of ['in', 'fwd'] as const) {
          putPolicy({
            selector: { src: networkCidr(remoteCidr), dst: networkCidr(localCidr) },
            dir,
            mark: mark(KMESH_MARK_NONE),
            templates: ingress(),
          })
        }
      }
    }
  }

  let egress: EgressDecision = 'planned'
  const remoteKey = keys.get(remote.spi)
  if (remote.spi > local.spi) egress = 'remote-spi-newer'
  else if (!remoteKey) egress = 'remote-key-unknown'
  else {
    for (const [la, ra] of pairs(local.addresses, remote.addresses)) {
      states.push(
        tunnelState(la, ra, remote.spi, remoteKey, derive(remote, remoteKey, la, ra, local.bootID, remote.bootID)),
      )
      for (const cidr of remote.podCIDRs) {
        putPolicy({
          selector: anySourceTo(cidr),
          dir: 'out',
          mark: mark(KMESH_MARK_ENCRYPT),
          templates: [{ src: la, dst: ra, proto: IPPROTO_ESP, spi: remote.spi, reqid: KMESH_REQID, mode: 'tunnel' }],
        })
      }
    }
  }
  return { remote: remote.name, states, policies: [...policies.values()], egress }
}

/** The id that deletes a planned state. */
export function stateIdOf(s: XfrmState): XfrmStateId {
  const id: XfrmStateId = { src: s.src, dst: s.dst, spi: s.spi, proto: s.proto ?? IPPROTO_ESP }
  if (s.mark) id.mark = s.mark
  return id
}

/** The id that deletes a planned policy. */
export function policyIdOf(p: XfrmPolicy): XfrmPolicyId {
  const id: XfrmPolicyId = { selector: p.selector, dir: p.dir }
  if (p.mark) id.mark = p.mark
  return id
}

/**
 * One ESP tunnel state. Kmesh builds IN and OUT states with the same helper, so both carry output mark 0xd0.
 */
function tunnelState(src: string, dst: string, spi: number, key: IpsecKey, pairKey: Buffer): XfrmState {
  return {
    src,
    dst,
    proto: IPPROTO_ESP,
    spi,
    mode: 'tunnel',
    reqid: KMESH_REQID,
    aead: { name: key.aeadKeyName, key: pairKey, icvLengthBits: key.length },
    outputMark: mark(KMESH_MARK_DECRYPT),
  }
}

function policyKey(p: { selector: XfrmSelector; dir: XfrmPolicyDir; mark?: XfrmMark }): string {
  return `${p.dir} ${p.selector.src} ${p.selector.dst} ${p.mark?.value ?? 0}/${p.mark?.mask ?? 0}`
}

function anySourceTo(cidr: string): XfrmSelector {
  return { src: parseCidr(cidr).family === AF_INET ? '0.0.0.0/0' : '::/0', dst: networkCidr(cidr) }
}

/** (remote pod CIDR, local pod CIDR) pairs of one family: a selector has one family. */
function* cidrPairs(remote: string[], local: string[]): Generator<[string, string]> {
  for (const r of remote) for (const l of local) if (parseCidr(r).family === parseCidr(l).family) yield [r, l]
}

function* pairs(as: string[], bs: string[]): Generator<[string, string]> {
  for (const a of as) for (const b of bs) if (addressFamily(a) === addressFamily(b)) yield [a, b]
}

function derive(
  remote: NodeInfo,
  key: IpsecKey,
  srcIp: string,
  dstIp: string,
  srcBootId: string,
  dstBootId: string,
): Buffer {
  try {
    return derivePairKey({ key: key.aeadKey, srcIp, dstIp, srcBootId, dstBootId })
  } catch (err) {
    if (err instanceof DerivationError) throw new PlanError(remote.name, err.message)
    throw err
  }
}

function checkNode(n: NodeInfo): void {
  if (!Number.isInteger(n.spi) || n.spi < 1 || n.spi > 0xffffffff)
    throw new PlanError(n.name, `spi must be an integer from 1 to 4294967295, got ${n.spi}`)
  try {
    for (const a of n.addresses) addressFamily(a)
    for (const c of n.podCIDRs) parseCidr(c)
  } catch (err) {
    if (err instanceof XfrmCodecError) throw new PlanError(n.name, err.message)
    throw err
  }
}
