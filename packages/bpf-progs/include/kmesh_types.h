/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Types shared by every kmesh-ts record. Layouts are byte-compatible with upstream Kmesh
 * (docs/reference/kmesh-dataplane.md §2.2, §2.3); the TS codecs in @kmesh-ts/bpf-maps equal them,
 * and a test proves it from the BTF of the compiled objects. */
#ifndef KMESH_TYPES_H
#define KMESH_TYPES_H

#include <linux/types.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* The load-balancing records are `#pragma pack(1)` like upstream's, which fixes their byte layout but tells
 * clang they may sit at any address, so every u32 read becomes four byte loads on the BPF target. Every member
 * is a u32 or a 16-byte ip_addr at a multiple of 4 and map values are at least 8-aligned, so declaring the
 * records 4-aligned changes no size or offset (BTF records neither alignment nor padding here) and gives back
 * single word loads. */
#define KMESH_RECORD __attribute__((aligned(4)))

#define PRIO_COUNT 7          /* endpoint priority buckets, 0 is the best */
#define MAX_PORT_COUNT 10     /* service ports held by one service record */
#define MAX_SERVICE_COUNT 10  /* services listed in one backend record */

/* Kernel lb_policy values. 0..2 are Kmesh's; 3 is our extension for Istio's PASSTHROUGH mode. */
#define LB_POLICY_RANDOM 0
#define LB_POLICY_STRICT 1
#define LB_POLICY_FAILOVER 2
#define LB_POLICY_PASSTHROUGH 3

/* An IPv4 address sits in network order in bytes 0..3 with bytes 4..15 zero (not v4-mapped);
 * an IPv6 address fills all 16 bytes in network order. Keys compare all 16 bytes. */
union ip_addr {
	__u32 ip4;
	__u32 ip6[4];
};

#endif
