// Values from the kernel UAPI: <linux/netlink.h> and <linux/xfrm.h>. Struct sizes are for x86_64/arm64 (the
// structs hold u64 fields, so they are 8-byte aligned) and are checked against gcc's offsetof in the tests.

export const NETLINK_XFRM = 6
export const AF_NETLINK = 16

export const NLMSG_HDRLEN = 16
export const NLA_HDRLEN = 4

export const NLMSG_NOOP = 1
export const NLMSG_ERROR = 2
export const NLMSG_DONE = 3

export const NLM_F_REQUEST = 0x01
export const NLM_F_MULTI = 0x02
export const NLM_F_ACK = 0x04
export const NLM_F_DUMP = 0x300
/** On an NLMSG_ERROR: the echoed request is cut to its header. */
export const NLM_F_CAPPED = 0x100
/** On an NLMSG_ERROR: extended-ack attributes follow. */
export const NLM_F_ACK_TLVS = 0x200
export const NLMSGERR_ATTR_MSG = 1

export const XFRM_MSG = {
  NEWSA: 0x10,
  DELSA: 0x11,
  GETSA: 0x12,
  NEWPOLICY: 0x13,
  DELPOLICY: 0x14,
  GETPOLICY: 0x15,
  UPDPOLICY: 0x19,
  UPDSA: 0x1a,
} as const

export const XFRMA = {
  ALG_AUTH: 1,
  ALG_CRYPT: 2,
  TMPL: 5,
  SRCADDR: 13,
  POLICY_TYPE: 16,
  ALG_AEAD: 18,
  MARK: 21,
  SET_MARK: 29,
  SET_MARK_MASK: 30,
  IF_ID: 31,
} as const

export const SIZEOF = {
  selector: 56,
  usersaInfo: 224,
  usersaId: 24,
  userpolicyInfo: 168,
  userpolicyId: 64,
  userTmpl: 64,
  algoAead: 72,
  mark: 8,
} as const

export const IPPROTO_ESP = 50
export const IPPROTO_AH = 51
export const IPPROTO_COMP = 108

export const XFRM_INF = 0xffffffffffffffffn

export const XFRM_MODE = { transport: 0, tunnel: 1, ro: 2, in_trigger: 3, beet: 4 } as const
export type XfrmMode = keyof typeof XFRM_MODE

export const XFRM_POLICY_DIR = { in: 0, out: 1, fwd: 2 } as const
export type XfrmPolicyDir = keyof typeof XFRM_POLICY_DIR

export const XFRM_POLICY_ACTION = { allow: 0, block: 1 } as const
export type XfrmPolicyAction = keyof typeof XFRM_POLICY_ACTION

/** `socket(2)` / `setsockopt(2)` numbers used by the client. */
export const SOCK_RAW = 3
export const SOCK_CLOEXEC = 0o2000000
export const SOL_SOCKET = 1
export const SO_RCVTIMEO = 20
export const SO_SNDBUF = 7
export const SO_RCVBUF = 8
export const SOL_NETLINK = 270
export const NETLINK_CAP_ACK = 10
export const NETLINK_EXT_ACK = 11
export const MSG_PEEK = 0x02
export const MSG_TRUNC = 0x20
export const CLONE_NEWNET = 0x40000000
