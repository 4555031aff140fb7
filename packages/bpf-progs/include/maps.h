/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Every map the kmesh-ts programs share, defined once (docs/reference/kmesh-dataplane.md §2.1). The ELF names are
 * the pin names; userspace pins them by name under its pin root so every object shares one kernel map.
 * max_entries here are upstream Kmesh's defaults; userspace sets the real capacity at load time
 * (bpf_map__set_max_entries), so nothing below is a limit of the data path. No `pinning` attribute: where
 * maps are pinned is userspace's choice. */
#ifndef KMESH_MAPS_H
#define KMESH_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "frontend.h"
#include "service.h"
#include "endpoint.h"
#include "backend.h"
#include "manage.h"
#include "sock_storage.h"

/* Tail-call slots: userspace installs cgroup_connect4_prog itself at km_cgr_tailcall[0] and
 * cgroup_connect6_prog at km_cgr_tail6[1] (§1.9). Two arrays, because a prog array takes the attach type of
 * its first program and connect4/connect6 differ (upstream PR #1808). */
#define TAIL_CALL_CONNECT4_INDEX 0
#define TAIL_CALL_CONNECT6_INDEX 1
#define TAIL_CALL_SLOTS 8

/* destination IP (service VIP or workload IP) -> upstream id */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct frontend_key);
	__type(value, struct frontend_value);
	__uint(max_entries, 105000);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} km_frontend SEC(".maps");

/* service id -> endpoint counts per priority, policy, ports, waypoint */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct service_key);
	__type(value, struct service_value);
	__uint(max_entries, 5000);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} km_service SEC(".maps");

/* (service id, priority, 1-based index) -> backend uid */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_value);
	__uint(max_entries, 105000);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} km_endpoint SEC(".maps");

/* backend (workload) uid -> address and waypoint */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct backend_key);
	__type(value, struct backend_value);
	__uint(max_entries, 100000);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} km_backend SEC(".maps");

/* managed network namespaces (netns cookie) or pod IPs -> 0 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct manager_key);
	__type(value, __u32);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} km_manage SEC(".maps");

/* per-socket state: the original destination of a rewritten connect (SK_STORAGE needs NO_PREALLOC and
 * max_entries 0) */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__type(key, int);
	__type(value, struct sock_storage_data);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} km_sockstorage SEC(".maps");

/* Prog arrays carry no BTF key/value types (the kernel refuses them), only sizes. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, TAIL_CALL_SLOTS);
} km_cgr_tailcall SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, TAIL_CALL_SLOTS);
} km_cgr_tail6 SEC(".maps");

#endif
