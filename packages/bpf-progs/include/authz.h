/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* L4 authorization at XDP (docs/reference/istio-l4-authz.md; docs/authz-kernel.md for the design).
 *
 * Userspace compiles, for every destination address of a workload, the Istio policies that apply to it into a
 * small decision diagram: each inner node tests one property of the SYN (destination port, source address, source
 * identity) with one map lookup and moves to a child; a leaf holds the verdict and the policy it is counted to.
 * Nodes are shared wherever two subtrees are equal. The per-packet cost is a fixed number of lookups (at most one
 * per property, plus the leaf) whatever the number of policies: no loop over policies, rules or lists.
 *
 * Two generations of the whole set live in the maps at once: the program reads the active generation from
 * km_authz_state, userspace writes a new set under the other generation and then flips that one value, so a
 * connection is always judged by exactly one complete set. Node ids are unique across generations (userspace
 * allocates them from disjoint ranges), so only the root and source-identity keys carry the generation. */
#ifndef KMESH_AUTHZ_H
#define KMESH_AUTHZ_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "kmesh_types.h"

/* What a node tests. A leaf ends the walk. */
#define AUTHZ_DIM_LEAF 0
#define AUTHZ_DIM_PORT 1     /* destination port (host order) in km_authz_port */
#define AUTHZ_DIM_SRC_IP 2   /* source address, longest prefix in km_authz_src */
#define AUTHZ_DIM_IDENTITY 3 /* source identity id (from km_authz_srcid) in km_authz_ident */
/* At most one test per property, then the leaf: the walk never takes more steps than this. */
#define AUTHZ_MAX_STEPS 4

#define AUTHZ_VERDICT_ALLOW 0
#define AUTHZ_VERDICT_DENY 1

/* Policy slots in km_authz_stats: 0 counts the decisions no single policy made (the defaults: allowed because no
 * enforced ALLOW applies, denied because none of them matched); policies get stable slots 1..AUTHZ_MAX_POLICIES. */
#define AUTHZ_NO_POLICY 0
#define AUTHZ_MAX_POLICIES 65536

/* Identity id 0: the source address belongs to no workload of the mesh (no identity). */
#define AUTHZ_NO_IDENTITY 0

/* Address family tags in keys (not AF_*: one byte, and 0 never appears in a written key). */
#define AUTHZ_FAMILY_V4 4
#define AUTHZ_FAMILY_V6 6

/* Capacities for ONE generation; the maps hold two. Userspace refuses a set that does not fit (named limits). */
#define AUTHZ_MAX_ROOTS 65536      /* destination addresses with policies, per node */
#define AUTHZ_MAX_SOURCES 262144   /* source addresses with a mesh identity */
#define AUTHZ_MAX_NODES 262144     /* decision nodes (inner + leaves) */
#define AUTHZ_MAX_EDGES 262144     /* port, source-prefix and identity edges, each map */
/* The maps' max_entries: two generations (plain numbers, so userspace reads them as constants). */
#define AUTHZ_ROOT_ENTRIES 131072
#define AUTHZ_SOURCE_ENTRIES 524288
#define AUTHZ_NODE_ENTRIES 524289 /* + node 0, never used: 0 means "no node" */
#define AUTHZ_EDGE_ENTRIES 524288
#define AUTHZ_STATS_SLOTS 65537
_Static_assert(AUTHZ_ROOT_ENTRIES == 2 * AUTHZ_MAX_ROOTS, "two generations of roots");
_Static_assert(AUTHZ_SOURCE_ENTRIES == 2 * AUTHZ_MAX_SOURCES, "two generations of sources");
_Static_assert(AUTHZ_NODE_ENTRIES == 2 * AUTHZ_MAX_NODES + 1, "two generations of nodes and node 0");
_Static_assert(AUTHZ_EDGE_ENTRIES == 2 * AUTHZ_MAX_EDGES, "two generations of edges");

/* km_authz_root and km_authz_srcid: (generation, address). 24 bytes. */
struct authz_addr_key {
	__u32 gen;
	__u8 family; /* AUTHZ_FAMILY_V4 / _V6 */
	__u8 pad[3];
	union ip_addr addr; /* kmesh_types.h convention: v4 in bytes 0..3, the rest zero */
};

/* km_authz_node value. 16 bytes. */
struct authz_node {
	__u8 dim;     /* AUTHZ_DIM_* */
	__u8 verdict; /* leaf: AUTHZ_VERDICT_* */
	__u8 dry_run; /* leaf: 1 when the dry-run policies would have denied (counted on dry_policy's slot) */
	__u8 pad;
	__u32 next;       /* inner: the child when the lookup misses */
	__u32 policy;     /* leaf: slot counted with the verdict */
	/* leaf with dry_run: the first matching dry-run DENY policy, or AUTHZ_NO_POLICY when no enforced ALLOW
	 * applies and dry-run ALLOW policies apply but none matches (ztunnel's "dry-run: no allow policies match") */
	__u32 dry_policy;
};

/* km_authz_port key: (node, destination port in host order). */
struct authz_port_key {
	__u32 node;
	__u32 port;
};

/* km_authz_src key (LPM trie): prefixlen counts the bits after itself — 32 (node) + 8 (family) + the CIDR's. */
struct authz_src_key {
	__u32 prefixlen;
	__u32 node;
	__u8 family;
	__u8 addr[16]; /* v4: bytes 0..3 */
	__u8 pad[3];
};
#define AUTHZ_SRC_FIXED_BITS 40

/* km_authz_ident key: (node, identity id). */
struct authz_ident_key {
	__u32 node;
	__u32 identity;
};

/* km_authz_state[0]: the generation the program reads. */
struct authz_state {
	__u32 gen;
	__u32 pad;
};

/* km_authz_stats[slot], per CPU. */
struct authz_stats {
	__u64 allow;
	__u64 deny;
	__u64 dry_run_deny;
};

/* km_authz_totals[0], per CPU: what the program did with every packet it saw. */
struct authz_totals {
	__u64 packets;       /* every packet */
	__u64 syns_checked;  /* SYNs to an address with policies */
	__u64 unparsed;      /* passed because not Ethernet/IP/TCP or cut short (passed unjudged) */
	__u64 denied_rst;    /* denied and answered with a RST (XDP_TX) */
	__u64 denied_drop;   /* denied and dropped (a RST could not be built, see docs) */
	__u64 broken;        /* the walk met a missing node: passed, and counted here (a compiler bug) */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct authz_state);
	__uint(max_entries, 1);
} km_authz_state SEC(".maps");

/* destination address -> root node, per generation */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct authz_addr_key);
	__type(value, __u32);
	__uint(max_entries, AUTHZ_ROOT_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} km_authz_root SEC(".maps");

/* source address -> identity id (the identity the mesh gives that address), per generation */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct authz_addr_key);
	__type(value, __u32);
	__uint(max_entries, AUTHZ_SOURCE_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} km_authz_srcid SEC(".maps");

/* node id -> node; ids 1..AUTHZ_MAX_NODES are generation 0's, the next AUTHZ_MAX_NODES generation 1's */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct authz_node);
	__uint(max_entries, AUTHZ_NODE_ENTRIES);
} km_authz_node SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct authz_port_key);
	__type(value, __u32);
	__uint(max_entries, AUTHZ_EDGE_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} km_authz_port SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct authz_src_key);
	__type(value, __u32);
	__uint(max_entries, AUTHZ_EDGE_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} km_authz_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct authz_ident_key);
	__type(value, __u32);
	__uint(max_entries, AUTHZ_EDGE_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} km_authz_ident SEC(".maps");

_Static_assert(AUTHZ_STATS_SLOTS == AUTHZ_MAX_POLICIES + 1, "slot 0 and one slot per policy");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct authz_stats);
	__uint(max_entries, AUTHZ_STATS_SLOTS);
} km_authz_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct authz_totals);
	__uint(max_entries, 1);
} km_authz_totals SEC(".maps");

#endif
