/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* km_manage: which network namespaces (by netns cookie) or pod IPs are managed
 * (reference/kmesh-dataplane.md §2.3, §4.1). */
#ifndef KMESH_MANAGE_H
#define KMESH_MANAGE_H

#include "kmesh_types.h"

struct manager_key {
	union {
		__u64 netns_cookie; /* bytes 0..7, the rest zero */
		union ip_addr addr;
	};
};

#endif
