/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* km_manage: which network namespaces (by netns cookie) or pod IPs are managed
 * (docs/reference/kmesh-dataplane.md §2.3, §4.1). */
#ifndef KMESH_MANAGE_H
#define KMESH_MANAGE_H

#include "kmesh_types.h"

struct manager_key {
	union {
		__u64 netns_cookie; /* bytes 0..7, the rest zero */
		union ip_addr addr;
	};
};

_Static_assert(sizeof(struct manager_key) == 16, "manager_key is 16 bytes");

/* Manage control (docs/reference/kmesh-dataplane.md §4.1): a connect to 0.0.0.2 (IPv4) or ::2 (IPv6) on port 929
 * enrols the caller's network namespace, on port 930 unenrols it. */
#define MANAGE_CONTROL_IP4 0x00000002 /* 0.0.0.2, host order */
#define MANAGE_ENROL_PORT 929
#define MANAGE_UNENROL_PORT 930

enum manage_command {
	MANAGE_NONE = 0,
	MANAGE_ENROL,
	MANAGE_UNENROL,
};

#include "addr.h"
#include "lb_types.h"

/* Whether a connect is a manage control command, and which one. */
static __always_inline enum manage_command manage_command_of(const struct lb_input *in)
{
	int control_ip;

	if (in->family == AF_INET)
		control_ip = in->dst.ip4 == bpf_htonl(MANAGE_CONTROL_IP4);
	else
		control_ip = (in->dst.ip6[0] | in->dst.ip6[1] | in->dst.ip6[2]) == 0 &&
			     in->dst.ip6[3] == bpf_htonl(MANAGE_CONTROL_IP4);
	if (!control_ip)
		return MANAGE_NONE;
	if (in->dst_port == bpf_htons(MANAGE_ENROL_PORT))
		return MANAGE_ENROL;
	if (in->dst_port == bpf_htons(MANAGE_UNENROL_PORT))
		return MANAGE_UNENROL;
	return MANAGE_NONE;
}

#endif
