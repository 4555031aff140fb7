// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The original destination for the waypoint (include/sendmsg.h, docs/reference/kmesh-dataplane.md §1.6): a connect the
 * connect hook redirected to a waypoint (km_sockstorage: via_waypoint, and the destination dialled) sends, before its
 * first byte, the TLV prefix
 *     0x01 | len (u32 BE, 6 or 18) | IP | port  then  0xfe | 0 (u32)
 * so the waypoint learns the service the application meant. The sockops program enrols such sockets in km_socket at
 * establishment; the sk_msg program, attached to km_socket, writes the prefix once (has_encoded). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "maps.h"
#include "sendmsg.h"

static __always_inline void tuple_of(const struct bpf_sock_ops *ctx, struct bpf_sock_tuple *tuple)
{
	__builtin_memset(tuple, 0, sizeof(*tuple));
	if (ctx->family == AF_INET) {
		tuple->ipv4.saddr = ctx->local_ip4;
		tuple->ipv4.daddr = ctx->remote_ip4;
		tuple->ipv4.sport = bpf_htons((__u16)ctx->local_port);
		tuple->ipv4.dport = bpf_htons((__u16)bpf_ntohl(ctx->remote_port));
	} else {
		tuple->ipv6.saddr[0] = ctx->local_ip6[0];
		tuple->ipv6.saddr[1] = ctx->local_ip6[1];
		tuple->ipv6.saddr[2] = ctx->local_ip6[2];
		tuple->ipv6.saddr[3] = ctx->local_ip6[3];
		tuple->ipv6.daddr[0] = ctx->remote_ip6[0];
		tuple->ipv6.daddr[1] = ctx->remote_ip6[1];
		tuple->ipv6.daddr[2] = ctx->remote_ip6[2];
		tuple->ipv6.daddr[3] = ctx->remote_ip6[3];
		tuple->ipv6.sport = bpf_htons((__u16)ctx->local_port);
		tuple->ipv6.dport = bpf_htons((__u16)bpf_ntohl(ctx->remote_port));
	}
}

SEC("sockops")
int sockops_waypoint_prog(struct bpf_sock_ops *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct sock_storage_data *storage;
	struct bpf_sock_tuple tuple;

	if (ctx->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB || !sk)
		return 1;
	if (ctx->family != AF_INET && ctx->family != AF_INET6)
		return 1;
	storage = bpf_sk_storage_get(&km_sockstorage, sk, 0, 0);
	if (!storage || !storage->via_waypoint || !storage->has_set_ip)
		return 1;
	tuple_of(ctx, &tuple);
	bpf_sock_hash_update(ctx, &km_socket, &tuple, BPF_ANY);
	return 1;
}

/* Writes a TLV header (type, big-endian length) at p; the caller checked the bounds. */
static __always_inline void tlv_header(__u8 *p, __u8 type, __u32 length)
{
	p[0] = type;
	p[1] = length >> 24;
	p[2] = length >> 16;
	p[3] = length >> 8;
	p[4] = length;
}

SEC("sk_msg")
int sendmsg_prog(struct sk_msg_md *msg)
{
	struct bpf_sock *sk = msg->sk;
	struct sock_storage_data *storage;
	__u32 size;
	__u8 *data, *end;

	if (!sk || (msg->family != AF_INET && msg->family != AF_INET6))
		return SK_PASS;
	storage = bpf_sk_storage_get(&km_sockstorage, sk, 0, 0);
	if (!storage || !storage->via_waypoint || !storage->has_set_ip || storage->has_encoded)
		return SK_PASS;
	/* Once per connection, set before the push: a failed push is not retried (the waypoint then sees no prefix). */
	storage->has_encoded = 1;
	size = msg->family == AF_INET ? TLV_PREFIX_SIZE4 : TLV_PREFIX_SIZE6;
	if (bpf_msg_push_data(msg, 0, size, 0))
		return SK_PASS;
	data = (__u8 *)(long)msg->data;
	end = (__u8 *)(long)msg->data_end;
	if (msg->family == AF_INET) {
		if (data + TLV_PREFIX_SIZE4 > end)
			return SK_PASS;
		tlv_header(data, TLV_ORG_DST_ADDR, 6);
		__builtin_memcpy(data + 5, &storage->sk_tuple.ipv4.daddr, 4);
		__builtin_memcpy(data + 9, &storage->sk_tuple.ipv4.dport, 2);
		tlv_header(data + 11, TLV_PAYLOAD, 0);
	} else {
		if (data + TLV_PREFIX_SIZE6 > end)
			return SK_PASS;
		tlv_header(data, TLV_ORG_DST_ADDR, 18);
		__builtin_memcpy(data + 5, storage->sk_tuple.ipv6.daddr, 16);
		__builtin_memcpy(data + 21, &storage->sk_tuple.ipv6.dport, 2);
		tlv_header(data + 23, TLV_PAYLOAD, 0);
	}
	return SK_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
