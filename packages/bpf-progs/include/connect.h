/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The steps of the cgroup/connect4 and cgroup/connect6 hooks that touch the socket address context
 * (docs/reference/kmesh-dataplane.md §1.2, §1.3, §4.1). The decision itself is lb.h's, on plain inputs. */
#ifndef KMESH_CONNECT_H
#define KMESH_CONNECT_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "lb.h"

/* A cgroup/connect program's return: 1 lets the connect go on (rewritten or not). 0 refuses it, with the
 * errno set by bpf_set_retval() (the kernel's default would be EPERM). */
#define CONNECT_ALLOW 1
#define CONNECT_REFUSE 0

static __always_inline int refuse_connect(int err)
{
	bpf_set_retval(err);
	return CONNECT_REFUSE;
}

static __always_inline void netns_key(struct bpf_sock_addr *ctx, struct manager_key *key)
{
	__builtin_memset(key, 0, sizeof(*key));
	key->netns_cookie = bpf_get_netns_cookie(ctx);
}

/* Enrol (km_manage[{netns cookie}] = 0) or unenrol (delete) the caller's network namespace. The control
 * connect itself is then refused with ECONNREFUSED so that no packet ever leaves the host for 0.0.0.2 / ::2;
 * the daemon checks the outcome by reading km_manage, not from the connect's result. */
static __always_inline int apply_manage_command(struct bpf_sock_addr *ctx, enum manage_command cmd)
{
	struct manager_key key;
	__u32 managed = 0;

	netns_key(ctx, &key);
	if (cmd == MANAGE_ENROL)
		bpf_map_update_elem(&km_manage, &key, &managed, BPF_ANY);
	else
		bpf_map_delete_elem(&km_manage, &key);
	return refuse_connect(-ECONNREFUSED);
}

/* The manage gate: only network namespaces present in km_manage are load-balanced (the value is ignored). */
static __always_inline int netns_is_managed(struct bpf_sock_addr *ctx)
{
	struct manager_key key;

	netns_key(ctx, &key);
	return bpf_map_lookup_elem(&km_manage, &key) != NULL;
}

/* Socket storage: the original destination is written once (has_set_ip), so the second pass after a
 * waypoint tail call keeps the application's destination; via_waypoint is only ever set, never cleared.
 * A socket whose storage cannot be created is still rewritten (nothing would be gained by failing it). */
static __always_inline void record_original_destination(struct bpf_sock_addr *ctx, const struct lb_input *in,
							const struct lb_result *out)
{
	struct bpf_sock *sk = ctx->sk;
	struct sock_storage_data *storage;

	if (!sk)
		return;
	storage = bpf_sk_storage_get(&km_sockstorage, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!storage)
		return;
	if (out->via_waypoint)
		storage->via_waypoint = 1;
	if (storage->has_set_ip)
		return;
	if (in->family == AF_INET) {
		storage->sk_tuple.ipv4.daddr = in->dst.ip4;
		storage->sk_tuple.ipv4.dport = (__u16)in->dst_port;
	} else {
		storage->sk_tuple.ipv6.daddr[0] = in->dst.ip6[0];
		storage->sk_tuple.ipv6.daddr[1] = in->dst.ip6[1];
		storage->sk_tuple.ipv6.daddr[2] = in->dst.ip6[2];
		storage->sk_tuple.ipv6.daddr[3] = in->dst.ip6[3];
		storage->sk_tuple.ipv6.dport = (__u16)in->dst_port;
	}
	storage->has_set_ip = 1;
}

/* The storage of a socket whose connect was rewritten (its original destination is set), or NULL. */
static __always_inline struct sock_storage_data *dialled_destination(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct sock_storage_data *storage;

	if (!sk)
		return NULL;
	storage = bpf_sk_storage_get(&km_sockstorage, sk, 0, 0);
	return storage && storage->has_set_ip ? storage : NULL;
}

static __always_inline void read_destination4(const struct bpf_sock_addr *ctx, struct lb_input *in)
{
	in->family = AF_INET;
	ip_set_v4(&in->dst, ctx->user_ip4);
	in->dst_port = ctx->user_port;
}

static __always_inline void read_destination6(const struct bpf_sock_addr *ctx, struct lb_input *in)
{
	in->family = AF_INET6;
	in->dst.ip6[0] = ctx->user_ip6[0];
	in->dst.ip6[1] = ctx->user_ip6[1];
	in->dst.ip6[2] = ctx->user_ip6[2];
	in->dst.ip6[3] = ctx->user_ip6[3];
	in->dst_port = ctx->user_port;
}

static __always_inline void write_destination4(struct bpf_sock_addr *ctx, const struct lb_result *out)
{
	ctx->user_ip4 = out->dnat_ip.ip4;
	ctx->user_port = out->dnat_port;
}

static __always_inline void write_destination6(struct bpf_sock_addr *ctx, const struct lb_result *out)
{
	ctx->user_ip6[0] = out->dnat_ip.ip6[0];
	ctx->user_ip6[1] = out->dnat_ip.ip6[1];
	ctx->user_ip6[2] = out->dnat_ip.ip6[2];
	ctx->user_ip6[3] = out->dnat_ip.ip6[3];
	ctx->user_port = out->dnat_port;
}

#endif
