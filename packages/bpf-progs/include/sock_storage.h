/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* km_sockstorage: per-socket state, notably the original destination of a rewritten connect
 * (docs/reference/kmesh-dataplane.md §2.3). Natural alignment, not packed: 64 bytes. */
#ifndef KMESH_SOCK_STORAGE_H
#define KMESH_SOCK_STORAGE_H

#include <linux/bpf.h>
#include <stdbool.h>

struct sock_storage_data {
	__u64 connect_ns;
	__u64 last_report_ns;
	__u8 direction;
	__u8 connect_success;
	bool via_waypoint;
	bool has_encoded;
	bool has_set_ip;
	struct bpf_sock_tuple sk_tuple; /* only daddr/dport are used: the original destination */
};

_Static_assert(sizeof(struct sock_storage_data) == 64, "sock_storage_data is 64 bytes");

#endif
