import type { XfrmMode, XfrmPolicyAction, XfrmPolicyDir } from './constants.js'

/** `struct xfrm_mark`: packets match when `skb->mark & mask == value`. */
export interface XfrmMark {
  value: number
  mask: number
}

/** `struct xfrm_selector`: which packets a policy (or a state) applies to. */
export interface XfrmSelector {
  /** Source CIDR, e.g. `0.0.0.0/0`. */
  src: string
  /** Destination CIDR, e.g. `10.244.1.0/24`. */
  dst: string
  /** Upper-layer protocol, 0 for any. */
  proto?: number
  sport?: number
  sportMask?: number
  dport?: number
  dportMask?: number
  ifindex?: number
}

/** `struct xfrm_algo_aead`: an AEAD algorithm with its key (bits = bytes × 8 on the wire) and ICV length. */
export interface XfrmAead {
  name: string
  key: Buffer
  icvLengthBits: number
}

/** Identifies one state: (destination, SPI, protocol) plus the source as XFRMA_SRCADDR and the mark. */
export interface XfrmStateId {
  src: string
  dst: string
  spi: number
  /** IP protocol number, 50 (ESP) by default. */
  proto?: number
  mark?: XfrmMark
}

/** An XFRM state (security association). */
export interface XfrmState extends XfrmStateId {
  mode: XfrmMode
  reqid: number
  replayWindow?: number
  flags?: number
  aead?: XfrmAead
  /** Output mark (XFRMA_SET_MARK / XFRMA_SET_MARK_MASK): the mark packets carry after this state processed them. */
  outputMark?: XfrmMark
  /** Traffic selector; absent means "any" (all zero, what iproute2 sends without `sel`). */
  selector?: XfrmSelector
  ifId?: number
}

/** A state as the kernel reports it (get or dump): the configuration plus its counters. */
export interface XfrmStateInfo extends XfrmState {
  current: { bytes: bigint; packets: bigint; addTime: bigint; useTime: bigint }
  stats: { replayWindow: number; replay: number; integrityFailed: number }
  /** Names of algorithms the decoder saw but does not model (auth, crypt). */
  otherAlgorithms: string[]
}

/** `struct xfrm_user_tmpl`: which state a matching packet must go through. */
export interface XfrmTemplate {
  src: string
  dst: string
  /** IP protocol number, 50 (ESP) by default. */
  proto?: number
  /** 0 (the default) matches any SPI. */
  spi?: number
  reqid: number
  mode: XfrmMode
  share?: number
  optional?: boolean
  /** Allowed algorithm bitmaps; all ones by default, as iproute2 sends. */
  aalgos?: number
  ealgos?: number
  calgos?: number
}

/** Identifies one policy: selector, direction, mark (or an index). */
export interface XfrmPolicyId {
  selector: XfrmSelector
  dir: XfrmPolicyDir
  mark?: XfrmMark
  index?: number
}

/** An XFRM policy. */
export interface XfrmPolicy extends XfrmPolicyId {
  priority?: number
  action?: XfrmPolicyAction
  flags?: number
  share?: number
  templates: XfrmTemplate[]
  ifId?: number
}

/** A policy as the kernel reports it. */
export interface XfrmPolicyInfo extends XfrmPolicy {
  index: number
  priority: number
  action: XfrmPolicyAction
  current: { addTime: bigint; useTime: bigint }
}
