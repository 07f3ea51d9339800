/* SPDX-License-Identifier: MIT */
/* Bench program: N raw getppid syscalls (argv[1], default 10^5). Exits 0, or 1 if one failed or
 * answered differently from the first, 2 for a bad count. */
#include "sys.h"

int bench_main(long argc, char **argv)
{
	unsigned long n = bench_count(argc, argv, 1, BENCH_DEFAULT_COUNT);
	if (!n)
		return 2;
	long first = sys1(SYS_getppid, 0);
	if (first < 0)
		return 1;
	for (unsigned long i = 1; i < n; i++)
		if (sys1(SYS_getppid, 0) != first)
			return 1;
	return 0;
}
