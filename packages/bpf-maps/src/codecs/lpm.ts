/**
 * The km_nodeinfo LPM trie of IPsec (reference/kmesh-dataplane.md §2.1, §2.2, §4.4; C: bpf-progs include/ipsec.h):
 * key `struct lpm_key` = { u32 prefixlen (native order), union ip_addr (network order, v4 in bytes 0..3) },
 * 20 bytes, value u32 1. Userspace writes one key per remote node's pod CIDR; tc_mark_encrypt looks up /32 or /128.
 */
import { readU32, writeU32, type Codec } from './codec.js'
import { decodeIpAddr, encodeIpAddr, formatIpv6, ipBytes, type IpInput } from './ip.js'
import { MapType, BPF_F_NO_PREALLOC, type RecordMapSpec } from './maps.js'
import { u32Value } from './records.js'

export interface LpmKey {
  /** Significant leading bits of `address`: 0..32 for IPv4, 0..128 for IPv6. */
  prefixLen: number
  /** The network address (host bits are cleared on encode). */
  address: string
}

export const lpmKey: Codec<LpmKey | { prefixLen: number; address: IpInput }> & Codec<LpmKey> = {
  cStruct: 'lpm_key',
  size: 20,
  encode: (v, buf, off = 0) => {
    const bytes = ipBytes(v.address)
    const max = bytes.length * 8
    if (!Number.isInteger(v.prefixLen) || v.prefixLen < 0 || v.prefixLen > max) {
      throw new RangeError(`lpm_key prefixLen must be an integer in 0..${max} for ${bytes.length === 4 ? 'IPv4' : 'IPv6'}, got ${v.prefixLen}`)
    }
    writeU32(buf, off, v.prefixLen)
    encodeIpAddr(maskBytes(bytes, v.prefixLen), buf, off + 4)
  },
  // The record has no family: a prefix over 32 bits is IPv6; otherwise the ip_addr rule applies (bytes 4..15 zero
  // read as IPv4), so an IPv6 prefix of 32 bits or less decodes as IPv4 text. lpmKeyOfCidr keeps the family.
  decode: (buf, off = 0) => {
    const prefixLen = readU32(buf, off)
    const address = prefixLen > 32 ? formatIpv6(buf.subarray(off + 4, off + 20)) : decodeIpAddr(buf, off + 4)
    return { prefixLen, address }
  },
}

/** The key of a CIDR such as `10.244.1.0/24` or `fd00:1::/64` (host bits cleared, as Go's net.ParseCIDR does). */
export function lpmKeyOfCidr(cidr: string): LpmKey {
  const slash = cidr.lastIndexOf('/')
  const address = slash < 0 ? cidr : cidr.slice(0, slash)
  const bytes = ipBytes(address)
  const prefixLen = slash < 0 ? bytes.length * 8 : Number(cidr.slice(slash + 1))
  if (!/^\d+$/.test(slash < 0 ? '0' : cidr.slice(slash + 1)) || prefixLen > bytes.length * 8) throw new RangeError(`not a CIDR: ${JSON.stringify(cidr)}`)
  const net = maskBytes(bytes, prefixLen)
  return { prefixLen, address: net.length === 4 ? net.join('.') : formatIpv6(net) }
}

function maskBytes(bytes: Uint8Array, prefixLen: number): Uint8Array {
  const out = Uint8Array.from(bytes)
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, prefixLen - i * 8))
    out[i]! &= (0xff << (8 - keep)) & 0xff
  }
  return out
}

/** km_nodeinfo as data: LPM trie, 20-byte key, u32 value, BPF_F_NO_PREALLOC (required for LPM tries). */
export const nodeInfoMapSpec: RecordMapSpec<LpmKey, number> = {
  name: 'km_nodeinfo',
  type: MapType.LpmTrie,
  key: lpmKey,
  value: u32Value,
  defaultMaxEntries: 8192,
  flags: BPF_F_NO_PREALLOC,
}
