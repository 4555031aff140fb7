/**
 * The records of authorization at XDP (C: bpf-progs include/authz.h; design: docs/authz-kernel.md): a decision
 * diagram per destination address, two generations side by side, per-policy counters. Addresses are given and
 * read as canonical bytes or text; the family travels in its own byte, so an IPv6 prefix never covers IPv4.
 */
import { formatIp, maskIp } from '@kmesh-ts/ip'
import {
  AUTHZ_FAMILY_V4,
  AUTHZ_FAMILY_V6,
  AUTHZ_MAX_POLICIES,
  AUTHZ_SRC_FIXED_BITS,
  BPF_MAPS,
  mapNames,
} from '@kmesh-ts/kernel-abi'
import { checkRange, readU32, readU64, writeU32, writeU64, type Codec } from './codec.js'
import { encodeIpAddr, ipBytes, type IpInput } from './ip.js'
import { BPF_F_NO_PREALLOC, MapType, type RecordMapSpec } from './maps.js'
import { u32Value } from './records.js'

const familyOf = (bytes: Uint8Array): number => (bytes.length === 4 ? AUTHZ_FAMILY_V4 : AUTHZ_FAMILY_V6)

function readAddress(buf: Uint8Array, familyOff: number, addrOff: number, what: string): string {
  const family = buf[familyOff]
  if (family === AUTHZ_FAMILY_V4) return formatIp(buf.subarray(addrOff, addrOff + 4))
  if (family === AUTHZ_FAMILY_V6) return formatIp(buf.subarray(addrOff, addrOff + 16))
  throw new RangeError(`${what}: family byte ${family} is neither ${AUTHZ_FAMILY_V4} nor ${AUTHZ_FAMILY_V6}`)
}

// --- (generation, address): km_authz_root and km_authz_srcid keys ------------------------------------------

export interface AuthzAddrKey {
  /** 0 or 1 */
  gen: number
  /** Canonical: IPv4 as 4 bytes / dotted text (a v4-mapped address is the caller's to fold). */
  address: IpInput
}
export const authzAddrKey: Codec<AuthzAddrKey> = {
  cStruct: 'authz_addr_key',
  size: 24,
  encode: (v, buf, off = 0) => {
    checkRange('authz_addr_key.gen', v.gen, 1)
    const bytes = ipBytes(v.address)
    writeU32(buf, off, v.gen)
    buf[off + 4] = familyOf(bytes)
    buf.fill(0, off + 5, off + 8)
    encodeIpAddr(bytes, buf, off + 8)
  },
  decode: (buf, off = 0) => ({ gen: readU32(buf, off), address: readAddress(buf, off + 4, off + 8, 'authz_addr_key') }),
}

// --- a decision node ---------------------------------------------------------------------------------------

/** What a node tests (AUTHZ_DIM_* of include/authz.h). */
export const AuthzDim = { leaf: 0, port: 1, sourceIp: 2, identity: 3 } as const
export type AuthzDimValue = (typeof AuthzDim)[keyof typeof AuthzDim]

export interface AuthzNode {
  dim: AuthzDimValue
  /** leaf: 0 allow, 1 deny */
  verdict: 0 | 1
  /** leaf: the dry-run policies would have denied (counted on dryPolicy's slot) */
  dryRun: boolean
  /** inner: the child when the lookup misses */
  next: number
  /** leaf: the slot counted with the verdict (0 = the defaults) */
  policy: number
  /** leaf with dryRun: the first matching dry-run DENY policy, or 0 (dry-run ALLOWs, none matched) */
  dryPolicy: number
}
export const authzNode: Codec<AuthzNode> = {
  cStruct: 'authz_node',
  size: 16,
  encode: (v, buf, off = 0) => {
    buf[off] = v.dim
    buf[off + 1] = v.verdict
    buf[off + 2] = v.dryRun ? 1 : 0
    buf[off + 3] = 0
    writeU32(buf, off + 4, v.next)
    checkRange('authz_node.policy', v.policy, AUTHZ_MAX_POLICIES)
    checkRange('authz_node.dry_policy', v.dryPolicy, AUTHZ_MAX_POLICIES)
    writeU32(buf, off + 8, v.policy)
    writeU32(buf, off + 12, v.dryPolicy)
  },
  decode: (buf, off = 0) => ({
    dim: buf[off] as AuthzDimValue,
    verdict: (buf[off + 1] === 1 ? 1 : 0) as 0 | 1,
    dryRun: buf[off + 2] === 1,
    next: readU32(buf, off + 4),
    policy: readU32(buf, off + 8),
    dryPolicy: readU32(buf, off + 12),
  }),
}

// --- edges ---------------------------------------------------------------------------------------------------

export interface AuthzPortKey {
  node: number
  /** host order */
  port: number
}
export const authzPortKey: Codec<AuthzPortKey> = {
  cStruct: 'authz_port_key',
  size: 8,
  encode: (v, buf, off = 0) => {
    checkRange('authz_port_key.port', v.port, 0xffff)
    writeU32(buf, off, v.node)
    writeU32(buf, off + 4, v.port)
  },
  decode: (buf, off = 0) => ({ node: readU32(buf, off), port: readU32(buf, off + 4) }),
}

export interface AuthzSrcKey {
  node: number
  /** The CIDR's own prefix length (0..32 for IPv4, 0..128 for IPv6); the key adds the fixed 40 bits. */
  prefixLength: number
  address: IpInput
}
export const authzSrcKey: Codec<AuthzSrcKey> = {
  cStruct: 'authz_src_key',
  size: 28,
  encode: (v, buf, off = 0) => {
    const bytes = ipBytes(v.address)
    const max = bytes.length * 8
    if (!Number.isInteger(v.prefixLength) || v.prefixLength < 0 || v.prefixLength > max) {
      throw new RangeError(`authz_src_key prefixLength must be an integer in 0..${max}, got ${v.prefixLength}`)
    }
    writeU32(buf, off, AUTHZ_SRC_FIXED_BITS + v.prefixLength)
    writeU32(buf, off + 4, v.node)
    buf[off + 8] = familyOf(bytes)
    encodeIpAddr(maskIp(bytes, v.prefixLength), buf, off + 9)
    buf.fill(0, off + 25, off + 28)
  },
  decode: (buf, off = 0) => ({
    node: readU32(buf, off + 4),
    prefixLength: readU32(buf, off) - AUTHZ_SRC_FIXED_BITS,
    address: readAddress(buf, off + 8, off + 9, 'authz_src_key'),
  }),
}

export interface AuthzIdentKey {
  node: number
  identity: number
}
export const authzIdentKey: Codec<AuthzIdentKey> = {
  cStruct: 'authz_ident_key',
  size: 8,
  encode: (v, buf, off = 0) => {
    writeU32(buf, off, v.node)
    writeU32(buf, off + 4, v.identity)
  },
  decode: (buf, off = 0) => ({ node: readU32(buf, off), identity: readU32(buf, off + 4) }),
}

// --- state and counters ----------------------------------------------------------------------------------------

export interface AuthzState {
  gen: number
}
export const authzState: Codec<AuthzState> = {
  cStruct: 'authz_state',
  size: 8,
  encode: (v, buf, off = 0) => {
    checkRange('authz_state.gen', v.gen, 1)
    writeU32(buf, off, v.gen)
    writeU32(buf, off + 4, 0)
  },
  decode: (buf, off = 0) => ({ gen: readU32(buf, off) }),
}

/** One CPU's counters of one policy slot. */
export interface AuthzStats {
  allow: bigint
  deny: bigint
  dryRunDeny: bigint
}
export const authzStats: Codec<AuthzStats> = {
  cStruct: 'authz_stats',
  size: 24,
  encode: (v, buf, off = 0) => {
    writeU64(buf, off, v.allow)
    writeU64(buf, off + 8, v.deny)
    writeU64(buf, off + 16, v.dryRunDeny)
  },
  decode: (buf, off = 0) => ({
    allow: readU64(buf, off),
    deny: readU64(buf, off + 8),
    dryRunDeny: readU64(buf, off + 16),
  }),
}

/** One CPU's totals: what the program did with the packets it saw. */
export interface AuthzTotals {
  packets: bigint
  synsChecked: bigint
  unparsed: bigint
  deniedRst: bigint
  deniedDrop: bigint
  broken: bigint
}
const TOTAL_FIELDS = ['packets', 'synsChecked', 'unparsed', 'deniedRst', 'deniedDrop', 'broken'] as const
export const authzTotals: Codec<AuthzTotals> = {
  cStruct: 'authz_totals',
  size: 48,
  encode: (v, buf, off = 0) => {
    TOTAL_FIELDS.forEach((f, i) => writeU64(buf, off + 8 * i, v[f]))
  },
  decode: (buf, off = 0) =>
    Object.fromEntries(TOTAL_FIELDS.map((f, i) => [f, readU64(buf, off + 8 * i)])) as unknown as AuthzTotals,
}

// --- the maps ----------------------------------------------------------------------------------------------------

function authzSpec<K, V>(
  name: keyof typeof BPF_MAPS,
  type: number,
  key: Codec<K>,
  value: Codec<V>,
  flags = 0,
): RecordMapSpec<K, V> {
  return { name, type, key, value, defaultMaxEntries: BPF_MAPS[name].maxEntries, flags }
}

export const authzMapSpecs = {
  state: authzSpec(mapNames.authzState, MapType.Array, u32Value, authzState),
  root: authzSpec(mapNames.authzRoot, MapType.Hash, authzAddrKey, u32Value, BPF_F_NO_PREALLOC),
  sourceIdentity: authzSpec(mapNames.authzSourceIdentity, MapType.Hash, authzAddrKey, u32Value, BPF_F_NO_PREALLOC),
  node: authzSpec(mapNames.authzNode, MapType.Array, u32Value, authzNode),
  port: authzSpec(mapNames.authzPort, MapType.Hash, authzPortKey, u32Value, BPF_F_NO_PREALLOC),
  source: authzSpec(mapNames.authzSource, MapType.LpmTrie, authzSrcKey, u32Value, BPF_F_NO_PREALLOC),
  identity: authzSpec(mapNames.authzIdentity, MapType.Hash, authzIdentKey, u32Value, BPF_F_NO_PREALLOC),
  stats: authzSpec(mapNames.authzStats, MapType.PercpuArray, u32Value, authzStats),
  totals: authzSpec(mapNames.authzTotals, MapType.PercpuArray, u32Value, authzTotals),
} as const

/** Every authorization record with the C struct and field offsets it must equal (BTF of xdp_authz.o). */
export const authzRecordLayouts: Record<string, { codec: Codec<never>; fields: Record<string, number> }> = {
  authz_addr_key: { codec: authzAddrKey as Codec<never>, fields: { gen: 0, family: 4, pad: 5, addr: 8 } },
  authz_node: {
    codec: authzNode as Codec<never>,
    fields: { dim: 0, verdict: 1, dry_run: 2, pad: 3, next: 4, policy: 8, dry_policy: 12 },
  },
  authz_port_key: { codec: authzPortKey as Codec<never>, fields: { node: 0, port: 4 } },
  authz_src_key: { codec: authzSrcKey as Codec<never>, fields: { prefixlen: 0, node: 4, family: 8, addr: 9, pad: 25 } },
  authz_ident_key: { codec: authzIdentKey as Codec<never>, fields: { node: 0, identity: 4 } },
  authz_state: { codec: authzState as Codec<never>, fields: { gen: 0, pad: 4 } },
  authz_stats: { codec: authzStats as Codec<never>, fields: { allow: 0, deny: 8, dry_run_deny: 16 } },
  authz_totals: {
    codec: authzTotals as Codec<never>,
    fields: { packets: 0, syns_checked: 8, unparsed: 16, denied_rst: 24, denied_drop: 32, broken: 40 },
  },
}
