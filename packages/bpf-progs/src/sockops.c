// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Connection telemetry (include/telemetry.h): a sockops program on the managed cgroup reports each TCP connection of
 * a managed network namespace when it is established (outbound: ACTIVE_ESTABLISHED, inbound: PASSIVE_ESTABLISHED)
 * and when it reaches TCP_CLOSE (BPF_SOCK_OPS_STATE_CB, turned on per socket at establishment), with bytes, RTT,
 * retransmissions and losses read from the socket, and the VIP a rewritten connect dialled (km_sockstorage). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "maps.h"
#include "telemetry.h"

/* include/net/tcp_states.h */
#define TCP_FIN_WAIT1 4
#define TCP_FIN_WAIT2 5
#define TCP_CLOSE 7
#define TCP_CLOSE_WAIT 8
#define TCP_LAST_ACK 9
#define TCP_CLOSING 11

static __always_inline int sockops_netns_is_managed(struct bpf_sock_ops *ctx)
{
	struct manager_key key;

	__builtin_memset(&key, 0, sizeof(key));
	key.netns_cookie = bpf_get_netns_cookie(ctx);
	return bpf_map_lookup_elem(&km_manage, &key) != NULL;
}

static __always_inline void count_lost_record(void)
{
	__u32 zero = 0;
	__u64 *lost = bpf_map_lookup_elem(&km_tel_lost, &zero);

	if (lost)
		*lost += 1; /* per CPU: no other writer */
}

static __always_inline void read_addresses(const struct bpf_sock_ops *ctx, struct conn_record *r)
{
	r->family = ctx->family;
	if (ctx->family == AF_INET) {
		ip_set_v4(&r->src, ctx->local_ip4);
		ip_set_v4(&r->dst, ctx->remote_ip4);
	} else {
		r->src.ip6[0] = ctx->local_ip6[0];
		r->src.ip6[1] = ctx->local_ip6[1];
		r->src.ip6[2] = ctx->local_ip6[2];
		r->src.ip6[3] = ctx->local_ip6[3];
		r->dst.ip6[0] = ctx->remote_ip6[0];
		r->dst.ip6[1] = ctx->remote_ip6[1];
		r->dst.ip6[2] = ctx->remote_ip6[2];
		r->dst.ip6[3] = ctx->remote_ip6[3];
	}
	/* local_port is host order; remote_port is the network-order port in the upper 16 bits on little-endian (the
	 * kernel shifts it there) and the lower on big-endian: ntohl gives the port on both */
	r->src_port = (__u16)ctx->local_port;
	r->dst_port = (__u16)bpf_ntohl(ctx->remote_port);
}

/* The connect hook kept the application's destination when it rewrote the connect (include/connect.h). */
static __always_inline void read_original(const struct bpf_sock_ops *ctx, const struct sock_storage_data *storage,
					  struct conn_record *r)
{
	if (!storage->has_set_ip)
		return;
	r->has_original = 1;
	if (ctx->family == AF_INET) {
		ip_set_v4(&r->original_dst, storage->sk_tuple.ipv4.daddr);
		r->original_port = bpf_ntohs(storage->sk_tuple.ipv4.dport);
	} else {
		r->original_dst.ip6[0] = storage->sk_tuple.ipv6.daddr[0];
		r->original_dst.ip6[1] = storage->sk_tuple.ipv6.daddr[1];
		r->original_dst.ip6[2] = storage->sk_tuple.ipv6.daddr[2];
		r->original_dst.ip6[3] = storage->sk_tuple.ipv6.daddr[3];
		r->original_port = bpf_ntohs(storage->sk_tuple.ipv6.dport);
	}
}

/*
 * Payload bytes: the kernel's bytes_acked and bytes_received count sequence space, so they include our SYN (outbound:
 * the SYN-ACK acknowledges it), our FIN once acknowledged and the peer's FIN once received. Those are taken off here
 * by the state the socket closed from (`old`): our FIN was sent and acknowledged when it closes from FIN_WAIT1/2,
 * CLOSING or LAST_ACK with nothing unacknowledged; the peer's FIN was received when it closes from CLOSE_WAIT,
 * LAST_ACK, CLOSING or FIN_WAIT2. One approximation: a FIN_WAIT2 that timed out without the peer's FIN
 * (tcp_fin_timeout) reports one byte more received than arrived.
 */
static __always_inline void payload_bytes(const struct bpf_sock_ops *ctx, const struct sock_storage_data *storage,
					  __u32 old, struct conn_record *r)
{
	__u64 sent = ctx->bytes_acked;
	__u64 received = ctx->bytes_received;

	if (storage->direction == TELEMETRY_DIR_OUTBOUND && sent > 0)
		sent -= 1;
	if ((old == TCP_FIN_WAIT1 || old == TCP_FIN_WAIT2 || old == TCP_CLOSING || old == TCP_LAST_ACK) &&
	    ctx->snd_una == ctx->snd_nxt && sent > 0)
		sent -= 1;
	if ((old == TCP_CLOSE_WAIT || old == TCP_LAST_ACK || old == TCP_CLOSING || old == TCP_FIN_WAIT2) && received > 0)
		received -= 1;
	r->bytes_sent = sent;
	r->bytes_received = received;
}

/* old: the state a closing socket leaves (0 for an open record). */
static __always_inline void report(struct bpf_sock_ops *ctx, const struct sock_storage_data *storage, __u8 event,
				   __u64 now, __u32 old)
{
	struct conn_record *r = bpf_ringbuf_reserve(&km_telemetry, sizeof(*r), 0);

	if (!r) {
		count_lost_record();
		return;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->at_ns = now;
	r->event = event;
	r->direction = storage->direction;
	if (event == TELEMETRY_EVENT_CLOSE)
		r->duration_ns = now - storage->connect_ns;
	payload_bytes(ctx, storage, old, r);
	r->srtt_us = ctx->srtt_us >> 3;
	r->min_rtt_us = ctx->rtt_min;
	r->total_retrans = ctx->total_retrans;
	r->lost_out = ctx->lost_out;
	read_addresses(ctx, r);
	read_original(ctx, storage, r);
	bpf_ringbuf_submit(r, 0);
}

static __always_inline void on_established(struct bpf_sock_ops *ctx, __u8 direction)
{
	struct bpf_sock *sk = ctx->sk; /* the verifier wants the NULL test on the register the helper gets */
	struct sock_storage_data *storage;
	__u64 now;

	if (!sk || !sockops_netns_is_managed(ctx))
		return;
	storage = bpf_sk_storage_get(&km_sockstorage, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!storage)
		return; /* no storage, no close record to pair with: report neither */
	now = bpf_ktime_get_ns();
	storage->connect_ns = now;
	storage->direction = direction;
	storage->connect_success = 1;
	bpf_sock_ops_cb_flags_set(ctx, ctx->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
	report(ctx, storage, TELEMETRY_EVENT_OPEN, now, 0);
}

static __always_inline void on_state_change(struct bpf_sock_ops *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct sock_storage_data *storage;

	if (ctx->args[1] != TCP_CLOSE || !sk)
		return;
	storage = bpf_sk_storage_get(&km_sockstorage, sk, 0, 0);
	if (!storage || !storage->connect_success)
		return; /* not opened under telemetry (established before the program, or unmanaged) */
	storage->connect_success = 0; /* one close record per connection */
	report(ctx, storage, TELEMETRY_EVENT_CLOSE, bpf_ktime_get_ns(), ctx->args[0]);
}

SEC("sockops")
int sockops_telemetry_prog(struct bpf_sock_ops *ctx)
{
	switch (ctx->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		on_established(ctx, TELEMETRY_DIR_OUTBOUND);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		on_established(ctx, TELEMETRY_DIR_INBOUND);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		on_state_change(ctx);
		break;
	}
	return 1;
}

/* Never called: its prototype keeps struct conn_record in the object's BTF (ring buffer records have no map value
 * type to carry it), where packages/bpf-maps/test/btf-layout.test.ts checks the codec against it. */
__attribute__((used)) static int conn_record_btf_anchor(struct conn_record *r)
{
	return r->event;
}

char _license[] SEC("license") = "Dual BSD/GPL";
