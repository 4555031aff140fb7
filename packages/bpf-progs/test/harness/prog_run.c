// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Test harness: runs a pinned program once with BPF_PROG_TEST_RUN and ctx_in given as hex, then prints the
 * program's return value and the ctx as the kernel left it (SEC("syscall") programs write back into ctx_in).
 * Usage: prog_run PINNED_PROG CTX_HEX   ->   "<retval> <ctx hex>" on stdout. */
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	unsigned char ctx[4096];
	size_t len, i;
	int fd, err;

	if (argc != 3 || strlen(argv[2]) % 2 != 0 || strlen(argv[2]) / 2 > sizeof(ctx)) {
		fprintf(stderr, "usage: prog_run PINNED_PROG CTX_HEX\n");
		return 2;
	}
	len = strlen(argv[2]) / 2;
	for (i = 0; i < len; i++)
		sscanf(argv[2] + 2 * i, "%2hhx", &ctx[i]);
	fd = bpf_obj_get(argv[1]);
	if (fd < 0) {
		fprintf(stderr, "bpf_obj_get %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = ctx, .ctx_size_in = len);
	err = bpf_prog_test_run_opts(fd, &opts);
	if (err) {
		fprintf(stderr, "bpf_prog_test_run_opts %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	printf("%u ", opts.retval);
	for (i = 0; i < len; i++)
		printf("%02x", ctx[i]);
	printf("\n");
	return 0;
}
