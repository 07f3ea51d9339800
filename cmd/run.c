/* SPDX-License-Identifier: MIT */
/* ringfence run: placeholder until the ELF runner lands. */
#include <stdio.h>

#include "cmd.h"

int cmd_run(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "ringfence: run is not built yet\n");
	return 125;
}
