/* SPDX-License-Identifier: MIT */
/* The ringfence command: dispatches to run, bench and info. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

static int usage(FILE *f)
{
	fprintf(f, "usage: ringfence run PROGRAM [ARGS...]\n"
	           "       ringfence bench [--json] [--iterations N]\n"
	           "       ringfence serve (--socket PATH | --fd N | --fd R:W) [--no-seccomp]\n"
	           "       ringfence info\n");
	return f == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr);
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 2, argv + 2);
	if (!strcmp(argv[1], "bench"))
		return cmd_bench(argc - 2, argv + 2);
	if (!strcmp(argv[1], "serve"))
		return cmd_serve(argc - 2, argv + 2);
	if (!strcmp(argv[1], "info"))
		return cmd_info(argc - 2, argv + 2);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		return usage(stdout);
	fprintf(stderr, "ringfence: unknown command '%s'\n", argv[1]);
	return usage(stderr);
}
