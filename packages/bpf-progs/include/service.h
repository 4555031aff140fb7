/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* km_service: service id -> endpoint counts per priority, policy, ports, waypoint
 * (docs/reference/kmesh-dataplane.md §2.3). */
#ifndef KMESH_SERVICE_H
#define KMESH_SERVICE_H

#include "kmesh_types.h"

#pragma pack(1)
struct service_key {
	__u32 service_id;
} KMESH_RECORD;

struct service_value {
	__u32 prio_endpoint_count[PRIO_COUNT]; /* endpoints per priority; indexes are dense 1..count */
	__u32 lb_policy;                       /* LB_POLICY_* */
	__u32 service_port[MAX_PORT_COUNT];    /* low 16 bits hold the port in network order, like user_port */
	__u32 target_port[MAX_PORT_COUNT];     /* same representation */
	union ip_addr wp_addr;                 /* waypoint address, zero when none */
	__u32 waypoint_port;                   /* network order in the low 16 bits, zero when none */
} KMESH_RECORD;
#pragma pack()

_Static_assert(sizeof(struct service_key) == 4, "service_key is 4 bytes");
_Static_assert(sizeof(struct service_value) == 132, "service_value is 132 bytes");

#include "lb_types.h"

/* Service port -> target port (docs/reference/kmesh-dataplane.md §3 svc_dnat): the first of the 10 slots whose
 * service port equals the destination port wins. An empty slot (service port 0) never matches, so a connect
 * to port 0 is not mapped to an unused slot's target. No match: the service does not serve this port, and
 * the connect is refused (-ECONNREFUSED; upstream lets it pass to the VIP). */
static __always_inline int map_service_port(const struct service_value *svc, __u32 dst_port, __u32 *target_port)
{
#pragma unroll
	for (int i = 0; i < MAX_PORT_COUNT; i++) {
		__u32 service_port = svc->service_port[i];

		if (service_port != 0 && service_port == dst_port) {
			*target_port = svc->target_port[i];
			return 0;
		}
	}
	return -ECONNREFUSED;
}

#endif
