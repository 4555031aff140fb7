import {
  EAFNOSUPPORT,
  ECONNREFUSED,
  EINVAL,
  IPSEC_MARK_DECRYPT,
  IPSEC_MARK_ENCRYPT,
  MANAGE_CONTROL_IP4,
  MANAGE_ENROL_PORT,
  MANAGE_UNENROL_PORT,
} from './constants.js'

/** The skb marks of IPsec: tc_mark_encrypt sets `encrypt` for the XFRM OUT policy; XFRM IN leaves `decrypt`. */
export const IPSEC_MARKS = { encrypt: IPSEC_MARK_ENCRYPT, decrypt: IPSEC_MARK_DECRYPT } as const

// The control address is a host-order u32 in C; IPv4 uses it as a.b.c.d, IPv6 as the last word of ::/96.
const ip4 = MANAGE_CONTROL_IP4 >>> 0
const dotted = [24, 16, 8, 0].map((s) => (ip4 >>> s) & 0xff).join('.')
const high = ip4 >>> 16
const v6Tail = `${high === 0 ? '' : `${high.toString(16)}:`}${(ip4 & 0xffff).toString(16)}`

/** The manage control destinations: a connect there enrols (enrolPort) or unenrols the caller's network namespace. */
export const MANAGE_CONTROL = {
  ipv4: dotted,
  ipv6: `::${v6Tail}`,
  enrolPort: MANAGE_ENROL_PORT,
  unenrolPort: MANAGE_UNENROL_PORT,
} as const

/** The errnos a refused connect returns (negated in lb_resolve()'s return code). */
export const ERRNO = { ECONNREFUSED, EINVAL, EAFNOSUPPORT } as const
export type RefuseErrno = keyof typeof ERRNO
