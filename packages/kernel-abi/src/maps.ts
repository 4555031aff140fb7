import type { BPF_MAPS } from './constants.js'

/** A map's ELF name, which is also its pin name. */
export type MapName = keyof typeof BPF_MAPS

/** The maps by role. The names are checked against the generated BPF_MAPS, so a map renamed in C fails to compile here. */
export const mapNames = {
  frontend: 'km_frontend',
  service: 'km_service',
  endpoint: 'km_endpoint',
  backend: 'km_backend',
  manage: 'km_manage',
  sockStorage: 'km_sockstorage',
  tailCall4: 'km_cgr_tailcall',
  tailCall6: 'km_cgr_tail6',
  /** Sockets redirected to a waypoint, for the TLV sk_msg program (include/sendmsg.h). */
  socket: 'km_socket',
  /** Connection telemetry (include/telemetry.h): the ring buffer of records and the per-CPU count of lost ones. */
  telemetry: 'km_telemetry',
  telemetryLost: 'km_tel_lost',
  /** LPM trie of remote nodes' pod CIDRs (include/ipsec.h). */
  nodeInfo: 'km_nodeinfo',
  /** Remote node address -> the mark its inbound ESP gets before the XFRM lookup (include/ipsec.h). */
  ipsecPeer: 'km_ipsec_peer',
  /** Authorization at XDP (include/authz.h). */
  authzState: 'km_authz_state',
  authzRoot: 'km_authz_root',
  authzSourceIdentity: 'km_authz_srcid',
  authzNode: 'km_authz_node',
  authzPort: 'km_authz_port',
  authzSource: 'km_authz_src',
  authzIdentity: 'km_authz_ident',
  authzStats: 'km_authz_stats',
  authzTotals: 'km_authz_totals',
} as const satisfies Record<string, MapName>
