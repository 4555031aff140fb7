/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Waypoint routing (docs/reference/kmesh-dataplane.md §3 waypoint_manager): the connect goes to the waypoint
 * address and HBONE port instead of a backend. The address is the waypoint *Service VIP*, so the hooks
 * resolve it again with a self tail call (§1.2 step 9). */
#ifndef KMESH_WAYPOINT_H
#define KMESH_WAYPOINT_H

#include "addr.h"
#include "lb_types.h"

/* A waypoint is configured when both its address and its port are set. All 16 address bytes are tested
 * (upstream tests only the first 4, so it would ignore an IPv6 waypoint whose first word is zero). Used for
 * the service's waypoint and the backend's alike. */
static __always_inline int waypoint_is_set(const union ip_addr *addr, __u32 port)
{
	return port != 0 && !ip_is_zero(addr);
}

static __always_inline void route_via_waypoint(const union ip_addr *addr, __u32 port, struct lb_result *out)
{
	out->dnat_ip = *addr;
	out->dnat_port = port;
	out->via_waypoint = 1;
}

#endif
