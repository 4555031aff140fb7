/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* km_frontend: destination IP (service VIP or workload IP) -> upstream id
 * (reference/kmesh-dataplane.md §2.3). */
#ifndef KMESH_FRONTEND_H
#define KMESH_FRONTEND_H

#include "kmesh_types.h"

#pragma pack(1)
struct frontend_key {
	union ip_addr addr;
};

struct frontend_value {
	__u32 upstream_id; /* a service id (service access) or a backend uid (direct workload access) */
};
#pragma pack()

#endif
