/**
 * @kmesh-ts/bpf-progs: where the compiled BPF objects are, and the names inside them. Loads nothing and
 * knows no TypeScript types of the records (those live in @kmesh-ts/bpf-maps/codecs). Numbers and map names
 * come from @kmesh-ts/kernel-abi, generated from include/*.h; the ones re-exported here keep older imports working.
 */
import { fileURLToPath } from 'node:url'
import {
  BPF_MAPS,
  IPSEC_MARKS,
  MANAGE_CONTROL,
  TAIL_CALL_CONNECT4_INDEX,
  TAIL_CALL_CONNECT6_INDEX,
  mapNames,
  type MapName,
} from '@kmesh-ts/kernel-abi'

export { AF_INET, AF_INET6, LB_LEAVE, LB_REWRITE, mapNames } from '@kmesh-ts/kernel-abi'

/** The compiled objects shipped in obj/ (one per src/*.c). */
export type ObjectName = 'cgroup_sock' | 'lb_test' | 'sendmsg' | 'sockops' | 'tc_mark' | 'xdp_authz'
export const objectNames: readonly ObjectName[] = [
  'cgroup_sock',
  'lb_test',
  'sendmsg',
  'sockops',
  'tc_mark',
  'xdp_authz',
]

/** Absolute path of a compiled object, e.g. objectPath('cgroup_sock') -> <package>/obj/cgroup_sock.o. */
export function objectPath(name: ObjectName): string {
  return fileURLToPath(new URL(`../obj/${name}.o`, import.meta.url))
}

/** A program inside an object: its C function name (= kernel program name, = bpftool pin name) and ELF section. */
export interface ProgramInfo {
  object: ObjectName
  name: string
  section: string
}

export const programs = {
  connect4: { object: 'cgroup_sock', name: 'cgroup_connect4_prog', section: 'cgroup/connect4' },
  connect6: { object: 'cgroup_sock', name: 'cgroup_connect6_prog', section: 'cgroup/connect6' },
  /** getpeername(2) of a rewritten connect answers the VIP dialled (km_sockstorage), not the backend. */
  getpeername4: { object: 'cgroup_sock', name: 'cgroup_getpeername4_prog', section: 'cgroup/getpeername4' },
  getpeername6: { object: 'cgroup_sock', name: 'cgroup_getpeername6_prog', section: 'cgroup/getpeername6' },
  /** Test-only: lb_resolve() on a `struct lb_test_ctx` given through BPF_PROG_TEST_RUN (see lbTestCtx). */
  lbTest: { object: 'lb_test', name: 'lb_test_prog', section: 'syscall' },
  /** Connection telemetry (include/telemetry.h): open/close records of managed TCP connections to km_telemetry. */
  sockopsTelemetry: { object: 'sockops', name: 'sockops_telemetry_prog', section: 'sockops' },
  /** Waypoint TLV (include/sendmsg.h): puts established sockets redirected to a waypoint into km_socket. */
  sockopsWaypoint: { object: 'sendmsg', name: 'sockops_waypoint_prog', section: 'sockops' },
  /** Waypoint TLV: on km_socket (BPF_SK_MSG_VERDICT), prepends the original destination to the first send. */
  sendmsg: { object: 'sendmsg', name: 'sendmsg_prog', section: 'sk_msg' },
  /** IPsec (include/ipsec.h): mark 0xe0 on a pod veth's ingress when the destination is a remote node's pod. */
  tcMarkEncrypt: { object: 'tc_mark', name: 'tc_mark_encrypt', section: 'tc' },
  /** IPsec: on node NIC ingress, keep ESP and mark 0xd0, clear every other mark. */
  tcMarkDecrypt: { object: 'tc_mark', name: 'tc_mark_decrypt', section: 'tc' },
  /** Authorization (include/authz.h): judges each TCP SYN to a workload address with policies; RST or drop. */
  xdpAuthz: { object: 'xdp_authz', name: 'xdp_authz', section: 'xdp' },
  /** The pass-only XDP program bench/authz measures against. */
  xdpPass: { object: 'xdp_authz', name: 'xdp_pass', section: 'xdp' },
} as const satisfies Record<string, ProgramInfo>

/** The maps each object declares (include/maps.h for the connect objects, ipsec.h for tc_mark, authz.h for XDP). */
const mapsOf = (header: string): MapName[] =>
  (Object.keys(BPF_MAPS) as MapName[]).filter((m) => BPF_MAPS[m].header === header)
export const objectMaps: Record<ObjectName, readonly MapName[]> = {
  cgroup_sock: mapsOf('maps.h'),
  lb_test: mapsOf('maps.h'),
  sendmsg: [...mapsOf('maps.h'), ...mapsOf('sendmsg.h')],
  sockops: [...mapsOf('maps.h'), ...mapsOf('telemetry.h')],
  tc_mark: mapsOf('ipsec.h'),
  xdp_authz: mapsOf('authz.h'),
}

/** The skb marks of IPsec (include/ipsec.h, docs/reference/kmesh-dataplane.md §4.4). */
export const ipsecMarks = IPSEC_MARKS

/** Tail-call slots userspace fills with the connect programs themselves (include/maps.h). */
export const tailCalls = {
  connect4: { map: mapNames.tailCall4, index: TAIL_CALL_CONNECT4_INDEX, program: programs.connect4.name },
  connect6: { map: mapNames.tailCall6, index: TAIL_CALL_CONNECT6_INDEX, program: programs.connect6.name },
} as const

/** The manage control destinations (include/manage.h): a connect there enrols / unenrols the caller's netns. */
export const manageControl = MANAGE_CONTROL

/**
 * Byte layout of `struct lb_test_ctx` (include/lb_types.h), the ctx of the test program: the test writes
 * `in`, runs the program, and reads `out` and `ret` back from the same buffer (for SEC("syscall") programs
 * the kernel copies the ctx back into ctx_in). Ports are network order in the low 16 bits of a u32.
 */
export const lbTestCtx = {
  size: 56,
  in: { dst: 0, dstPort: 16, family: 20, random: 24 },
  out: { dnatIp: 28, dnatPort: 44, viaWaypoint: 48 },
  ret: 52,
} as const
