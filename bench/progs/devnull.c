/* SPDX-License-Identifier: MIT */
/* Bench program: opens /dev/null and makes N 16-byte writes to it (argv[1], default 10^5). Exits
 * 0, 1 if a write was short or failed, 3 if the open failed, 2 for a bad count. */
#include "sys.h"

int bench_main(long argc, char **argv)
{
	static const char line[16] = "ringfence bench\n";
	unsigned long n = bench_count(argc, argv, 1, BENCH_DEFAULT_COUNT);
	if (!n)
		return 2;
	long fd = sys4(SYS_openat, AT_FDCWD, (long)"/dev/null", O_WRONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return 3;
	for (unsigned long i = 0; i < n; i++)
		if (sys3(SYS_write, fd, (long)line, sizeof line) != (long)sizeof line)
			return 1;
	return 0;
}
