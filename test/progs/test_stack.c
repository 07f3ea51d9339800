/* SPDX-License-Identifier: MIT */
/* The initial process stack of `ringfence run`, without KVM: built into host memory and read back
 * the way a program's _start and libc read it, for many argument shapes, and its size limit. */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "tap.h"

#define LEN (8ull << 20)
#define VA  (RT_STACK_TOP - LEN)

static unsigned char *host;

static uint64_t word(uint64_t va)
{
	uint64_t w;
	memcpy(&w, host + (va - VA), 8);
	return w;
}

/* The user string at va, or NULL if it is not inside the stack (then the layout is wrong anyway). */
static const char *str(uint64_t va)
{
	if (va < VA || va >= VA + LEN || !memchr(host + (va - VA), 0, VA + LEN - va))
		return NULL;
	return (const char *)host + (va - VA);
}

/* Builds a stack for argv/envp and checks everything a reader would look at; returns failures. */
static int check(char *const argv[], char *const envp[], const char *name)
{
	static const struct stack_aux aux[] = { { AT_PAGESZ, 4096 }, { AT_ENTRY, 0x401000 } };
	static const unsigned char rnd[16] = "0123456789abcdef";
	memset(host, 0xa5, LEN);   /* nothing the builder leaves unwritten may pass for a value */
	uint64_t rsp = 0;
	int r = stack_build(host, VA, LEN, argv, envp, "/the/program", aux, 2, rnd, &rsp);
	int bad = 0;
#define EXPECT(c, ...) do { if (!(c)) { printf("#   %s: ", name); printf(__VA_ARGS__); printf("\n"); bad++; } } while (0)
	EXPECT(r == 0, "stack_build returned %d", r);
	if (r)
		return bad;
	EXPECT(rsp % 16 == 0, "rsp 0x%llx not 16-byte aligned", (unsigned long long)rsp);
	EXPECT(rsp > VA + LEN - LEN / 4 && rsp < VA + LEN, "rsp 0x%llx outside the top quarter", (unsigned long long)rsp);
	EXPECT(word(VA + LEN - 8) == 0, "the top word is not zero");
	uint64_t at = rsp, argc = word(at);
	unsigned n = 0;
	while (argv[n])
		n++;
	EXPECT(argc == n, "argc %llu, want %u", (unsigned long long)argc, n);
	at += 8;
	uint64_t lowest_string = VA + LEN;
	for (unsigned i = 0; i < n; i++, at += 8) {
		const char *s = str(word(at));
		EXPECT(s && !strcmp(s, argv[i]), "argv[%u] is not \"%s\"", i, argv[i]);
		if (word(at) < lowest_string)
			lowest_string = word(at);
	}
	EXPECT(word(at) == 0, "argv[argc] is not NULL");
	at += 8;
	for (unsigned i = 0; envp[i]; i++, at += 8) {
		const char *s = str(word(at));
		EXPECT(s && !strcmp(s, envp[i]), "envp[%u] is not \"%s\"", i, envp[i]);
	}
	EXPECT(word(at) == 0, "envp is not NULL-terminated");
	at += 8;
	const uint64_t want_types[] = { AT_PAGESZ, AT_ENTRY, AT_RANDOM, AT_EXECFN, AT_PLATFORM, AT_NULL };
	for (unsigned i = 0; i < sizeof want_types / sizeof want_types[0]; i++, at += 16) {
		uint64_t type = word(at), val = word(at + 8);
		EXPECT(type == want_types[i], "auxv[%u] type %llu, want %llu", i, (unsigned long long)type,
		       (unsigned long long)want_types[i]);
		if (type == AT_PAGESZ)
			EXPECT(val == 4096, "AT_PAGESZ %llu", (unsigned long long)val);
		if (type == AT_RANDOM)
			EXPECT(val >= at + 16 && val + 16 <= VA + LEN && !memcmp(host + (val - VA), rnd, 16),
			       "AT_RANDOM does not point at the 16 bytes above the vectors");
		if (type == AT_EXECFN) {
			const char *s = str(val);
			EXPECT(s && !strcmp(s, "/the/program"), "AT_EXECFN is not the program");
		}
		if (type == AT_PLATFORM) {
			const char *s = str(val);
			EXPECT(s && !strcmp(s, "x86_64"), "AT_PLATFORM is not x86_64");
		}
		if (type == AT_NULL)
			EXPECT(val == 0, "AT_NULL value not 0");
	}
	EXPECT(at <= lowest_string, "the vectors run into the strings");
	return bad;
#undef EXPECT
}

int main(void)
{
	host = malloc(LEN);
	char *none[] = { NULL };
	char *one[] = { "prog", NULL };
	char *odd[] = { "prog", "a", "", "a much longer argument with spaces", NULL };
	char *env[] = { "A=1", "LONGER=two words", NULL };
	ok(!check(one, none, "one argument"), "argv[0] only");
	ok(!check(odd, none, "four arguments"), "four arguments, one empty");
	ok(!check(odd, env, "with environment"), "arguments and an environment");
	ok(!check(none, none, "argc 0"), "no arguments at all (argc 0, as execve allows)");

	/* Alignment must not depend on how many words or string bytes there are. */
	char *many[40];
	char lens[40][40];
	int bad = 0;
	for (int n = 0; n < 39; n++) {
		for (int i = 0; i < n; i++) {
			memset(lens[i], 'x', (size_t)(i * 7 + n) % 39);
			lens[i][(i * 7 + n) % 39] = 0;
			many[i] = lens[i];
		}
		many[n] = NULL;
		bad += check(many, none, "varied arguments");
	}
	ok(!bad, "0..38 arguments of varied lengths: all aligned and readable");

	/* Linux refuses argument lists beyond a quarter of the stack; so does ringfence run. */
	uint64_t rsp;
	size_t big = LEN / 4 + 1;
	char *huge = malloc(big + 1);
	memset(huge, 'y', big);
	huge[big] = 0;
	char *toolong[] = { "prog", huge, NULL };
	ok(stack_build(host, VA, LEN, toolong, none, "p", NULL, 0, (unsigned char[16]){ 0 }, &rsp) == -E2BIG,
	   "a 2 MiB argument is -E2BIG");
	huge[LEN / 8] = 0;
	ok(stack_build(host, VA, LEN, toolong, none, "p", NULL, 0, (unsigned char[16]){ 0 }, &rsp) == 0,
	   "a 1 MiB argument fits");
	size_t nargs = LEN / 4 / 8 + 1;
	char **lots = malloc((nargs + 1) * sizeof *lots);
	for (size_t i = 0; i < nargs; i++)
		lots[i] = "";
	lots[nargs] = NULL;
	ok(stack_build(host, VA, LEN, lots, none, "p", NULL, 0, (unsigned char[16]){ 0 }, &rsp) == -E2BIG,
	   "262145 empty arguments are -E2BIG (the pointers alone are too many)");
	free(lots);
	free(huge);
	free(host);
	return tap_done();
}
