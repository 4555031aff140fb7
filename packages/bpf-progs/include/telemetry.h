/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Connection telemetry (src/sockops.c): one record per managed TCP connection when it is established and one when
 * it closes, through a ring buffer the daemon drains; a record the ring buffer has no room for is counted in
 * km_tel_lost (per CPU), never dropped silently. Natural alignment, not packed: 112 bytes. */
#ifndef KMESH_TELEMETRY_H
#define KMESH_TELEMETRY_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "kmesh_types.h"

#define TELEMETRY_EVENT_OPEN 1
#define TELEMETRY_EVENT_CLOSE 2

/* sock_storage_data.direction and conn_record.direction (Kmesh's values). */
#define TELEMETRY_DIR_INBOUND 1
#define TELEMETRY_DIR_OUTBOUND 2

/* The ring buffer's size in bytes (a power of two, a multiple of the page size): 4 MiB holds ~37,000 records,
 * about a second of 20,000 connections/s opening and closing, while the daemon drains every few milliseconds. */
#define TELEMETRY_RINGBUF_BYTES 4194304

struct conn_record {
	__u64 at_ns;          /* bpf_ktime_get_ns() at the event (CLOCK_MONOTONIC) */
	__u64 duration_ns;    /* close: since the connection was established; open: 0 */
	__u64 bytes_sent;     /* payload the peer acknowledged: tcp_sock.bytes_acked less our SYN and FIN */
	__u64 bytes_received; /* payload received: tcp_sock.bytes_received less the peer's FIN */
	__u32 srtt_us;        /* smoothed RTT in µs (tcp_sock.srtt_us >> 3) */
	__u32 min_rtt_us;     /* tcp_sock.rtt_min in µs */
	__u32 total_retrans;  /* tcp_sock.total_retrans: segments retransmitted over the connection's life */
	__u32 lost_out;       /* tcp_sock.lost_out: segments the stack counts as lost and not yet repaired */
	union ip_addr src;    /* the local address */
	union ip_addr dst;    /* the remote address actually connected */
	union ip_addr original_dst; /* the address the application dialled, when has_original */
	__u16 src_port;       /* host order */
	__u16 dst_port;       /* host order */
	__u16 original_port;  /* host order */
	__u8 family;          /* AF_INET or AF_INET6: the socket's family (v4-mapped addresses on AF_INET6) */
	__u8 event;           /* TELEMETRY_EVENT_* */
	__u8 direction;       /* TELEMETRY_DIR_* */
	__u8 has_original;    /* the connect was rewritten: original_dst/original_port hold the VIP */
	__u8 pad[6];
};

_Static_assert(sizeof(struct conn_record) == 112, "conn_record is 112 bytes");

/* records from the sockops program to the daemon */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TELEMETRY_RINGBUF_BYTES);
} km_telemetry SEC(".maps");

/* [0]: records the ring buffer had no room for, per CPU (the daemon sums them) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} km_tel_lost SEC(".maps");

#endif
