// Everything that loads no native code: key files, derivation, planning and the XFRM codec.
export { DerivationError, KeyFileError, PlanError, XfrmCodecError, XfrmError } from './errors.js'
export { errnoName } from './errno.js'
export { IpsecKey, MAX_KEY_BYTES, parseKeyFile, readKeyFile, type ReadKeyFileOptions } from './keyfile.js'
export { KeyHistory } from './key-history.js'
export { BOOT_ID_BYTES, derivePairKey, type PairKeyInput } from './derive.js'
export {
  KMESH_MARK_DECRYPT,
  KMESH_MARK_ENCRYPT,
  KMESH_MARK_MASK,
  KMESH_MARK_NONE,
  KMESH_REQID,
  peerMark,
  planDefaults,
  planNodeRules,
  policyIdOf,
  stateIdOf,
  type EgressDecision,
  type KeyLookup,
  type NodeInfo,
  type NodeRules,
  type PlanOptions,
} from './plan.js'
export * from './xfrm/types.js'
export * as xfrmConstants from './xfrm/constants.js'
export { IPPROTO_ESP, type XfrmMode, type XfrmPolicyAction, type XfrmPolicyDir } from './xfrm/constants.js'
export {
  AF_INET,
  AF_INET6,
  canonicalAddress,
  canonicalCidr,
  decodeAddress,
  encodeAddress,
  networkCidr,
  parseCidr,
  type Cidr,
} from './xfrm/address.js'
export {
  decodePolicyPayload,
  decodeStatePayload,
  decodeXfrmMessage,
  encodePolicyIdPayload,
  encodePolicyPayload,
  encodeStateIdPayload,
  encodeStatePayload,
  request,
  type DecodedXfrmMessage,
} from './xfrm/codec.js'
export {
  decodeAttributes,
  decodeError,
  decodeMessages,
  encodeAttributes,
  encodeMessage,
  type NetlinkAttribute,
  type NetlinkError,
  type NetlinkMessage,
} from './xfrm/netlink.js'
