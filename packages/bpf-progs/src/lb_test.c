// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Test-only: runs the connect path's lb_resolve() on an input the test chooses, against the maps the test
 * fills. Run it with BPF_PROG_TEST_RUN (bpf_prog_test_run_opts) and ctx_in = struct lb_test_ctx (56 bytes,
 * lb_types.h). For SEC("syscall") programs the kernel copies the ctx back into the ctx_in buffer (ctx_out,
 * data_*, repeat and flags must be left empty), so the caller reads `out` and `ret` from that same buffer. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "lb.h"

SEC("syscall")
int lb_test_prog(struct lb_test_ctx *ctx)
{
	struct lb_input in;
	struct lb_result out;

	__builtin_memcpy(&in, &ctx->in, sizeof(in));
	ctx->ret = lb_resolve(&in, &out);
	__builtin_memcpy(&ctx->out, &out, sizeof(out));
	return 0;
}

char _license[] SEC("license") = "Dual BSD/GPL";
