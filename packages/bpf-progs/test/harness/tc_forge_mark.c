// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Test-only tc program: sets skb->mark to forge_mark[0] and lets the next filter run (TC_ACT_UNSPEC under
 * direct-action). Chained before tc_mark_decrypt it stands in for a packet arriving with a foreign mark, which
 * cannot cross into a namespace (veth scrubs marks) and this kernel has no act_skbedit. Compiled by the test. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} forge_mark SEC(".maps");

SEC("tc")
int tc_forge_mark(struct __sk_buff *skb)
{
	__u32 zero = 0;
	__u32 *mark = bpf_map_lookup_elem(&forge_mark, &zero);

	if (mark)
		skb->mark = *mark;
	return TC_ACT_UNSPEC;
}

char _license[] SEC("license") = "Dual BSD/GPL";
