/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* km_backend: backend (workload) uid -> address and waypoint (docs/reference/kmesh-dataplane.md §2.3). */
#ifndef KMESH_BACKEND_H
#define KMESH_BACKEND_H

#include "kmesh_types.h"

#pragma pack(1)
struct backend_key {
	__u32 backend_uid; /* uid 0 is reserved (Kmesh keeps the DNS proxy address there) */
} KMESH_RECORD;

struct backend_value {
	union ip_addr addr;
	__u32 service_count;
	__u32 service[MAX_SERVICE_COUNT]; /* service ids this backend belongs to; not read by BPF */
	union ip_addr wp_addr;
	__u32 waypoint_port;
} KMESH_RECORD;
#pragma pack()

_Static_assert(sizeof(struct backend_key) == 4, "backend_key is 4 bytes");
_Static_assert(sizeof(struct backend_value) == 80, "backend_value is 80 bytes");

#include "addr.h"
#include "lb_types.h"

/* DNAT to the backend (docs/reference/kmesh-dataplane.md §3 svc_dnat): its address as the record holds it (fitted to
 * the socket's family by lb_resolve) and the target port the service port mapped to. */
static __always_inline void rewrite_destination(const struct backend_value *backend, __u32 target_port,
						struct lb_result *out)
{
	out->dnat_ip = backend->addr;
	out->dnat_port = target_port;
	out->via_waypoint = 0;
}

#endif
