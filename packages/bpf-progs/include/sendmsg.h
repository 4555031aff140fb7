/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The original destination of a connection redirected to a waypoint, told to the waypoint the way Kmesh tells it
 * (docs/reference/kmesh-dataplane.md §1.6): a TLV prepended to the first bytes the client sends. The sockops program
 * of src/sendmsg.c puts each such socket into km_socket when it is established; the sk_msg program attached to
 * km_socket writes the TLV on the socket's first send. */
#ifndef KMESH_SENDMSG_H
#define KMESH_SENDMSG_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* TLV type of the original destination: value = IP (4 or 16 bytes) then port, both network order. */
#define TLV_ORG_DST_ADDR 0x01
/* TLV type ending the prefix (length 0): the application's bytes follow. */
#define TLV_PAYLOAD 0xfe
/* type (1) + length (4, big-endian) */
#define TLV_HEADER_SIZE 5
/* 5 + 6 + 5 for IPv4, 5 + 18 + 5 for IPv6 (an AF_INET6 socket sends the IPv6 form, v4-mapped included) */
#define TLV_PREFIX_SIZE4 16
#define TLV_PREFIX_SIZE6 28

/* sockets to a waypoint (local -> remote tuple, network order) -> the socket; the kernel drops an entry when its
 * socket closes */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__type(key, struct bpf_sock_tuple);
	__type(value, __u32);
	__uint(max_entries, 8192);
} km_socket SEC(".maps");

#endif
