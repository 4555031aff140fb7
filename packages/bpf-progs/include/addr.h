/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Address helpers for `union ip_addr` (docs/reference/kmesh-dataplane.md §2.2): an IPv4 address is bytes 0..3 in
 * network order with bytes 4..15 zero, an IPv6 address fills 16 bytes, an IPv4-mapped IPv6 address is
 * ::ffff:a.b.c.d. Byte-order correct on either endianness (upstream's mapped test holds on little-endian only). */
#ifndef KMESH_ADDR_H
#define KMESH_ADDR_H

#include <linux/errno.h>
#include <bpf/bpf_endian.h>
#include "kmesh_types.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

/* ::ffff:0:0/96: words 0 and 1 zero, word 2 = 00 00 ff ff in memory. */
static __always_inline int ip_is_v4_mapped(const union ip_addr *a)
{
	return a->ip6[0] == 0 && a->ip6[1] == 0 && a->ip6[2] == bpf_htonl(0x0000ffff);
}

static __always_inline int ip_is_zero(const union ip_addr *a)
{
	return (a->ip6[0] | a->ip6[1] | a->ip6[2] | a->ip6[3]) == 0;
}

/* An IPv4 address in the kmesh layout (bytes 4..15 zero). */
static __always_inline void ip_set_v4(union ip_addr *a, __u32 ip4)
{
	a->ip6[0] = ip4;
	a->ip6[1] = 0;
	a->ip6[2] = 0;
	a->ip6[3] = 0;
}

/* ::ffff:a.b.c.d for the IPv4 address at bytes 0..3 of `a`. */
static __always_inline void ip_map_v4_to_v6(union ip_addr *a)
{
	__u32 ip4 = a->ip4;

	a->ip6[0] = 0;
	a->ip6[1] = 0;
	a->ip6[2] = bpf_htonl(0x0000ffff);
	a->ip6[3] = ip4;
}

/* The kmesh layout of an IPv4 address: bytes 4..15 zero (reference §2.2). */
static __always_inline int ip_is_v4_layout(const union ip_addr *a)
{
	return (a->ip6[1] | a->ip6[2] | a->ip6[3]) == 0;
}

/* Makes a record's address usable by the application's socket: an AF_INET socket takes an IPv4 address (an
 * IPv6 one cannot be reached from it: -EAFNOSUPPORT), an AF_INET6 socket takes IPv6 as it is and IPv4 as
 * ::ffff:a.b.c.d. Upstream Kmesh copies 4 or 16 raw bytes instead, so a v4 socket sent to an IPv6 backend
 * connects to the first 4 bytes of its address and a v6 socket sent to an IPv4 one to a.b.c.d:: . */
static __always_inline int ip_fit_to_socket(union ip_addr *a, __u32 socket_family)
{
	if (!ip_is_v4_layout(a))
		return socket_family == AF_INET ? -EAFNOSUPPORT : 0;
	if (socket_family != AF_INET)
		ip_map_v4_to_v6(a);
	return 0;
}

/* Copies the part of `src` that the family uses: 4 bytes (rest zeroed) for AF_INET, 16 bytes otherwise. */
static __always_inline void ip_copy_for_family(union ip_addr *dst, const union ip_addr *src, __u32 family)
{
	if (family == AF_INET) {
		ip_set_v4(dst, src->ip4);
		return;
	}
	dst->ip6[0] = src->ip6[0];
	dst->ip6[1] = src->ip6[1];
	dst->ip6[2] = src->ip6[2];
	dst->ip6[3] = src->ip6[3];
}

#endif
