/* SPDX-License-Identifier: MIT */
/* Acceptance program: a 100 MB malloc grown and shrunk with realloc, and anonymous mmap, mprotect and
 * munmap (a PROT_NONE reservation opened up, MAP_FIXED inside it, a hole punched in the middle).
 * Prints checksums and facts, never addresses. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MB (1024ul * 1024)

/* The buffers are big and a nested VM under TCG is slow: one 8-byte word in every 64 bytes is
 * written and checked, which still touches every page and every cache line. */
#define STRIDE 64

static uint64_t word_at(size_t i, unsigned seed)
{
	return (i * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)seed << 56);
}

static uint64_t sum(const unsigned char *p, size_t n)
{
	uint64_t h = 0;
	for (size_t i = 0; i + 8 <= n; i += STRIDE) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
	}
	return h;
}

static void fill(unsigned char *p, size_t from, size_t to, unsigned seed)
{
	for (size_t i = from; i + 8 <= to; i += STRIDE) {
		uint64_t w = word_at(i, seed);
		memcpy(p + i, &w, 8);
	}
}

static bool same_as_fill(const unsigned char *p, size_t from, size_t to, unsigned seed)
{
	for (size_t i = from; i + 8 <= to; i += STRIDE) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		if (w != word_at(i, seed))
			return false;
	}
	return true;
}

static sigjmp_buf probe_env;

static void probe_fault(int sig)
{
	siglongjmp(probe_env, sig);
}

/* "readable", or which signal reading *p raised. */
static const char *probe(volatile unsigned char *p)
{
	struct sigaction sa = { .sa_handler = probe_fault }, old_segv, old_bus;
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
	const char *what = "readable";
	int sig = sigsetjmp(probe_env, 1);
	if (sig == 0)
		(void)*p;
	else
		what = sig == SIGSEGV ? "faults (SIGSEGV)" : "faults (other signal)";
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGBUS, &old_bus, NULL);
	return what;
}

static int test_malloc(void)
{
	size_t n = 100 * MB;
	unsigned char *p = malloc(n);
	if (!p) {
		printf("malloc(100 MB) failed\n");
		return 1;
	}
	fill(p, 0, n, 1);
	printf("malloc 100 MB: sum %016llx\n", (unsigned long long)sum(p, n));
	unsigned char *q = realloc(p, 160 * MB);
	if (!q) {
		printf("realloc to 160 MB failed\n");
		return 1;
	}
	printf("realloc to 160 MB keeps the first 100 MB: %s\n", same_as_fill(q, 0, n, 1) ? "yes" : "no");
	fill(q, n, 160 * MB, 2);
	printf("160 MB: sum %016llx\n", (unsigned long long)sum(q, 160 * MB));
	p = realloc(q, 3 * MB);
	printf("realloc down to 3 MB keeps its contents: %s\n", p && same_as_fill(p, 0, 3 * MB, 1) ? "yes" : "no");
	free(p);

	/* Many small blocks: brk or mmap, whichever the allocator likes. */
	unsigned char *blocks[1000];
	uint64_t total = 0;
	for (int i = 0; i < 1000; i++) {
		blocks[i] = malloc((size_t)(i * 37 % 4000 + 1));
		memset(blocks[i], i & 0xff, (size_t)(i * 37 % 4000 + 1));
	}
	for (int i = 999; i >= 0; i--) {
		total += blocks[i][i * 37 % 4000];
		free(blocks[i]);
	}
	printf("1000 small blocks: total %llu\n", (unsigned long long)total);
	unsigned char *z = calloc(50, MB);
	size_t nonzero = 0;
	for (size_t i = 0; z && i < 50 * MB; i += 4096)
		nonzero += z[i] != 0;
	printf("calloc 50 MB is zero: %s\n", z && !nonzero ? "yes" : "no");
	free(z);
	return 0;
}

static int test_mmap(void)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t n = 64 * (size_t)page;
	unsigned char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		printf("mmap 64 pages failed\n");
		return 1;
	}
	size_t zero = 1;
	for (size_t i = 0; i < n; i++)
		zero &= p[i] == 0;
	printf("anonymous mmap is zero: %s, page aligned: %s\n", zero ? "yes" : "no",
	       (uintptr_t)p % (uintptr_t)page ? "no" : "yes");
	fill(p, 0, n, 3);
	printf("64 pages: sum %016llx\n", (unsigned long long)sum(p, n));
	printf("munmap: %d\n", munmap(p, n));

	/* Reserve 1024 pages with no access, then open up the middle 512. */
	size_t rn = 1024 * (size_t)page;
	unsigned char *r = mmap(NULL, rn, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED) {
		printf("PROT_NONE reservation failed\n");
		return 1;
	}
	printf("reserved page: %s\n", probe(r + 300 * page));
	unsigned char *mid = r + 256 * page;
	size_t mn = 512 * (size_t)page;
	printf("mprotect RW: %d\n", mprotect(mid, mn, PROT_READ | PROT_WRITE));
	fill(mid, 0, mn, 4);
	printf("512 pages: sum %016llx\n", (unsigned long long)sum(mid, mn));
	printf("page below the opened part: %s\n", probe(mid - 1));
	printf("page above the opened part: %s\n", probe(mid + mn));

	/* MAP_FIXED over 16 pages of it: fresh zero pages, the rest untouched. */
	unsigned char *fixed = mid + 100 * page;
	void *f = mmap(fixed, 16 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	printf("MAP_FIXED inside: at the address asked: %s\n", f == fixed ? "yes" : "no");
	size_t zeros = 0;
	for (size_t i = 0; i < 16 * (size_t)page; i++)
		zeros += fixed[i] == 0;
	printf("MAP_FIXED pages are zero: %s\n", zeros == 16 * (size_t)page ? "yes" : "no");
	printf("pages around it keep their contents: %s\n",
	       same_as_fill(mid, 0, 100 * page, 4) && same_as_fill(mid, 116 * page, mn, 4) ? "yes" : "no");

	/* Read-only, then a hole in the middle. */
	printf("mprotect read-only: %d\n", mprotect(mid, mn, PROT_READ));
	printf("read-only page still reads its contents: %s\n", same_as_fill(mid, 0, (size_t)page, 4) ? "yes" : "no");
	printf("munmap of the middle 64 pages: %d\n", munmap(mid + 200 * page, 64 * (size_t)page));
	printf("hole: %s\n", probe(mid + 230 * page));
	printf("below the hole: %s\n", probe(mid + 199 * page));
	printf("above the hole: %s\n", probe(mid + 264 * page));
	printf("munmap of all of it: %d\n", munmap(r, rn));
	printf("after munmap: %s\n", probe(mid));

	/* mremap, which realloc of large blocks uses with glibc. */
	unsigned char *g = mmap(NULL, 8 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fill(g, 0, 8 * (size_t)page, 5);
	unsigned char *h = mremap(g, 8 * (size_t)page, 4096 * (size_t)page, MREMAP_MAYMOVE);
	printf("mremap grows and keeps contents: %s\n",
	       h != MAP_FAILED && same_as_fill(h, 0, 8 * (size_t)page, 5) && h[4095 * page] == 0 ? "yes" : "no");
	if (h != MAP_FAILED)
		munmap(h, 4096 * (size_t)page);
	return 0;
}

int main(void)
{
	int r = test_malloc();
	fflush(stdout);
	r |= test_mmap();
	return r;
}
