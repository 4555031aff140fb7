// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The connect hooks of kmesh-ts (docs/reference/kmesh-dataplane.md §1.2, §1.3): a managed process's connect() to
 * a service VIP is rewritten to the backend (or waypoint) that lb_resolve() chooses. No DNS branch. */
#include "connect.h"

/* The program body, the same for both families; `read`/`write` move the destination in and out of ctx. */
static __always_inline int handle_connect(struct bpf_sock_addr *ctx, struct lb_input *in)
{
	struct lb_result out;
	enum manage_command cmd;
	int ret;

	/* 1. manage control: 0.0.0.2 / ::2, ports 929 (enrol) and 930 (unenrol), any protocol */
	cmd = manage_command_of(in);
	if (cmd != MANAGE_NONE)
		return apply_manage_command(ctx, cmd);

	/* 2. manage gate: only enrolled network namespaces */
	if (!netns_is_managed(ctx))
		return CONNECT_ALLOW;

	/* 3. TCP only: connected UDP keeps its destination */
	if (ctx->protocol != IPPROTO_TCP)
		return CONNECT_ALLOW;

	/* 4. frontend -> service -> endpoint -> backend */
	in->random = bpf_get_prandom_u32();
	ret = lb_resolve(in, &out);
	if (ret < 0)
		return refuse_connect(ret);
	if (ret == LB_LEAVE)
		return CONNECT_ALLOW;

	/* 5. remember where the application meant to go, then rewrite */
	record_original_destination(ctx, in, &out);
	if (in->family == AF_INET)
		write_destination4(ctx, &out);
	else
		write_destination6(ctx, &out);

	/* 6. a waypoint address is a Service VIP: run this program again on the rewritten destination.
	 * A failed tail call (empty slot, depth limit) leaves the waypoint VIP as the destination. */
	if (out.via_waypoint) {
		if (in->family == AF_INET)
			bpf_tail_call(ctx, &km_cgr_tailcall, TAIL_CALL_CONNECT4_INDEX);
		else
			bpf_tail_call(ctx, &km_cgr_tail6, TAIL_CALL_CONNECT6_INDEX);
	}
	return CONNECT_ALLOW;
}

SEC("cgroup/connect4")
int cgroup_connect4_prog(struct bpf_sock_addr *ctx)
{
	struct lb_input in = {};

	read_destination4(ctx, &in);
	return handle_connect(ctx, &in);
}

SEC("cgroup/connect6")
int cgroup_connect6_prog(struct bpf_sock_addr *ctx)
{
	struct lb_input in = {};

	read_destination6(ctx, &in);
	return handle_connect(ctx, &in);
}

/* getpeername(2) on a socket whose connect was rewritten answers the address the application dialled (the VIP and
 * its port, kept in km_sockstorage by the connect hook), not the backend or waypoint the socket is connected to: an
 * application that checks or logs its peer sees what it asked for (Cilium does the same; Kmesh does not). Other
 * sockets, and accepted ones, are left alone. A getpeername hook cannot refuse: it always returns 1. */
SEC("cgroup/getpeername4")
int cgroup_getpeername4_prog(struct bpf_sock_addr *ctx)
{
	struct sock_storage_data *storage = dialled_destination(ctx);

	if (storage) {
		ctx->user_ip4 = storage->sk_tuple.ipv4.daddr;
		ctx->user_port = storage->sk_tuple.ipv4.dport;
	}
	return 1;
}

/* An AF_INET6 socket: an IPv6 VIP, or an IPv4 VIP dialled as ::ffff:a.b.c.d (kept so by connect6). */
SEC("cgroup/getpeername6")
int cgroup_getpeername6_prog(struct bpf_sock_addr *ctx)
{
	struct sock_storage_data *storage = dialled_destination(ctx);

	if (storage) {
		ctx->user_ip6[0] = storage->sk_tuple.ipv6.daddr[0];
		ctx->user_ip6[1] = storage->sk_tuple.ipv6.daddr[1];
		ctx->user_ip6[2] = storage->sk_tuple.ipv6.daddr[2];
		ctx->user_ip6[3] = storage->sk_tuple.ipv6.daddr[3];
		ctx->user_port = storage->sk_tuple.ipv6.dport;
	}
	return 1;
}

char _license[] SEC("license") = "Dual BSD/GPL";
