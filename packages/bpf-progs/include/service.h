/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* km_service: service id -> endpoint counts per priority, policy, ports, waypoint
 * (reference/kmesh-dataplane.md §2.3). */
#ifndef KMESH_SERVICE_H
#define KMESH_SERVICE_H

#include "kmesh_types.h"

#pragma pack(1)
struct service_key {
	__u32 service_id;
};

struct service_value {
	__u32 prio_endpoint_count[PRIO_COUNT]; /* endpoints per priority; indexes are dense 1..count */
	__u32 lb_policy;                       /* LB_POLICY_* */
	__u32 service_port[MAX_PORT_COUNT];    /* low 16 bits hold the port in network order, like user_port */
	__u32 target_port[MAX_PORT_COUNT];     /* same representation */
	union ip_addr wp_addr;                 /* waypoint address, zero when none */
	__u32 waypoint_port;                   /* network order in the low 16 bits, zero when none */
};
#pragma pack()

#endif
