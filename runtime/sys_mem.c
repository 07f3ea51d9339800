/* SPDX-License-Identifier: MIT */
/* Memory syscalls over the region map: brk, mmap (anonymous, and file contents copied in), munmap,
 * mprotect, mremap, madvise. Past --memory the program gets ENOMEM; the host never does. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime.h"

static struct rt_mem *mem(struct rt_thread *t) { return &t->proc->mem; }
static uint64_t page_up(uint64_t a) { return (a + RT_PAGE - 1) & ~(RT_PAGE - 1); }

static unsigned prot_of(uint64_t p)
{
	return (p & PROT_READ ? RF_PROT_READ : 0) | (p & PROT_WRITE ? RF_PROT_WRITE : 0) |
	       (p & PROT_EXEC ? RF_PROT_EXEC : 0);
}

long sys_brk(struct rt_thread *t, const uint64_t a[6])
{
	struct rt_mem *m = mem(t);
	uint64_t want = a[0], cur = page_up(m->brk);
	/* Linux answers every refusal with the current break. */
	if (want < m->brk_start || want > RT_MMAP_TOP)
		return (long)m->brk;
	uint64_t top = page_up(want);
	if (top > cur) {
		/* One guard page must stay free above the heap, like between mappings. */
		if (!mem_is_free(m, cur, top - cur + RT_PAGE) ||
		    mem_add(m, cur, top - cur, RF_PROT_READ | RF_PROT_WRITE, REGION_BRK, 0, false) < 0)
			return (long)m->brk;
	} else if (top < cur && mem_remove(m, top, cur - top) < 0) {
		return (long)m->brk;
	}
	m->brk = want;
	return (long)want;
}

/* File contents of a mapping, read into its fresh pages through the host descriptor. */
static int fill_from_file(struct rt_thread *t, struct rt_file *f, uint64_t va, uint64_t len, uint64_t off)
{
	struct iovec iov[64];
	for (uint64_t done = 0; done < len;) {
		int n;
		/* Through the region's pages whatever the protection (the guest cannot run meanwhile). */
		const struct region *r = mem_find(mem(t), va + done);
		if (!r || !r->pages)
			return -EFAULT;
		uint64_t take = len - done;
		n = 0;
		for (uint64_t p = 0; p < take && n < 64; p += RT_PAGE) {
			uint64_t idx = (va + done + p - r->va) / RT_PAGE;
			if (va + done + p >= r->va + r->len)
				break;
			iov[n++] = (struct iovec){ mem(t)->host + (uint64_t)r->pages[idx] * RT_PAGE,
			                           take - p < RT_PAGE ? take - p : RT_PAGE };
		}
		ssize_t got = preadv(f->host, iov, n, (off_t)(off + done));
		if (got < 0)
			return -errno;
		if (got == 0)
			break;   /* past the end of the file: the rest stays zero (SIGBUS territory natively) */
		done += (uint64_t)got;
	}
	return 0;
}

long sys_mmap(struct rt_thread *t, const uint64_t a[6])
{
	uint64_t addr = a[0], len = a[1], flags = a[3], off = a[5];
	unsigned prot = prot_of(a[2]);
	if (a[2] & ~(uint64_t)(PROT_READ | PROT_WRITE | PROT_EXEC))
		return -EINVAL;
	int type = (int)(flags & MAP_TYPE);
	if (type != MAP_PRIVATE && type != MAP_SHARED && type != MAP_SHARED_VALIDATE)
		return -EINVAL;
	if (!len || off % RT_PAGE)
		return -EINVAL;
	len = page_up(len);
	if (!len || len > RT_USER_TOP)
		return -ENOMEM;
	struct rt_file *f = NULL;
	if (!(flags & MAP_ANONYMOUS)) {
		f = files_get(&t->proc->files, a[4]);
		if (!f)
			return -EBADF;
		if (f->kind == FILE_ZERO || f->kind == FILE_NULL)
			f = NULL;   /* /dev/zero maps as anonymous memory */
		else if (f->kind != FILE_HOST || f->dir)
			return -ENODEV;
		else if (type != MAP_PRIVATE && (prot & RF_PROT_WRITE))
			/* A shared writable file mapping would need write-back to the host file: refused
			 * rather than silently private. */
			return -EACCES;
	}
	uint64_t va;
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
		if (addr % RT_PAGE)
			return -EINVAL;
		if (len > RT_USER_TOP || addr > RT_USER_TOP - len)
			return -ENOMEM;
		if (addr < ELF_USER_MIN)
			return -EPERM;   /* vm.mmap_min_addr, as for a process without CAP_SYS_RAWIO */
		if (flags & MAP_FIXED_NOREPLACE && !mem_is_free(mem(t), addr, len))
			return -EEXIST;
		int e = mem_remove(mem(t), addr, len);
		if (e < 0)
			return e;
		va = addr;
	} else {
		/* A hint is taken when the range is free, as Linux does. */
		addr &= ~(RT_PAGE - 1);
		if (addr >= ELF_USER_MIN && addr <= RT_MMAP_TOP - len && mem_is_free(mem(t), addr, len))
			va = addr;
		else if (!(va = mem_find_gap(mem(t), len, RT_MMAP_TOP)))
			return -ENOMEM;
	}
	unsigned mf = type != MAP_PRIVATE ? MEM_SHARED | (f ? MEM_NOWRITE : 0) : 0;
	int e = mem_add(mem(t), va, len, prot, REGION_MMAP, mf, f != NULL);
	if (e < 0)
		return e;
	if (f && (e = fill_from_file(t, f, va, len, off)) < 0) {
		mem_remove(mem(t), va, len);
		return e;
	}
	return (long)va;
}

long sys_munmap(struct rt_thread *t, const uint64_t a[6])
{
	uint64_t va = a[0], len = page_up(a[1]);
	if (va % RT_PAGE || !a[1] || !len || va > RT_USER_TOP || len > RT_USER_TOP - va)
		return -EINVAL;
	return mem_remove(mem(t), va, len);
}

long sys_mprotect(struct rt_thread *t, const uint64_t a[6])
{
	uint64_t va = a[0], len = page_up(a[1]);
	if (va % RT_PAGE || (a[2] & ~(uint64_t)(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_GROWSDOWN | PROT_GROWSUP)))
		return -EINVAL;
	if (!a[1])
		return 0;
	if (!len || va > RT_USER_TOP || len > RT_USER_TOP - va)
		return -ENOMEM;
	return mem_protect(mem(t), va, len, prot_of(a[2]));
}

long sys_mremap(struct rt_thread *t, const uint64_t a[6])
{
	uint64_t old = a[0], old_len = page_up(a[1]), new_len = page_up(a[2]);
	unsigned flags = (unsigned)a[3];
	if (old % RT_PAGE || flags & ~(unsigned)(MREMAP_MAYMOVE | MREMAP_FIXED) ||
	    ((flags & MREMAP_FIXED) && !(flags & MREMAP_MAYMOVE)))
		return -EINVAL;
	if (!new_len || !old_len || new_len > RT_USER_TOP || old > RT_USER_TOP - old_len)
		return -EINVAL;
	return (long)mem_remap(mem(t), old, old_len, new_len, flags, a[4]);
}

long sys_madvise(struct rt_thread *t, const uint64_t a[6])
{
	uint64_t va = a[0], len = page_up(a[1]);
	if (va % RT_PAGE || va > RT_USER_TOP || len > RT_USER_TOP - va)
		return -EINVAL;
	switch ((int)a[2]) {
	case MADV_DONTNEED:
	case MADV_FREE:
		/* Private memory reads zero afterwards (MADV_FREE may do the same). */
		return mem_zero(mem(t), va, len);
	case MADV_NORMAL: case MADV_RANDOM: case MADV_SEQUENTIAL: case MADV_WILLNEED:
	case MADV_HUGEPAGE: case MADV_NOHUGEPAGE: case MADV_DONTDUMP: case MADV_DODUMP:
		return 0;   /* hints */
	default:
		return -EINVAL;
	}
}

long sys_msync(struct rt_thread *t, const uint64_t a[6])
{
	(void)t;
	return a[0] % RT_PAGE ? -EINVAL : 0;   /* nothing is written back: shared file maps are read-only */
}

long sys_mincore(struct rt_thread *t, const uint64_t a[6])
{
	(void)t;
	(void)a;
	return -ENOSYS;
}
