/* SPDX-License-Identifier: MIT */
/* The bad-pointer guest program (see badptr.h): `badptr ptr TMP` runs every case and prints `done`
 * last, `badptr mem CAP` checks the --memory cap. The same binary runs natively and sandboxed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "badptr.h"

struct bad badptr_bad[16];
unsigned badptr_nbad;
unsigned char *badptr_good;

void badptr_case(char cls, const char *name, long ret, int err)
{
	if (ret < 0)
		printf("case %s %c %s\n", name, cls == 's' ? '=' : cls, guest_errname(err));
	else if (cls == 's')
		printf("case %s = ok\n", name);
	else
		printf("case %s %c =%ld\n", name, cls, ret);
}

void badptr_value(char cls, const char *name, long value)
{
	printf("case %s %c =%ld\n", name, cls, value);
}

static void add(const char *name, void *p, unsigned flags)
{
	badptr_bad[badptr_nbad++] = (struct bad){ name, p, flags };
}

/* Pages: [rw][PROT_NONE][hole][read-only, filled with 'R'], and 64 KiB of good memory before a
 * PROT_NONE guard page. */
static void layout(void)
{
	unsigned char *m = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *g = mmap(NULL, GOOD_SIZE + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || g == MAP_FAILED || mprotect(m + 4096, 4096, PROT_NONE) ||
	    munmap(m + 2 * 4096, 4096) || mprotect(g + GOOD_SIZE, 4096, PROT_NONE)) {
		printf("Bail out! layout: %s\n", guest_errname(errno));
		exit(1);
	}
	memset(m + 3 * 4096, 'R', 4096);
	mprotect(m + 3 * 4096, 4096, PROT_READ);
	memset(m + 4096 - 16, 'a', 16);        /* an unterminated string running into PROT_NONE */
	badptr_good = g;
	add("null", NULL, 0);
	add("one", (void *)1, 0);
	add("hole", m + 2 * 4096, 0);
	add("prot_none", m + 4096, 0);
	add("cross", m + 4096 - 16, BAD_CROSS);
	add("kernel", (void *)0xffff800000000000ul, 0);
	add("shim", (void *)0xffffffffc0000000ul, 0);
	add("shim_alias", (void *)0xffffff0000000000ul, 0);
	add("top_page", (void *)0xfffffffffffff000ul, 0);
	add("noncanonical", (void *)0x800000000000ul, 0);
	add("noncanonical_mid", (void *)0x8000000000000000ul, 0);
	add("last_user_page", (void *)0x7ffffffff000ul, 0);
	add("read_only", m + 3 * 4096, BAD_OUT_ONLY);
	add("code", (void *)(uintptr_t)layout, BAD_OUT_ONLY);
}

static unsigned char code_before[64];

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "mem"))
		return badptr_cap(strtoull(argv[2], NULL, 0));
	if (argc != 3 || strcmp(argv[1], "ptr")) {
		printf("Bail out! usage: badptr ptr TMP | mem CAP\n");
		return 2;
	}
	if (chdir(argv[2])) {
		printf("Bail out! chdir %s: %s\n", argv[2], guest_errname(errno));
		return 1;
	}
	layout();
	memcpy(code_before, (void *)(uintptr_t)layout, sizeof code_before);
	badptr_io(argv[2]);
	badptr_files(argv[2]);
	badptr_misc();
	badptr_memory();
	unsigned char *ro = badptr_bad[12].p;
	int intact = 1;
	for (int i = 0; i < 4096; i++)
		intact &= ro[i] == 'R';
	badptr_value('=', "read_only_page_unchanged", intact);
	badptr_value('=', "code_unchanged", !memcmp(code_before, (void *)(uintptr_t)layout, sizeof code_before));
	printf("done\n");
	return 0;
}
