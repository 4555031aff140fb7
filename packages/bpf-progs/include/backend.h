/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* km_backend: backend (workload) uid -> address and waypoint (reference/kmesh-dataplane.md §2.3). */
#ifndef KMESH_BACKEND_H
#define KMESH_BACKEND_H

#include "kmesh_types.h"

#pragma pack(1)
struct backend_key {
	__u32 backend_uid; /* uid 0 is reserved (Kmesh keeps the DNS proxy address there) */
};

struct backend_value {
	union ip_addr addr;
	__u32 service_count;
	__u32 service[MAX_SERVICE_COUNT]; /* service ids this backend belongs to; not read by BPF */
	union ip_addr wp_addr;
	__u32 waypoint_port;
};
#pragma pack()

#endif
