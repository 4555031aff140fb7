import { XfrmCodecError } from '../errors.js'
import { addressFamily, decodeAddress, encodeAddress, formatCidr, parseCidr } from './address.js'
import {
  IPPROTO_ESP,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  SIZEOF,
  XFRM_INF,
  XFRM_MODE,
  XFRM_MSG,
  XFRM_POLICY_ACTION,
  XFRM_POLICY_DIR,
  XFRMA,
  type XfrmMode,
  type XfrmPolicyAction,
  type XfrmPolicyDir,
} from './constants.js'
import {
  cString,
  decodeAttributes,
  encodeAttributes,
  encodeMessage,
  type NetlinkAttribute,
  type NetlinkMessage,
} from './netlink.js'
import type {
  XfrmMark,
  XfrmPolicy,
  XfrmPolicyId,
  XfrmPolicyInfo,
  XfrmSelector,
  XfrmState,
  XfrmStateId,
  XfrmStateInfo,
  XfrmTemplate,
} from './types.js'

// Layouts: <linux/xfrm.h>; offsets verified with offsetof() in test/xfrm-layout.test.ts.

const u32 = (name: string, v: number | undefined, dflt = 0): number => {
  const x = v ?? dflt
  if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) throw new XfrmCodecError(`${name} must be a u32, got ${x}`)
  return x
}
const u16 = (name: string, v: number | undefined): number => {
  const x = v ?? 0
  if (!Number.isInteger(x) || x < 0 || x > 0xffff) throw new XfrmCodecError(`${name} must be a u16, got ${x}`)
  return x
}
const u8 = (name: string, v: number | undefined): number => {
  const x = v ?? 0
  if (!Number.isInteger(x) || x < 0 || x > 0xff) throw new XfrmCodecError(`${name} must be a u8, got ${x}`)
  return x
}

function modeNumber(mode: XfrmMode): number {
  const n = XFRM_MODE[mode]
  if (n === undefined) throw new XfrmCodecError(`unknown mode "${mode}"`)
  return n
}
function modeName(n: number): XfrmMode {
  const e = Object.entries(XFRM_MODE).find(([, v]) => v === n)
  if (!e) throw new XfrmCodecError(`unknown mode ${n}`)
  return e[0] as XfrmMode
}
function dirName(n: number): XfrmPolicyDir {
  const e = Object.entries(XFRM_POLICY_DIR).find(([, v]) => v === n)
  if (!e) throw new XfrmCodecError(`unknown policy direction ${n}`)
  return e[0] as XfrmPolicyDir
}
function actionName(n: number): XfrmPolicyAction {
  return n === XFRM_POLICY_ACTION.block ? 'block' : 'allow'
}

// ---- struct xfrm_selector (56 bytes) ----

function encodeSelector(sel: XfrmSelector | undefined, out: Buffer, off: number): void {
  if (!sel) return // all zero: "any", family AF_UNSPEC
  const src = parseCidr(sel.src)
  const dst = parseCidr(sel.dst)
  if (src.family !== dst.family) throw new XfrmCodecError(`selector mixes families: ${sel.src} and ${sel.dst}`)
  encodeAddress(dst.address, out, off)
  encodeAddress(src.address, out, off + 16)
  out.writeUInt16BE(u16('selector.dport', sel.dport), off + 32)
  out.writeUInt16BE(u16('selector.dportMask', sel.dportMask), off + 34)
  out.writeUInt16BE(u16('selector.sport', sel.sport), off + 36)
  out.writeUInt16BE(u16('selector.sportMask', sel.sportMask), off + 38)
  out.writeUInt16LE(dst.family, off + 40)
  out.writeUInt8(dst.prefixLength, off + 42)
  out.writeUInt8(src.prefixLength, off + 43)
  out.writeUInt8(u8('selector.proto', sel.proto), off + 44)
  out.writeInt32LE(sel.ifindex ?? 0, off + 48)
}

function decodeSelector(b: Buffer, off: number): XfrmSelector | undefined {
  const family = b.readUInt16LE(off + 40)
  if (family === 0 && b.subarray(off, off + SIZEOF.selector).every((x) => x === 0)) return undefined
  const sel: XfrmSelector = {
    src: formatCidr(decodeAddress(b, off + 16, family), b.readUInt8(off + 43)),
    dst: formatCidr(decodeAddress(b, off, family), b.readUInt8(off + 42)),
  }
  const optional: [keyof XfrmSelector, number][] = [
    ['proto', b.readUInt8(off + 44)],
    ['dport', b.readUInt16BE(off + 32)],
    ['dportMask', b.readUInt16BE(off + 34)],
    ['sport', b.readUInt16BE(off + 36)],
    ['sportMask', b.readUInt16BE(off + 38)],
    ['ifindex', b.readInt32LE(off + 48)],
  ]
  for (const [k, v] of optional) if (v !== 0) (sel as unknown as Record<string, number>)[k] = v
  return sel
}

// ---- struct xfrm_lifetime_cfg (64 bytes): byte and packet limits "infinite", as iproute2 and Kmesh send ----

function encodeLifetimeCfg(out: Buffer, off: number): void {
  for (let i = 0; i < 4; i++) out.writeBigUInt64LE(XFRM_INF, off + 8 * i)
}

function encodeMark(m: XfrmMark): Buffer {
  const b = Buffer.alloc(SIZEOF.mark)
  b.writeUInt32LE(u32('mark.value', m.value), 0)
  b.writeUInt32LE(u32('mark.mask', m.mask), 4)
  return b
}
function decodeMark(b: Buffer): XfrmMark {
  return { value: b.readUInt32LE(0), mask: b.readUInt32LE(4) }
}
function u32Attr(type: number, v: number): NetlinkAttribute {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(v >>> 0, 0)
  return { type, value: b }
}

// ---- states ----

/** `struct xfrm_usersa_info` + attributes, the payload of XFRM_MSG_NEWSA / UPDSA. */
export function encodeStatePayload(s: XfrmState): Buffer {
  const family = addressFamily(s.dst)
  if (addressFamily(s.src) !== family) throw new XfrmCodecError(`state ${s.src} → ${s.dst} mixes address families`)
  const info = Buffer.alloc(SIZEOF.usersaInfo)
  encodeSelector(s.selector, info, 0)
  encodeAddress(s.dst, info, 56) // id.daddr
  info.writeUInt32BE(u32('spi', s.spi), 72) // id.spi, network order
  info.writeUInt8(u8('proto', s.proto ?? IPPROTO_ESP), 76) // id.proto
  encodeAddress(s.src, info, 80) // saddr
  encodeLifetimeCfg(info, 96)
  info.writeUInt32LE(u32('reqid', s.reqid), 208)
  info.writeUInt16LE(family, 212)
  info.writeUInt8(modeNumber(s.mode), 214)
  info.writeUInt8(u8('replayWindow', s.replayWindow), 215)
  info.writeUInt8(u8('flags', s.flags), 216)

  const attrs: NetlinkAttribute[] = []
  if (s.aead) {
    const name = Buffer.from(s.aead.name, 'utf8')
    if (name.length > 63) throw new XfrmCodecError(`AEAD name "${s.aead.name}" is longer than 63 bytes`)
    const v = Buffer.alloc(SIZEOF.algoAead + s.aead.key.length)
    name.copy(v, 0)
    v.writeUInt32LE(s.aead.key.length * 8, 64)
    v.writeUInt32LE(u32('aead.icvLengthBits', s.aead.icvLengthBits), 68)
    s.aead.key.copy(v, SIZEOF.algoAead)
    attrs.push({ type: XFRMA.ALG_AEAD, value: v })
  }
  if (s.mark) attrs.push({ type: XFRMA.MARK, value: encodeMark(s.mark) })
  if (s.outputMark) {
    attrs.push(u32Attr(XFRMA.SET_MARK, u32('outputMark.value', s.outputMark.value)))
    attrs.push(u32Attr(XFRMA.SET_MARK_MASK, u32('outputMark.mask', s.outputMark.mask)))
  }
  if (s.ifId !== undefined) attrs.push(u32Attr(XFRMA.IF_ID, u32('ifId', s.ifId)))
  return Buffer.concat([info, encodeAttributes(attrs)])
}

/** Decodes the payload of XFRM_MSG_NEWSA (a get answer or a dump entry). */
export function decodeStatePayload(p: Buffer): XfrmStateInfo {
  if (p.length < SIZEOF.usersaInfo)
    throw new XfrmCodecError(
      `state payload of ${p.length} bytes is shorter than xfrm_usersa_info (${SIZEOF.usersaInfo})`,
    )
  const family = p.readUInt16LE(212)
  const s: XfrmStateInfo = {
    src: decodeAddress(p, 80, family),
    dst: decodeAddress(p, 56, family),
    spi: p.readUInt32BE(72),
    proto: p.readUInt8(76),
    mode: modeName(p.readUInt8(214)),
    reqid: p.readUInt32LE(208),
    replayWindow: p.readUInt8(215),
    flags: p.readUInt8(216),
    current: {
      bytes: p.readBigUInt64LE(160),
      packets: p.readBigUInt64LE(168),
      addTime: p.readBigUInt64LE(176),
      useTime: p.readBigUInt64LE(184),
    },
    stats: { replayWindow: p.readUInt32LE(192), replay: p.readUInt32LE(196), integrityFailed: p.readUInt32LE(200) },
    otherAlgorithms: [],
  }
  const sel = decodeSelector(p, 0)
  if (sel) s.selector = sel
  let setMark: number | undefined
  let setMask: number | undefined
  for (const a of decodeAttributes(p.subarray(SIZEOF.usersaInfo))) {
    switch (a.type) {
      case XFRMA.ALG_AEAD: {
        const keyBits = a.value.readUInt32LE(64)
        s.aead = {
          name: cString(a.value.subarray(0, 64)),
          key: Buffer.from(a.value.subarray(SIZEOF.algoAead, SIZEOF.algoAead + keyBits / 8)),
          icvLengthBits: a.value.readUInt32LE(68),
        }
        break
      }
      case XFRMA.ALG_AUTH:
      case XFRMA.ALG_CRYPT:
        s.otherAlgorithms.push(cString(a.value.subarray(0, 64)))
        break
      case XFRMA.MARK:
        s.mark = decodeMark(a.value)
        break
      case XFRMA.SET_MARK:
        setMark = a.value.readUInt32LE(0)
        break
      case XFRMA.SET_MARK_MASK:
        setMask = a.value.readUInt32LE(0)
        break
      case XFRMA.IF_ID:
        s.ifId = a.value.readUInt32LE(0)
        break
    }
  }
  // The kernel reads a lone XFRMA_SET_MARK as mask 0xffffffff (net/xfrm/xfrm_user.c, xfrm_smark_init).
  if (setMark !== undefined) s.outputMark = { value: setMark, mask: setMask ?? 0xffffffff }
  return s
}

/** `struct xfrm_usersa_id` + XFRMA_SRCADDR (+ XFRMA_MARK): the payload of XFRM_MSG_GETSA / DELSA. */
export function encodeStateIdPayload(id: XfrmStateId): Buffer {
  const family = addressFamily(id.dst)
  const b = Buffer.alloc(SIZEOF.usersaId)
  encodeAddress(id.dst, b, 0)
  b.writeUInt32BE(u32('spi', id.spi), 16)
  b.writeUInt16LE(family, 20)
  b.writeUInt8(u8('proto', id.proto ?? IPPROTO_ESP), 22)
  const attrs: NetlinkAttribute[] = [{ type: XFRMA.SRCADDR, value: encodeAddress(id.src) }]
  if (id.mark) attrs.push({ type: XFRMA.MARK, value: encodeMark(id.mark) })
  return Buffer.concat([b, encodeAttributes(attrs)])
}

// ---- policies ----

function encodeTemplate(t: XfrmTemplate, out: Buffer, off: number): void {
  const family = addressFamily(t.dst)
  if (addressFamily(t.src) !== family) throw new XfrmCodecError(`template ${t.src} → ${t.dst} mixes address families`)
  encodeAddress(t.dst, out, off) // id.daddr
  out.writeUInt32BE(u32('template.spi', t.spi), off + 16)
  out.writeUInt8(u8('template.proto', t.proto ?? IPPROTO_ESP), off + 20)
  out.writeUInt16LE(family, off + 24)
  encodeAddress(t.src, out, off + 28)
  out.writeUInt32LE(u32('template.reqid', t.reqid), off + 44)
  out.writeUInt8(modeNumber(t.mode), off + 48)
  out.writeUInt8(u8('template.share', t.share), off + 49)
  out.writeUInt8(t.optional ? 1 : 0, off + 50)
  out.writeUInt32LE(u32('template.aalgos', t.aalgos, 0xffffffff), off + 52)
  out.writeUInt32LE(u32('template.ealgos', t.ealgos, 0xffffffff), off + 56)
  out.writeUInt32LE(u32('template.calgos', t.calgos, 0xffffffff), off + 60)
}

function decodeTemplate(b: Buffer, off: number): XfrmTemplate {
  const family = b.readUInt16LE(off + 24)
  const t: XfrmTemplate = {
    src: decodeAddress(b, off + 28, family),
    dst: decodeAddress(b, off, family),
    proto: b.readUInt8(off + 20),
    spi: b.readUInt32BE(off + 16),
    reqid: b.readUInt32LE(off + 44),
    mode: modeName(b.readUInt8(off + 48)),
    share: b.readUInt8(off + 49),
    optional: b.readUInt8(off + 50) !== 0,
    aalgos: b.readUInt32LE(off + 52),
    ealgos: b.readUInt32LE(off + 56),
    calgos: b.readUInt32LE(off + 60),
  }
  return t
}

function requireSelector(p: XfrmPolicyId): XfrmSelector {
  if (!p.selector) throw new XfrmCodecError('a policy needs a selector')
  return p.selector
}

/** `struct xfrm_userpolicy_info` + XFRMA_TMPL + XFRMA_MARK: the payload of XFRM_MSG_NEWPOLICY / UPDPOLICY. */
export function encodePolicyPayload(p: XfrmPolicy): Buffer {
  const info = Buffer.alloc(SIZEOF.userpolicyInfo)
  encodeSelector(requireSelector(p), info, 0)
  encodeLifetimeCfg(info, 56)
  info.writeUInt32LE(u32('priority', p.priority), 152)
  info.writeUInt32LE(u32('index', p.index), 156)
  const dir = XFRM_POLICY_DIR[p.dir]
  if (dir === undefined) throw new XfrmCodecError(`unknown policy direction "${p.dir}"`)
  info.writeUInt8(dir, 160)
  info.writeUInt8(XFRM_POLICY_ACTION[p.action ?? 'allow'], 161)
  info.writeUInt8(u8('flags', p.flags), 162)
  info.writeUInt8(u8('share', p.share), 163)
  const attrs: NetlinkAttribute[] = []
  if (p.templates.length > 0) {
    const t = Buffer.alloc(SIZEOF.userTmpl * p.templates.length)
    p.templates.forEach((tmpl, i) => encodeTemplate(tmpl, t, i * SIZEOF.userTmpl))
    attrs.push({ type: XFRMA.TMPL, value: t })
  }
  if (p.mark) attrs.push({ type: XFRMA.MARK, value: encodeMark(p.mark) })
  if (p.ifId !== undefined) attrs.push(u32Attr(XFRMA.IF_ID, u32('ifId', p.ifId)))
  return Buffer.concat([info, encodeAttributes(attrs)])
}

/** Decodes the payload of XFRM_MSG_NEWPOLICY (a get answer or a dump entry). */
export function decodePolicyPayload(p: Buffer): XfrmPolicyInfo {
  if (p.length < SIZEOF.userpolicyInfo)
    throw new XfrmCodecError(
      `policy payload of ${p.length} bytes is shorter than xfrm_userpolicy_info (${SIZEOF.userpolicyInfo})`,
    )
  const selector = decodeSelector(p, 0) ?? { src: '', dst: '' }
  const pol: XfrmPolicyInfo = {
    selector,
    dir: dirName(p.readUInt8(160)),
    priority: p.readUInt32LE(152),
    index: p.readUInt32LE(156),
    action: actionName(p.readUInt8(161)),
    flags: p.readUInt8(162),
    share: p.readUInt8(163),
    templates: [],
    current: { addTime: p.readBigUInt64LE(136), useTime: p.readBigUInt64LE(144) },
  }
  for (const a of decodeAttributes(p.subarray(SIZEOF.userpolicyInfo))) {
    if (a.type === XFRMA.TMPL) {
      for (let off = 0; off + SIZEOF.userTmpl <= a.value.length; off += SIZEOF.userTmpl)
        pol.templates.push(decodeTemplate(a.value, off))
    } else if (a.type === XFRMA.MARK) pol.mark = decodeMark(a.value)
    else if (a.type === XFRMA.IF_ID) pol.ifId = a.value.readUInt32LE(0)
  }
  return pol
}

/** `struct xfrm_userpolicy_id` (+ XFRMA_MARK): the payload of XFRM_MSG_GETPOLICY / DELPOLICY. */
export function encodePolicyIdPayload(id: XfrmPolicyId): Buffer {
  const b = Buffer.alloc(SIZEOF.userpolicyId)
  encodeSelector(requireSelector(id), b, 0)
  b.writeUInt32LE(u32('index', id.index), 56)
  const dir = XFRM_POLICY_DIR[id.dir]
  if (dir === undefined) throw new XfrmCodecError(`unknown policy direction "${id.dir}"`)
  b.writeUInt8(dir, 60)
  const attrs: NetlinkAttribute[] = []
  if (id.mark) attrs.push({ type: XFRMA.MARK, value: encodeMark(id.mark) })
  return Buffer.concat([b, encodeAttributes(attrs)])
}

// ---- whole requests (what the client writes to the socket) ----

const REQ_ACK = NLM_F_REQUEST | NLM_F_ACK

/** Requests are framed like iproute2's: add/update/delete ask for an ack, a get gets the object back, a dump is multipart. */
export const request = {
  addState: (s: XfrmState, seq: number): Buffer =>
    encodeMessage({ type: XFRM_MSG.NEWSA, flags: REQ_ACK, seq, payload: encodeStatePayload(s) }),
  updateState: (s: XfrmState, seq: number): Buffer =>
    encodeMessage({ type: XFRM_MSG.UPDSA, flags: REQ_ACK, seq, payload: encodeStatePayload(s) }),
  deleteState: (id: XfrmStateId, seq: number): Buffer =>
    encodeMessage({ type: XFRM_MSG.DELSA, flags: REQ_ACK, seq, payload: encodeStateIdPayload(id) }),
  getState: (id: XfrmStateId, seq: number): Buffer =>
    encodeMessage({ type: XFRM_MSG.GETSA, flags: NLM_F_REQUEST, seq, payload: encodeStateIdPayload(id) }),
  dumpStates: (seq: number): Buffer =>
    encodeMessage({ type: XFRM_MSG.GETSA, flags: NLM_F_REQUEST | NLM_F_DUMP, seq, payload: Buffer.alloc(0) }),
  addPolicy: (p: XfrmPolicy, seq: number): Buffer =>
    encodeMessage({ type: XFRM_MSG.NEWPOLICY, flags: REQ_ACK, seq, payload: encodePolicyPayload(p) }),
  updatePolicy: (p: XfrmPolicy, seq: number): Buffer =>
    encodeMessage({ type: XFRM_MSG.UPDPOLICY, flags: REQ_ACK, seq, payload: encodePolicyPayload(p) }),
  deletePolicy: (id: XfrmPolicyId, seq: number): Buffer =>
    encodeMessage({ type: XFRM_MSG.DELPOLICY, flags: REQ_ACK, seq, payload: encodePolicyIdPayload(id) }),
  getPolicy: (id: XfrmPolicyId, seq: number): Buffer =>
    encodeMessage({ type: XFRM_MSG.GETPOLICY, flags: NLM_F_REQUEST, seq, payload: encodePolicyIdPayload(id) }),
  dumpPolicies: (seq: number): Buffer =>
    encodeMessage({ type: XFRM_MSG.GETPOLICY, flags: NLM_F_REQUEST | NLM_F_DUMP, seq, payload: Buffer.alloc(0) }),
} as const

/** Decodes any XFRM message this codec knows into a tagged object (for tests, tools and logs). */
export type DecodedXfrmMessage =
  | { kind: 'state'; op: 'new' | 'update'; state: XfrmStateInfo }
  | { kind: 'state-id'; op: 'delete' | 'get'; id: XfrmStateId }
  | { kind: 'policy'; op: 'new' | 'update'; policy: XfrmPolicyInfo }
  | { kind: 'policy-id'; op: 'delete' | 'get'; id: XfrmPolicyId }

export function decodeXfrmMessage(m: NetlinkMessage): DecodedXfrmMessage {
  switch (m.type) {
    case XFRM_MSG.NEWSA:
    case XFRM_MSG.UPDSA:
      return { kind: 'state', op: m.type === XFRM_MSG.NEWSA ? 'new' : 'update', state: decodeStatePayload(m.payload) }
    case XFRM_MSG.DELSA:
    case XFRM_MSG.GETSA:
      return { kind: 'state-id', op: m.type === XFRM_MSG.DELSA ? 'delete' : 'get', id: decodeStateIdPayload(m.payload) }
    case XFRM_MSG.NEWPOLICY:
    case XFRM_MSG.UPDPOLICY:
      return {
        kind: 'policy',
        op: m.type === XFRM_MSG.NEWPOLICY ? 'new' : 'update',
        policy: decodePolicyPayload(m.payload),
      }
    case XFRM_MSG.DELPOLICY:
    case XFRM_MSG.GETPOLICY:
      return {
        kind: 'policy-id',
        op: m.type === XFRM_MSG.DELPOLICY ? 'delete' : 'get',
        id: decodePolicyIdPayload(m.payload),
      }
    default:
      throw new XfrmCodecError(`XFRM message type ${m.type} is not one this codec knows`)
  }
}

function decodeStateIdPayload(p: Buffer): XfrmStateId {
  if (p.length < SIZEOF.usersaId) throw new XfrmCodecError(`state id payload of ${p.length} bytes is too short`)
  const family = p.readUInt16LE(20)
  const id: XfrmStateId = { src: '', dst: decodeAddress(p, 0, family), spi: p.readUInt32BE(16), proto: p.readUInt8(22) }
  for (const a of decodeAttributes(p.subarray(SIZEOF.usersaId))) {
    if (a.type === XFRMA.SRCADDR) id.src = decodeAddress(a.value, 0, family)
    else if (a.type === XFRMA.MARK) id.mark = decodeMark(a.value)
  }
  return id
}

function decodePolicyIdPayload(p: Buffer): XfrmPolicyId {
  if (p.length < SIZEOF.userpolicyId) throw new XfrmCodecError(`policy id payload of ${p.length} bytes is too short`)
  const id: XfrmPolicyId = { selector: decodeSelector(p, 0) ?? { src: '', dst: '' }, dir: dirName(p.readUInt8(60)) }
  const index = p.readUInt32LE(56)
  if (index) id.index = index
  for (const a of decodeAttributes(p.subarray(SIZEOF.userpolicyId)))
    if (a.type === XFRMA.MARK) id.mark = decodeMark(a.value)
  return id
}
