// Generated from packages/bpf-progs/include/*.h by packages/bpf-progs/scripts/gen-constants.mjs — do not edit.
// Values are clang's (-target bpf); packages/bpf-progs/test/constants.test.ts proves this file current.

/** include/kmesh_types.h: record capacities. */
export const PRIO_COUNT = 7
export const MAX_PORT_COUNT = 10
export const MAX_SERVICE_COUNT = 10

/** include/kmesh_types.h: service_value.lb_policy. */
export const LB_POLICY_RANDOM = 0
export const LB_POLICY_STRICT = 1
export const LB_POLICY_FAILOVER = 2
export const LB_POLICY_PASSTHROUGH = 3

/** include/addr.h: address families of lb_input.family. */
export const AF_INET = 2
export const AF_INET6 = 10

/** include/lb_types.h: lb_resolve() return codes other than a negative errno. */
export const LB_REWRITE = 0
export const LB_LEAVE = 1

/** <linux/errno.h>: the errnos a refused connect returns (include/lb_types.h). */
export const ECONNREFUSED = 111
export const EINVAL = 22
export const EAFNOSUPPORT = 97

/** include/manage.h: manage control connects. */
export const MANAGE_CONTROL_IP4 = 0x00000002
export const MANAGE_ENROL_PORT = 929
export const MANAGE_UNENROL_PORT = 930

/** include/maps.h: tail-call slots userspace fills. */
export const TAIL_CALL_CONNECT4_INDEX = 0
export const TAIL_CALL_CONNECT6_INDEX = 1
export const TAIL_CALL_SLOTS = 8

/** include/ipsec.h: skb marks the tc programs set and the XFRM policies match. */
export const IPSEC_MARK_ENCRYPT = 0x00e0
export const IPSEC_MARK_DECRYPT = 0x00d0
export const IPSEC_MARK_PEER = 0x00c0
export const IPSEC_MARK_PEER_MASK = 0xffff00ff
export const IPSEC_PEER_ID_SHIFT = 16
export const IPSEC_MAX_PEERS = 65535

/** include/telemetry.h: connection records of the sockops program: events, directions, ring buffer size. */
export const TELEMETRY_EVENT_OPEN = 1
export const TELEMETRY_EVENT_CLOSE = 2
export const TELEMETRY_DIR_INBOUND = 1
export const TELEMETRY_DIR_OUTBOUND = 2
export const TELEMETRY_RINGBUF_BYTES = 4194304

/** include/sendmsg.h: the original-destination TLV prefix a waypoint receives (Kmesh's). */
export const TLV_ORG_DST_ADDR = 0x01
export const TLV_PAYLOAD = 0xfe
export const TLV_HEADER_SIZE = 5
export const TLV_PREFIX_SIZE4 = 16
export const TLV_PREFIX_SIZE6 = 28

/** include/authz.h: the authorization decision diagram: node kinds, verdicts, slots, key tags and per-generation limits. */
export const AUTHZ_DIM_LEAF = 0
export const AUTHZ_DIM_PORT = 1
export const AUTHZ_DIM_SRC_IP = 2
export const AUTHZ_DIM_IDENTITY = 3
export const AUTHZ_MAX_STEPS = 4
export const AUTHZ_VERDICT_ALLOW = 0
export const AUTHZ_VERDICT_DENY = 1
export const AUTHZ_NO_POLICY = 0
export const AUTHZ_MAX_POLICIES = 65536
export const AUTHZ_NO_IDENTITY = 0
export const AUTHZ_FAMILY_V4 = 4
export const AUTHZ_FAMILY_V6 = 6
export const AUTHZ_MAX_ROOTS = 65536
export const AUTHZ_MAX_SOURCES = 262144
export const AUTHZ_MAX_NODES = 262144
export const AUTHZ_MAX_EDGES = 262144
export const AUTHZ_SRC_FIXED_BITS = 40

/** Every map the programs declare (ELF name = pin name), the header declaring it, and the max_entries written
 * there (upstream Kmesh defaults; userspace sets the real capacity at load time; 0 = none, e.g. SK_STORAGE). */
export const BPF_MAPS = {
  km_authz_state: { header: 'authz.h', maxEntries: 1 },
  km_authz_root: { header: 'authz.h', maxEntries: 131072 },
  km_authz_srcid: { header: 'authz.h', maxEntries: 524288 },
  km_authz_node: { header: 'authz.h', maxEntries: 524289 },
  km_authz_port: { header: 'authz.h', maxEntries: 524288 },
  km_authz_src: { header: 'authz.h', maxEntries: 524288 },
  km_authz_ident: { header: 'authz.h', maxEntries: 524288 },
  km_authz_stats: { header: 'authz.h', maxEntries: 65537 },
  km_authz_totals: { header: 'authz.h', maxEntries: 1 },
  km_nodeinfo: { header: 'ipsec.h', maxEntries: 8192 },
  km_ipsec_peer: { header: 'ipsec.h', maxEntries: 8192 },
  km_frontend: { header: 'maps.h', maxEntries: 105000 },
  km_service: { header: 'maps.h', maxEntries: 5000 },
  km_endpoint: { header: 'maps.h', maxEntries: 105000 },
  km_backend: { header: 'maps.h', maxEntries: 100000 },
  km_manage: { header: 'maps.h', maxEntries: 8192 },
  km_sockstorage: { header: 'maps.h', maxEntries: 0 },
  km_cgr_tailcall: { header: 'maps.h', maxEntries: 8 },
  km_cgr_tail6: { header: 'maps.h', maxEntries: 8 },
  km_socket: { header: 'sendmsg.h', maxEntries: 8192 },
  km_telemetry: { header: 'telemetry.h', maxEntries: 4194304 },
  km_tel_lost: { header: 'telemetry.h', maxEntries: 1 },
} as const
