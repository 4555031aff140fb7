// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* xdp_authz: Istio L4 authorization on a managed workload's interface (include/authz.h, docs/authz-kernel.md).
 *
 * Only the first packet of a connection is judged: a TCP SYN without ACK. Everything else — other protocols,
 * later segments, frames it cannot parse, addresses without policies — passes untouched, so established
 * connections are never cut by a policy change. A denied SYN is answered with a RST built in place and sent back
 * out of the same interface (XDP_TX), so the client fails at once with ECONNREFUSED; where a RST cannot be built
 * simply (IPv4 options, IPv6 extension headers) the SYN is dropped and the client times out.
 * No decision is cached: each SYN is a new connection, and the walk costs about what a cache lookup would. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "authz.h"

/* IPv6 extension headers skipped before TCP (RFC 8200 §4); more than this many and the packet passes unjudged. */
#define MAX_IPV6_EXT_HEADERS 6
#define IPV6_EXT_HOPOPTS 0
#define IPV6_EXT_ROUTING 43
#define IPV6_EXT_FRAGMENT 44
#define IPV6_EXT_AH 51
#define IPV6_EXT_DSTOPTS 60

/* A SYN as the program judges it. Addresses are canonical: an IPv6 packet between v4-mapped addresses
 * (::ffff:a.b.c.d) is judged as IPv4 (docs/reference/istio-l4-authz.md §4.2). */
struct syn {
	__u8 family; /* AUTHZ_FAMILY_V4 / _V6 of the addresses below */
	__u8 ip_version; /* 4 or 6: the header on the wire */
	__u8 plain; /* no IPv4 options / IPv6 extension headers: a RST can be built in place */
	union ip_addr src;
	union ip_addr dst;
	__u16 dport; /* host order */
	__u32 l4_off; /* TCP header offset from the frame start */
};

enum parse_result {
	PARSE_NOT_SYN = 0, /* parsed: not the first packet of a TCP connection */
	PARSE_SYN,
	PARSE_UNPARSED, /* not Ethernet + IP + TCP, or cut short */
};

static __always_inline void count_total(__u32 field_offset)
{
	__u32 zero = 0;
	struct authz_totals *t = bpf_map_lookup_elem(&km_authz_totals, &zero);

	if (t)
		*(__u64 *)((char *)t + field_offset) += 1;
}
#define COUNT(field) count_total(__builtin_offsetof(struct authz_totals, field))

static __always_inline int is_v4_mapped(const struct in6_addr *a)
{
	return a->in6_u.u6_addr32[0] == 0 && a->in6_u.u6_addr32[1] == 0 &&
	       a->in6_u.u6_addr32[2] == bpf_htonl(0x0000ffff);
}

static __always_inline enum parse_result parse_syn(struct xdp_md *ctx, struct syn *s)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct tcphdr *tcp;

	if ((void *)(eth + 1) > end)
		return PARSE_UNPARSED;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip4 = (void *)(eth + 1);
		__u32 ihl;

		if ((void *)(ip4 + 1) > end || ip4->version != 4)
			return PARSE_UNPARSED;
		ihl = ip4->ihl * 4;
		if (ihl < sizeof(*ip4))
			return PARSE_UNPARSED;
		if (ip4->protocol != IPPROTO_TCP)
			return PARSE_NOT_SYN;
		/* A later fragment carries no TCP header. */
		if (ip4->frag_off & bpf_htons(0x1fff))
			return PARSE_NOT_SYN;
		tcp = (void *)ip4 + ihl;
		s->ip_version = 4;
		s->family = AUTHZ_FAMILY_V4;
		s->plain = ihl == sizeof(*ip4);
		s->src.ip4 = ip4->saddr;
		s->dst.ip4 = ip4->daddr;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		void *hdr;
		__u8 next;
		int i;

		if ((void *)(ip6 + 1) > end || ip6->version != 6)
			return PARSE_UNPARSED;
		next = ip6->nexthdr;
		hdr = ip6 + 1;
#pragma unroll
		for (i = 0; i < MAX_IPV6_EXT_HEADERS; i++) {
			__u8 *ext = hdr;
			__u32 len;

			if (next == IPPROTO_TCP)
				break;
			if (next != IPV6_EXT_HOPOPTS && next != IPV6_EXT_ROUTING && next != IPV6_EXT_FRAGMENT &&
			    next != IPV6_EXT_AH && next != IPV6_EXT_DSTOPTS)
				return PARSE_NOT_SYN; /* another protocol (UDP, ICMPv6, ESP, no next header...) */
			if ((void *)(ext + 8) > end)
				return PARSE_UNPARSED;
			if (next == IPV6_EXT_FRAGMENT) {
				/* offset bits of the fragment header: a later fragment carries no TCP header */
				if (((ext[2] << 8) | ext[3]) & 0xfff8)
					return PARSE_NOT_SYN;
				len = 8;
			} else if (next == IPV6_EXT_AH) {
				len = ((__u32)ext[1] + 2) * 4;
			} else {
				len = ((__u32)ext[1] + 1) * 8;
			}
			next = ext[0];
			hdr = (void *)ext + len;
		}
		if (next != IPPROTO_TCP)
			return PARSE_UNPARSED; /* more extension headers than we walk */
		tcp = hdr;
		s->ip_version = 6;
		s->plain = (void *)tcp == (void *)(ip6 + 1);
		if (is_v4_mapped(&ip6->saddr) && is_v4_mapped(&ip6->daddr)) {
			s->family = AUTHZ_FAMILY_V4;
			s->src.ip4 = ip6->saddr.in6_u.u6_addr32[3];
			s->dst.ip4 = ip6->daddr.in6_u.u6_addr32[3];
		} else {
			s->family = AUTHZ_FAMILY_V6;
			__builtin_memcpy(&s->src, &ip6->saddr, 16);
			__builtin_memcpy(&s->dst, &ip6->daddr, 16);
		}
	} else {
		return PARSE_UNPARSED;
	}
	if ((void *)(tcp + 1) > end || tcp->doff < 5)
		return PARSE_UNPARSED;
	if (!tcp->syn || tcp->ack)
		return PARSE_NOT_SYN;
	s->dport = bpf_ntohs(tcp->dest);
	s->l4_off = (void *)tcp - data;
	return PARSE_SYN;
}

/* Walks the decision diagram from `node` to its leaf: one lookup per tested property. NULL: a broken chain. */
static __always_inline const struct authz_node *walk(__u32 node, const struct syn *s, __u32 gen)
{
	struct authz_addr_key id_key = { .gen = gen, .family = s->family, .addr = s->src };
	__u32 *found = bpf_map_lookup_elem(&km_authz_srcid, &id_key);
	__u32 identity = found ? *found : AUTHZ_NO_IDENTITY;
	int step;

#pragma unroll
	for (step = 0; step < AUTHZ_MAX_STEPS; step++) {
		const struct authz_node *n = bpf_map_lookup_elem(&km_authz_node, &node);
		__u32 *child = NULL;

		if (!n)
			return NULL;
		if (n->dim == AUTHZ_DIM_LEAF)
			return n;
		if (n->dim == AUTHZ_DIM_PORT) {
			struct authz_port_key k = { .node = node, .port = s->dport };
			child = bpf_map_lookup_elem(&km_authz_port, &k);
		} else if (n->dim == AUTHZ_DIM_SRC_IP) {
			struct authz_src_key k = { .node = node, .family = s->family };
			k.prefixlen = AUTHZ_SRC_FIXED_BITS + (s->family == AUTHZ_FAMILY_V4 ? 32 : 128);
			__builtin_memcpy(k.addr, &s->src, 16);
			child = bpf_map_lookup_elem(&km_authz_src, &k);
		} else if (n->dim == AUTHZ_DIM_IDENTITY) {
			struct authz_ident_key k = { .node = node, .identity = identity };
			child = bpf_map_lookup_elem(&km_authz_ident, &k);
		} else {
			return NULL;
		}
		node = child ? *child : n->next;
	}
	return NULL;
}

static __always_inline void count_verdict(const struct authz_node *leaf)
{
	__u32 slot = leaf->policy;
	struct authz_stats *st = bpf_map_lookup_elem(&km_authz_stats, &slot);

	if (st) {
		if (leaf->verdict == AUTHZ_VERDICT_DENY)
			st->deny += 1;
		else
			st->allow += 1;
	}
	if (!leaf->dry_run)
		return;
	slot = leaf->dry_policy;
	st = bpf_map_lookup_elem(&km_authz_stats, &slot);
	if (st)
		st->dry_run_deny += 1;
}

/* Folds a 32-bit one's-complement sum (from bpf_csum_diff) into the 16-bit internet checksum. */
static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

struct pseudo4 {
	__be32 src, dst;
	__u8 zero, proto;
	__be16 len;
};

struct pseudo6 {
	struct in6_addr src, dst;
	__be32 len;
	__u8 zero[3], proto;
};

/*
 * Turns the SYN in place into the RST that answers it (RFC 9293 §3.10.7.1: SEQ 0, ACK = SYN's SEQ + 1, RST|ACK)
 * and sends it back out of the interface it came in on. Only for a plain header chain; the frame is cut to
 * Ethernet + IP + 20 bytes of TCP. Returns XDP_TX, or XDP_DROP when it could not be built.
 */
static __always_inline int answer_with_rst(struct xdp_md *ctx, const struct syn *s)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 keep = s->l4_off + sizeof(struct tcphdr);
	int shrink = (int)(keep - (__u32)(end - data));
	struct ethhdr *eth;
	struct tcphdr *tcp;
	unsigned char mac[ETH_ALEN];
	__be16 port;
	__u32 sum;

	if (!s->plain)
		return XDP_DROP;
	if (shrink < 0 && bpf_xdp_adjust_tail(ctx, shrink))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);

	if (s->ip_version == 4) {
		struct iphdr *ip4 = (void *)(eth + 1);
		struct pseudo4 ph;
		__be32 a;

		tcp = (void *)(ip4 + 1);
		if ((void *)(tcp + 1) > end)
			return XDP_DROP;
		a = ip4->saddr;
		ip4->saddr = ip4->daddr;
		ip4->daddr = a;
		ip4->tot_len = bpf_htons(sizeof(*ip4) + sizeof(*tcp));
		ip4->ttl = 64;
		ip4->tos = 0;
		ip4->id = 0;
		ip4->frag_off = bpf_htons(0x4000); /* DF */
		ip4->check = 0;
		ip4->check = csum_fold(bpf_csum_diff(0, 0, (__be32 *)ip4, sizeof(*ip4), 0));
		ph.src = ip4->saddr;
		ph.dst = ip4->daddr;
		ph.zero = 0;
		ph.proto = IPPROTO_TCP;
		ph.len = bpf_htons(sizeof(*tcp));
		sum = bpf_csum_diff(0, 0, (__be32 *)&ph, sizeof(ph), 0);
	} else {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		struct pseudo6 ph = {};
		struct in6_addr a;

		tcp = (void *)(ip6 + 1);
		if ((void *)(tcp + 1) > end)
			return XDP_DROP;
		a = ip6->saddr;
		ip6->saddr = ip6->daddr;
		ip6->daddr = a;
		ip6->payload_len = bpf_htons(sizeof(*tcp));
		ip6->hop_limit = 64;
		ph.src = ip6->saddr;
		ph.dst = ip6->daddr;
		ph.len = bpf_htonl(sizeof(*tcp));
		ph.proto = IPPROTO_TCP;
		sum = bpf_csum_diff(0, 0, (__be32 *)&ph, sizeof(ph), 0);
	}
	port = tcp->source;
	tcp->source = tcp->dest;
	tcp->dest = port;
	tcp->ack_seq = bpf_htonl(bpf_ntohl(tcp->seq) + 1);
	tcp->seq = 0;
	/* doff 5, flags RST|ACK only */
	((__u8 *)tcp)[12] = 5 << 4;
	((__u8 *)tcp)[13] = 0x14;
	tcp->window = 0;
	tcp->urg_ptr = 0;
	tcp->check = 0;
	sum = bpf_csum_diff(0, 0, (__be32 *)tcp, sizeof(*tcp), sum);
	tcp->check = csum_fold(sum);
	return XDP_TX;
}

SEC("xdp")
int xdp_authz(struct xdp_md *ctx)
{
	struct syn s = {};
	struct authz_addr_key root_key = {};
	const struct authz_node *leaf;
	struct authz_state *state;
	__u32 zero = 0;
	__u32 *root;

	COUNT(packets);
	switch (parse_syn(ctx, &s)) {
	case PARSE_UNPARSED:
		COUNT(unparsed);
		return XDP_PASS;
	case PARSE_NOT_SYN:
		return XDP_PASS;
	default:
		break;
	}
	state = bpf_map_lookup_elem(&km_authz_state, &zero);
	if (!state)
		return XDP_PASS;
	root_key.gen = state->gen;
	root_key.family = s.family;
	root_key.addr = s.dst;
	root = bpf_map_lookup_elem(&km_authz_root, &root_key);
	if (!root)
		return XDP_PASS; /* no policy applies to this address */
	COUNT(syns_checked);
	leaf = walk(*root, &s, state->gen);
	if (!leaf) {
		COUNT(broken);
		return XDP_PASS;
	}
	count_verdict(leaf);
	if (leaf->verdict != AUTHZ_VERDICT_DENY)
		return XDP_PASS;
	if (s.plain) {
		COUNT(denied_rst);
		return answer_with_rst(ctx, &s);
	}
	COUNT(denied_drop);
	return XDP_DROP;
}

/* The baseline of bench/authz: what an XDP program costs that only passes the packet. */
SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
