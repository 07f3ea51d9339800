/* SPDX-License-Identifier: MIT */
/* ringfence bench: placeholder until the benchmark lands. */
#include <stdio.h>

#include "cmd.h"

int cmd_bench(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "ringfence: bench is not built yet\n");
	return 125;
}
