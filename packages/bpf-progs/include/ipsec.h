/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IPsec marking (docs/reference/kmesh-dataplane.md §1.10, §4.4): the marks the tc programs set and the XFRM policies
 * match, and km_nodeinfo, the LPM trie of remote nodes' pod CIDRs that userspace (the daemon's IPsec controller)
 * fills with value 1 per CIDR. Kept apart from maps.h: only the tc object declares it. */
#ifndef KMESH_IPSEC_H
#define KMESH_IPSEC_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "kmesh_types.h"

/* skb->mark that selects the XFRM OUT policy (encrypt to the remote node) */
#define IPSEC_MARK_ENCRYPT 0x00e0
/* skb->mark the XFRM IN state leaves on a decrypted packet; the IN/FWD policies require it */
#define IPSEC_MARK_DECRYPT 0x00d0

/* Per-peer inbound marks (kmesh-ts, beyond Kmesh; packages/ipsec/README.md "Three nodes and more"). The kernel finds
 * an inbound SA by (destination, SPI, protocol, mark) - never by source - and every remote node encrypts to us with
 * our one SPI, so each remote peer's IN state carries its own mark and tc_mark_decrypt gives inbound ESP that mark
 * before the XFRM lookup: the value km_ipsec_peer holds for the outer source address. Userspace builds the values
 * as (peer id << IPSEC_PEER_ID_SHIFT) | IPSEC_MARK_PEER and the IN states match them under IPSEC_MARK_PEER_MASK.
 * The IN state's output mark (0xd0/0xffffffff) replaces it after decryption, so the policies never see it. */
#define IPSEC_MARK_PEER 0x00c0
#define IPSEC_MARK_PEER_MASK 0xffff00ff
#define IPSEC_PEER_ID_SHIFT 16
#define IPSEC_MAX_PEERS 65535

/* LPM trie key (§2.1, §2.2): prefix length as a native u32, then the address in network order at bytes 0..3 (v4,
 * rest zero) or 0..15 (v6). 20 bytes, byte-compatible with upstream Kmesh's `struct lpm_key`. */
struct lpm_key {
	__u32 prefixlen;
	union ip_addr ip;
};

/* remote pod CIDR -> 1 (LPM_TRIE needs BPF_F_NO_PREALLOC) */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lpm_key);
	__type(value, __u32);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} km_nodeinfo SEC(".maps");

/* A remote node's address -> the skb mark its inbound ESP gets (see IPSEC_MARK_PEER). An exact-match hash keyed by
 * `struct lpm_key` with prefixlen 32 (IPv4) or 128 (IPv6): the prefix length keeps the two families apart. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct lpm_key);
	__type(value, __u32);
	__uint(max_entries, 8192);
} km_ipsec_peer SEC(".maps");

#endif
