/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* km_endpoint: (service, priority, 1-based index) -> backend uid (docs/reference/kmesh-dataplane.md §2.3). */
#ifndef KMESH_ENDPOINT_H
#define KMESH_ENDPOINT_H

#include "kmesh_types.h"

#pragma pack(1)
struct endpoint_key {
	__u32 service_id;
	__u32 prio;          /* 0 is the highest priority, PRIO_COUNT-1 the lowest */
	__u32 backend_index; /* 1..prio_endpoint_count[prio] */
} KMESH_RECORD;

struct endpoint_value {
	__u32 backend_uid;
} KMESH_RECORD;
#pragma pack()

_Static_assert(sizeof(struct endpoint_key) == 12, "endpoint_key is 12 bytes");
_Static_assert(sizeof(struct endpoint_value) == 4, "endpoint_value is 4 bytes");

#include "lb_types.h"
#include "service.h"

/* Which priority bucket the service's policy draws from (docs/reference/kmesh-dataplane.md §3), and how many
 * endpoints it holds:
 *   Random, Strict: bucket 0 only (userspace puts every endpoint at 0 for Random, only full locality matches
 *                   for Strict); an empty bucket 0 refuses the connect.
 *   Failover:       the first non-empty bucket 0..PRIO_COUNT-1; all empty refuses the connect.
 *   Passthrough:    LB_LEAVE, the connect keeps its destination.
 *   anything else:  -EINVAL. */
static __always_inline int select_priority(const struct service_value *svc, __u32 *prio, __u32 *count)
{
	__u32 n;

	switch (svc->lb_policy) {
	case LB_POLICY_RANDOM:
	case LB_POLICY_STRICT:
		n = svc->prio_endpoint_count[0];
		if (n == 0)
			return -ECONNREFUSED;
		*prio = 0;
		*count = n;
		return 0;
	case LB_POLICY_FAILOVER:
#pragma unroll
		for (int i = 0; i < PRIO_COUNT; i++) {
			n = svc->prio_endpoint_count[i];
			if (n != 0) {
				*prio = i;
				*count = n;
				return 0;
			}
		}
		return -ECONNREFUSED;
	case LB_POLICY_PASSTHROUGH:
		return LB_LEAVE;
	default:
		return -EINVAL;
	}
}

/* The km_endpoint key the connect goes to: the bucket select_priority() allows and the 1-based index
 * `random % count + 1` in it (indexes are dense 1..count, §2.3). There is no fall-through to another
 * bucket when the chosen key turns out to be missing: that refuses the connect (lb.h). */
static __always_inline int select_endpoint(const struct service_value *svc, __u32 service_id, __u32 random,
					   struct endpoint_key *key)
{
	__u32 prio = 0, count = 0;
	int ret = select_priority(svc, &prio, &count);

	if (ret != 0)
		return ret;
	key->service_id = service_id;
	key->prio = prio;
	key->backend_index = random % count + 1;
	return 0;
}

#endif
