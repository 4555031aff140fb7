/**
 * The km_nodeinfo LPM trie of IPsec (docs/reference/kmesh-dataplane.md §2.1, §2.2, §4.4; C: bpf-progs include/ipsec.h):
 * key `struct lpm_key` = { u32 prefixlen (native order), union ip_addr (network order, v4 in bytes 0..3) },
 * 20 bytes, value u32 1. Userspace writes one key per remote node's pod CIDR; tc_mark_encrypt looks up /32 or /128.
 */
import { readU32, writeU32, type Codec } from './codec.js'
import { formatIp, maskIp, parseCidr } from '@kmesh-ts/ip'
import { BPF_MAPS, mapNames } from '@kmesh-ts/kernel-abi'
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
      throw new RangeError(
        `lpm_key prefixLen must be an integer in 0..${max} for ${bytes.length === 4 ? 'IPv4' : 'IPv6'}, got ${v.prefixLen}`,
      )
    }
    writeU32(buf, off, v.prefixLen)
    encodeIpAddr(maskIp(bytes, v.prefixLen), buf, off + 4)
  },
  // The record has no family: a prefix over 32 bits is IPv6; otherwise the ip_addr rule applies (bytes 4..15 zero
  // read as IPv4), so an IPv6 prefix of 32 bits or less decodes as IPv4 text. lpmKeyOfCidr keeps the family.
  decode: (buf, off = 0) => {
    const prefixLen = readU32(buf, off)
    const address = prefixLen > 32 ? formatIpv6(buf, off + 4) : decodeIpAddr(buf, off + 4)
    return { prefixLen, address }
  },
}

/**
 * The key of a CIDR such as `10.244.1.0/24` or `fd00:1::/64` (host bits cleared, as Go's net.ParseCIDR does); a bare
 * address is a host prefix. @kmesh-ts/ip's parseCidr decides: RangeError for a bad prefix length, TypeError for an
 * address that is not one, both "not a CIDR: ...".
 */
export function lpmKeyOfCidr(cidr: string): LpmKey {
  const { address, prefixLength } = parseCidr(cidr)
  return { prefixLen: prefixLength, address: formatIp(maskIp(address, prefixLength)) }
}

/** km_nodeinfo as data: LPM trie, 20-byte key, u32 value, BPF_F_NO_PREALLOC (required for LPM tries). */
export const nodeInfoMapSpec: RecordMapSpec<LpmKey, number> = {
  name: mapNames.nodeInfo,
  type: MapType.LpmTrie,
  key: lpmKey,
  value: u32Value,
  defaultMaxEntries: BPF_MAPS.km_nodeinfo.maxEntries,
  flags: BPF_F_NO_PREALLOC,
}
