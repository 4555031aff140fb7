/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* km_frontend: destination IP (service VIP or workload IP) -> upstream id
 * (docs/reference/kmesh-dataplane.md §2.3). */
#ifndef KMESH_FRONTEND_H
#define KMESH_FRONTEND_H

#include "kmesh_types.h"

#pragma pack(1)
struct frontend_key {
	union ip_addr addr;
} KMESH_RECORD;

struct frontend_value {
	__u32 upstream_id; /* a service id (service access) or a backend uid (direct workload access) */
} KMESH_RECORD;
#pragma pack()

_Static_assert(sizeof(struct frontend_key) == 16, "frontend_key is 16 bytes");
_Static_assert(sizeof(struct frontend_value) == 4, "frontend_value is 4 bytes");

#include "addr.h"

/* The km_frontend key for a destination. An IPv4-mapped IPv6 destination (::ffff:a.b.c.d) is folded to the
 * IPv4 key so that dual-stack sockets reach IPv4 services (docs/reference/kmesh-dataplane.md §1.3).
 * Returns 1 when the destination was folded, 0 otherwise (lb_resolve fits the result back to the socket). */
static __always_inline int frontend_key_for(const union ip_addr *dst, __u32 family, struct frontend_key *key)
{
	if (family == AF_INET6 && ip_is_v4_mapped(dst)) {
		ip_set_v4(&key->addr, dst->ip6[3]);
		return 1;
	}
	ip_copy_for_family(&key->addr, dst, family);
	return 0;
}

#endif
