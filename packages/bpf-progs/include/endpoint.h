/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* km_endpoint: (service, priority, 1-based index) -> backend uid (reference/kmesh-dataplane.md §2.3). */
#ifndef KMESH_ENDPOINT_H
#define KMESH_ENDPOINT_H

#include "kmesh_types.h"

#pragma pack(1)
struct endpoint_key {
	__u32 service_id;
	__u32 prio;          /* 0 is the highest priority, PRIO_COUNT-1 the lowest */
	__u32 backend_index; /* 1..prio_endpoint_count[prio] */
};

struct endpoint_value {
	__u32 backend_uid;
};
#pragma pack()

#endif
