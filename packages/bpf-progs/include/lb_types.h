/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Inputs and outputs of the load-balancing decision (lb.h `lb_resolve`). Plain values, no program context:
 * the connect hooks fill them from `bpf_sock_addr`, the test program (src/lb_test.c) from its test-run ctx.
 *
 * Return codes of every decision function in include/:
 *   0         rewrite the connect to `struct lb_result`;
 *   LB_LEAVE  leave the connect untouched (no frontend; PASSTHROUGH service; direct workload access without a
 *             waypoint);
 *   < 0       refuse the connect with that errno: -ECONNREFUSED when nothing usable serves the destination (no
 *             endpoint at the bucket the policy allows, a stale endpoint/backend/upstream id, a service port the
 *             service does not serve), -EINVAL for an unknown lb_policy.
 * Refusing differs from upstream Kmesh, which silently lets such a connect go to the unroutable VIP
 * (docs/reference/kmesh-dataplane.md §7 item 2); kmesh-ts fails fast instead (issue 4, "Fail fast"). */
#ifndef KMESH_LB_TYPES_H
#define KMESH_LB_TYPES_H

#include <linux/errno.h>
#include "kmesh_types.h"

#define LB_REWRITE 0 /* named for userspace, which reads the code back (lb.h itself returns 0 on success) */
#define LB_LEAVE 1

struct lb_input {
	union ip_addr dst; /* destination as the application gave it: v4 in bytes 0..3, or 16 v6 bytes */
	__u32 dst_port;    /* network order in the low 16 bits, like bpf_sock_addr.user_port */
	__u32 family;      /* AF_INET or AF_INET6 */
	__u32 random;      /* the random number the choice uses (bpf_get_prandom_u32() in the hooks) */
};

struct lb_result {
	union ip_addr dnat_ip; /* new destination: 4 bytes (rest zero) for AF_INET, 16 for AF_INET6 */
	__u32 dnat_port;       /* network order in the low 16 bits */
	__u8 via_waypoint;     /* 1 when the destination is a waypoint (the hooks then resolve it again) */
	__u8 pad[3];
};

/* The ctx of the test program (src/lb_test.c): the test writes `in`, the program writes `out` and `ret`.
 * Offsets: in 0 (28 bytes: dst 0, dst_port 16, family 20, random 24), out 28 (24 bytes: dnat_ip 28,
 * dnat_port 44, via_waypoint 48), ret 52; 56 bytes in all. */
struct lb_test_ctx {
	struct lb_input in;
	struct lb_result out;
	__s32 ret;
};

_Static_assert(sizeof(struct lb_input) == 28, "lb_input is 28 bytes");
_Static_assert(sizeof(struct lb_result) == 24, "lb_result is 24 bytes");
_Static_assert(sizeof(struct lb_test_ctx) == 56, "lb_test_ctx is 56 bytes");

#endif
