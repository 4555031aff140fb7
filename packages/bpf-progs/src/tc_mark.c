// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The tc programs of IPsec between nodes (docs/reference/kmesh-dataplane.md §1.10, §4.4). Both always return TC_ACT_OK:
 * they only set or clear skb->mark, and the XFRM policies that match the mark do the rest.
 *  - tc_mark_encrypt, on the host side of a pod's veth (ingress: traffic leaving the pod): a destination inside a
 *    remote node's pod CIDR (km_nodeinfo hit) gets mark 0xe0, overwriting any mark; a miss leaves the mark alone.
 *  - tc_mark_decrypt, on node NIC ingress: ESP from a known peer (km_ipsec_peer hit on the outer source) gets that
 *    peer's mark, which selects the peer's own IN state (include/ipsec.h, IPSEC_MARK_PEER); other ESP and packets
 *    already marked 0xd0 (decrypted by XFRM, re-entering ingress) are left alone; every other packet's mark is
 *    cleared, so a spoofed or stale mark cannot satisfy the IN/FWD policies. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ipsec.h"

/* The L3 header after Ethernet: which family, and where. Any other ethertype or a short frame is "none". */
struct l3 {
	int family; /* 0 (not IP), 4 or 6 */
	struct iphdr *ip4;
	struct ipv6hdr *ip6;
};

static __always_inline struct l3 parse_l3(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct l3 l3 = {};

	if ((void *)(eth + 1) > end)
		return l3;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip4 = (void *)(eth + 1);
		if ((void *)(ip4 + 1) <= end) {
			l3.family = 4;
			l3.ip4 = ip4;
		}
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) <= end) {
			l3.family = 6;
			l3.ip6 = ip6;
		}
	}
	return l3;
}

/* Is the destination a pod of another IPsec node? (/32 or /128 lookup in the trie of remote pod CIDRs) */
static __always_inline int dst_is_remote_pod(const struct l3 *l3)
{
	struct lpm_key key = {};

	if (l3->family == 4) {
		key.prefixlen = 32;
		key.ip.ip4 = l3->ip4->daddr;
	} else if (l3->family == 6) {
		key.prefixlen = 128;
		__builtin_memcpy(key.ip.ip6, &l3->ip6->daddr, sizeof(key.ip.ip6));
	} else {
		return 0;
	}
	return bpf_map_lookup_elem(&km_nodeinfo, &key) != NULL;
}

static __always_inline int is_esp(const struct l3 *l3)
{
	if (l3->family == 4)
		return l3->ip4->protocol == IPPROTO_ESP;
	if (l3->family == 6)
		return l3->ip6->nexthdr == IPPROTO_ESP;
	return 0;
}

/* The mark for ESP from this outer source, or NULL when the source is no known peer. */
static __always_inline __u32 *peer_mark(const struct l3 *l3)
{
	struct lpm_key key = {};

	if (l3->family == 4) {
		key.prefixlen = 32;
		key.ip.ip4 = l3->ip4->saddr;
	} else {
		key.prefixlen = 128;
		__builtin_memcpy(key.ip.ip6, &l3->ip6->saddr, sizeof(key.ip.ip6));
	}
	return bpf_map_lookup_elem(&km_ipsec_peer, &key);
}

SEC("tc")
int tc_mark_encrypt(struct __sk_buff *skb)
{
	struct l3 l3 = parse_l3(skb);

	if (dst_is_remote_pod(&l3))
		skb->mark = IPSEC_MARK_ENCRYPT;
	return TC_ACT_OK;
}

SEC("tc")
int tc_mark_decrypt(struct __sk_buff *skb)
{
	struct l3 l3 = parse_l3(skb);
	__u32 mark = 0;

	if (l3.family == 0 || skb->mark == IPSEC_MARK_DECRYPT)
		return TC_ACT_OK;
	if (is_esp(&l3)) {
		__u32 *peer = peer_mark(&l3);

		if (!peer)
			return TC_ACT_OK;
		mark = *peer;
	}
	/* The empty asm makes skb opaque here, so clang cannot reuse the &skb->mark it computed for the read above: a
	 * store through a moved ctx pointer is refused by the verifier ("dereference of modified ctx ptr"). */
	asm volatile("" : "+r"(skb));
	skb->mark = mark;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "Dual BSD/GPL";
