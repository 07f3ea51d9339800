/* SPDX-License-Identifier: MIT */
/* mmap, munmap, mprotect and brk with hostile addresses and lengths: nothing may land on or unmap
 * the shim's half, and the program must keep running. Also `badptr mem CAP`: the --memory cap. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "badptr.h"

#define USER_END 0x800000000000ul
#define RW       (PROT_READ | PROT_WRITE)
#define ANON     (MAP_PRIVATE | MAP_ANONYMOUS)

/* A mapping's address is not comparable between runs: 0 when it is in the user half (and then
 * unmapped again), 1 when not, an error as is. */
static long placed(long r, unsigned long len)
{
	if (r < 0 && r > -4096)
		return r;
	if ((unsigned long)r < USER_END) {
		munmap((void *)r, len);
		return 0;
	}
	return 1;
}

static long map(void *addr, unsigned long len, int prot, int flags, long off)
{
	return placed(syscall(SYS_mmap, addr, len, prot, flags, -1, off), len);
}

static void maps(void)
{
	unsigned char *g = badptr_good;
	CASE('=', "mprotect.prot_none_page_and_back", syscall(SYS_mprotect, badptr_bad[3].p, 4096, PROT_READ) |
	                                                syscall(SYS_mprotect, badptr_bad[3].p, 4096, PROT_NONE));
	CASE('=', "mmap.len_0", map(NULL, 0, RW, ANON, 0));
	CASE('=', "mmap.len_size_max", map(NULL, ~0ul, RW, ANON, 0));
	CASE('=', "mmap.len_minus_4096", map(NULL, ~0ul - 4095, RW, ANON, 0));
	CASE('=', "mmap.len_2^62", map(NULL, 1ul << 62, RW, ANON, 0));
	CASE('=', "mmap.len_2^47", map(NULL, 1ul << 47, RW, ANON, 0));
	FOR_BAD_WHERE(0, '=', "mmap.fixed.%s", !((unsigned long)p & 4095) && (unsigned long)p >= 0x10000,
	              map(p, 4096, RW, ANON | MAP_FIXED, 0));
	/* NOREPLACE: a sandbox may keep its stack right below the user end, and a test must not clobber it */
	CASE('=', "mmap.fixed_across_the_user_end", map((void *)0x7fffffffe000ul, 0x2000, RW, ANON | MAP_FIXED_NOREPLACE, 0));
	CASE('=', "mmap.fixed_wraps", map((void *)0xfffffffffffff000ul, 0x2000, RW, ANON | MAP_FIXED, 0));
	CASE('=', "mmap.fixed_unaligned", map(g + 1, 4096, RW, ANON | MAP_FIXED, 0));
	CASE('=', "mmap.fixed_noreplace_taken", map(g, 4096, RW, ANON | MAP_FIXED_NOREPLACE, 0));
	CASE('=', "mmap.hint_shim", map((void *)0xffffffffc0000000ul, 4096, RW, ANON, 0));
	CASE('=', "mmap.hint_kernel", map((void *)0xffff800000000000ul, 4096, RW, ANON, 0));
	CASE('=', "mmap.hint_last_user_page", map((void *)0x7ffffffff000ul, 4096, RW, ANON, 0));
	CASE('=', "mmap.no_private_or_shared", map(NULL, 4096, RW, MAP_ANONYMOUS, 0));
	CASE('=', "mmap.offset_unaligned", map(NULL, 4096, RW, ANON, 1));
	CASE('=', "mmap.bad_fd", placed(syscall(SYS_mmap, NULL, 4096, PROT_READ, MAP_PRIVATE, 12345, 0), 4096));
}

static void unmaps(void)
{
	unsigned char *g = badptr_good;
	CASE('=', "munmap.unaligned", syscall(SYS_munmap, g + 1, 4096));
	CASE('=', "munmap.len_0", syscall(SYS_munmap, g, 0));
	CASE('=', "munmap.len_size_max", syscall(SYS_munmap, g, ~0ul));
	CASE('=', "munmap.len_2^62", syscall(SYS_munmap, g, 1ul << 62));
	FOR_BAD_WHERE(0, '=', "munmap.%s",
	              (unsigned long)p >= 0x10000 && !((unsigned long)p & 4095) && p != badptr_bad[3].p,
	              syscall(SYS_munmap, p, 4096));
	CASE('=', "mprotect.unaligned", syscall(SYS_mprotect, g + 1, 4096, PROT_READ));
	CASE('=', "mprotect.hole", syscall(SYS_mprotect, badptr_bad[2].p, 4096, PROT_READ));
	CASE('=', "mprotect.len_size_max", syscall(SYS_mprotect, g, ~0ul, RW));
	CASE('=', "mprotect.len_2^62", syscall(SYS_mprotect, g, 1ul << 62, RW));
	CASE('=', "mprotect.shim", syscall(SYS_mprotect, 0xffffffffc0000000ul, 4096, RW | PROT_EXEC));
	CASE('=', "mprotect.kernel", syscall(SYS_mprotect, 0xffff800000000000ul, 4096, RW));
	CASE('=', "mprotect.last_user_page", syscall(SYS_mprotect, 0x7ffffffff000ul, 4096, RW));
	CASE('=', "mprotect.bad_prot", syscall(SYS_mprotect, g, 4096, 0x1000));
	CASE('=', "mprotect.len_0", syscall(SYS_mprotect, g, 0, PROT_READ));
}

static void breaks(void)
{
	unsigned long cur = (unsigned long)syscall(SYS_brk, 0);
	static const struct { const char *name; unsigned long to; } absurd[] = {
		{ "brk.1", 1 }, { "brk.kernel", 0xffff800000000000ul }, { "brk.shim", 0xffffffffc0000000ul },
		{ "brk.noncanonical", 0x800000000000ul }, { "brk.-1", ~0ul }, { "brk.last_user_page", 0x7ffffffff000ul },
		{ "brk.past_the_user_end", 0x800000001000ul },
	};
	for (unsigned i = 0; i < sizeof absurd / sizeof absurd[0]; i++)
		badptr_value('=', absurd[i].name, (unsigned long)syscall(SYS_brk, absurd[i].to) != cur);
	badptr_value('=', "brk.grow_a_page", (unsigned long)syscall(SYS_brk, cur + 4096) == cur + 4096);
	badptr_value('=', "brk.back", (unsigned long)syscall(SYS_brk, cur) == cur);
}

void badptr_memory(void)
{
	maps();
	unmaps();
	breaks();
}

/* Sandbox only, TAP: past CAP bytes, mmap and brk fail with ENOMEM and the program lives on. */
int badptr_cap(uint64_t cap)
{
	const unsigned long mib = 1ul << 20;
	errno = 0;
	long r = map(NULL, 2 * cap, RW, ANON, 0);
	guest_fails(r, errno, ENOMEM, "mmap of twice the cap");
	errno = 0;
	r = map(NULL, 1ul << 46, RW, ANON | MAP_NORESERVE, 0);
	guest_fails(r, errno, ENOMEM, "mmap(MAP_NORESERVE) of 64 TiB");
	unsigned long n = 0, max = 4 * cap / mib;
	void **chunks = calloc(max, sizeof *chunks);
	int err = 0;
	for (; n < max; n++) {
		void *c = mmap(NULL, mib, RW, ANON, -1, 0);
		if (c == MAP_FAILED) {
			err = errno;
			break;
		}
		for (unsigned long off = 0; off < mib; off += 4096)
			((volatile char *)c)[off] = 1;
		chunks[n] = c;
	}
	guest_ok(err == ENOMEM, "touched 1 MiB mmaps end in ENOMEM (got %s after %lu MiB)",
	         err ? guest_errname(err) : "none", n);
	guest_ok(n * mib <= cap && n * mib >= cap / 4, "they end between a quarter of the cap and the cap (%lu MiB of %lu)",
	         n, (unsigned long)(cap / mib));
	for (unsigned long i = 0; i < n; i++)
		munmap(chunks[i], mib);
	free(chunks);
	void *again = mmap(NULL, cap / 4, RW, ANON, -1, 0);
	guest_ok(again != MAP_FAILED, "after munmap, memory is there again");
	if (again != MAP_FAILED) {
		memset(again, 1, cap / 4);
		munmap(again, cap / 4);
	}
	unsigned long start = (unsigned long)syscall(SYS_brk, 0), top = start;
	guest_ok((unsigned long)syscall(SYS_brk, start + 2 * cap) == start, "brk past the cap leaves the break");
	while (top - start < 4 * cap) {
		if ((unsigned long)syscall(SYS_brk, top + mib) != top + mib)
			break;
		for (unsigned long off = 0; off < mib; off += 4096)
			((volatile char *)top)[off] = 1;
		top += mib;
	}
	guest_ok(top - start <= cap, "brk growth stops within the cap (%lu MiB)", (top - start) / mib);
	syscall(SYS_brk, start);
	printf("# cap: %d checks, %d failed\n", guest_count, guest_failed);
	return guest_failed ? 1 : 0;
}
