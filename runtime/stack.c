/* SPDX-License-Identifier: MIT */
/* The initial process stack of the System V x86-64 ABI, laid out the way Linux's execve does. */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "runtime.h"

static unsigned count(char *const v[])
{
	unsigned n = 0;
	while (v && v[n])
		n++;
	return n;
}

static void put_word(unsigned char *host, uint64_t va, uint64_t at, uint64_t val)
{
	memcpy(host + (at - va), &val, sizeof val);
}

/* Copies s, NUL included, to *at and returns its user address, advancing *at past it. */
static uint64_t put_string(unsigned char *host, uint64_t va, uint64_t *at, const char *s)
{
	uint64_t where = *at;
	size_t n = strlen(s) + 1;
	memcpy(host + (where - va), s, n);
	*at += n;
	return where;
}

int stack_build(unsigned char *host, uint64_t va, uint64_t len, char *const argv[], char *const envp[],
                const char *execfn, const struct stack_aux *aux, unsigned naux,
                const unsigned char random[16], uint64_t *rsp)
{
	unsigned argc = count(argv), envc = count(envp);
	static const char platform[] = "x86_64";   /* AT_PLATFORM, as Linux puts it on the stack */
	uint64_t strings = strlen(execfn) + 1 + sizeof platform;
	for (unsigned i = 0; i < argc; i++)
		strings += strlen(argv[i]) + 1;
	for (unsigned i = 0; i < envc; i++)
		strings += strlen(envp[i]) + 1;
	/* argc, argv[] + NULL, envp[] + NULL, the caller's auxv + AT_RANDOM, AT_EXECFN, AT_PLATFORM, AT_NULL. */
	uint64_t words = 1 + (argc + 1ull) + (envc + 1ull) + 2ull * (naux + 4);
	/* Linux refuses arguments beyond a quarter of the stack limit: leave the program room. */
	uint64_t budget = len / 4;
	if (strings > budget || words > budget / 8 || strings + words * 8 + 64 > budget)
		return -E2BIG;

	uint64_t top = va + len - 8;   /* Linux keeps a zero word at the very top */
	put_word(host, va, top, 0);
	uint64_t strings_va = top - strings;
	uint64_t at = strings_va;
	for (unsigned i = 0; i < argc; i++)
		put_string(host, va, &at, argv[i]);
	for (unsigned i = 0; i < envc; i++)
		put_string(host, va, &at, envp[i]);
	uint64_t execfn_va = put_string(host, va, &at, execfn);
	uint64_t platform_va = put_string(host, va, &at, platform);

	uint64_t random_va = (strings_va - 16) & ~15ull;
	memcpy(host + (random_va - va), random, 16);

	/* The ABI wants rsp 16-byte aligned at the entry point with argc at (%rsp). */
	uint64_t sp = (random_va - words * 8) & ~15ull;
	*rsp = sp;
	at = sp;
	put_word(host, va, at, argc), at += 8;
	/* The strings lie in argv-then-envp order from strings_va: walk them again for the pointers
	 * rather than keep an array as long as the argument list. */
	uint64_t s = strings_va;
	for (unsigned i = 0; i < argc; i++, at += 8) {
		put_word(host, va, at, s);
		s += strlen(argv[i]) + 1;
	}
	put_word(host, va, at, 0), at += 8;
	for (unsigned i = 0; i < envc; i++, at += 8) {
		put_word(host, va, at, s);
		s += strlen(envp[i]) + 1;
	}
	put_word(host, va, at, 0), at += 8;
	for (unsigned i = 0; i < naux; i++) {
		put_word(host, va, at, aux[i].type), at += 8;
		put_word(host, va, at, aux[i].val), at += 8;
	}
	const uint64_t tail[] = { AT_RANDOM, random_va, AT_EXECFN, execfn_va, AT_PLATFORM, platform_va, AT_NULL, 0 };
	for (unsigned i = 0; i < sizeof tail / sizeof tail[0]; i++)
		put_word(host, va, at, tail[i]), at += 8;
	return 0;
}
