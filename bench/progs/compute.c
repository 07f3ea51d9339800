/* SPDX-License-Identifier: MIT */
/* Bench program: CPU-bound and syscall-free until the end. N passes (argv[1], default 1600: about
 * half a second) of a multiply-xorshift chain over a 256 KiB table, so it exercises the caches and
 * the TLB as well as the ALUs; prints the checksum in hex on stdout so no pass can be optimised away. */
#include "sys.h"

#define WORDS (32768)               /* 256 KiB: past L1, inside L2 */
#define DEFAULT_PASSES 1600ul

static unsigned long table[WORDS];

static unsigned long mix(unsigned long x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ul;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dul;
	return x ^ (x >> 33);
}

int bench_main(long argc, char **argv)
{
	unsigned long passes = bench_count(argc, argv, 1, DEFAULT_PASSES);
	if (!passes)
		return 2;
	unsigned long x = 0x9e3779b97f4a7c15ul;
	for (unsigned long p = 0; p < passes; p++)
		for (unsigned long i = 0; i < WORDS; i++) {
			/* The index depends on the chain: the loads cannot be hoisted or vectorised. */
			unsigned long j = (i ^ x) & (WORDS - 1);
			x = mix(x + table[j]);
			table[j] = x;
		}
	char out[19] = "0x";
	for (int k = 0; k < 16; k++)
		out[2 + k] = "0123456789abcdef"[(x >> (60 - 4 * k)) & 15];
	out[18] = '\n';
	return sys3(SYS_write, 1, (long)out, sizeof out) == (long)sizeof out ? 0 : 1;
}
