/* SPDX-License-Identifier: MIT */
/* Guest memory: one platform memory, a page allocator over it, and the checked accessors through
 * which every syscall reads and writes the guest (the region map itself is regions.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

static uint64_t round_huge(uint64_t b) { return (b + RF_HUGE_SIZE - 1) & ~(RF_HUGE_SIZE - 1); }

int mem_init(struct rt_mem *m, rf_platform *p, uint64_t bytes)
{
	memset(m, 0, sizeof *m);
	bytes = round_huge(bytes);
	if (rf_memory_create(p, bytes, &m->mem) < 0)
		return rt_fail(RT_EXIT_PLATFORM, "guest memory of %llu MiB: %s", (unsigned long long)(bytes >> 20),
		               rf_last_error());
	if (rf_as_create(p, &m->as) < 0) {
		int st = rt_fail(RT_EXIT_PLATFORM, "%s", rf_last_error());
		mem_destroy(m);
		return st;
	}
	m->host = rf_memory_host(m->mem);
	m->npages = bytes / RT_PAGE;
	m->bitmap = calloc((m->npages + 63) / 64, sizeof *m->bitmap);
	if (!m->bitmap) {
		mem_destroy(m);
		return rt_fail(RT_EXIT_PLATFORM, "out of host memory for the page map");
	}
	return 0;
}

void mem_destroy(struct rt_mem *m)
{
	/* The address space first: a memory it still maps cannot be destroyed. */
	if (m->as && rf_as_destroy(m->as) < 0)
		rt_fail(0, "%s", rf_last_error());
	if (m->mem && rf_memory_destroy(m->mem) < 0)
		rt_fail(0, "%s", rf_last_error());
	for (unsigned i = 0; i < m->n; i++)
		free(m->r[i].pages);
	free(m->r);
	free(m->bitmap);
	memset(m, 0, sizeof *m);
}

/* ---- the page allocator ---- */

/* n pages, as few runs as the free space allows (next fit keeps a growing program's pages in
 * order, so most regions map with one rf_as_map). Fresh pages are zero: freed ones are punched. */
int mem_pages_alloc(struct rt_mem *m, uint64_t n, uint32_t *out)
{
	if (n > m->npages - m->used)
		return -ENOMEM;
	uint64_t got = 0, pg = m->next;
	while (got < n) {
		if (pg >= m->npages)
			pg = 0;
		uint64_t w = m->bitmap[pg / 64];
		if (w == UINT64_MAX && pg % 64 == 0) {
			pg += 64;
			continue;
		}
		if (!(w >> (pg % 64) & 1)) {
			m->bitmap[pg / 64] |= 1ull << (pg % 64);
			out[got++] = (uint32_t)pg;
		}
		pg++;
	}
	m->next = pg;
	m->used += n;
	return 0;
}

/* Zeroes pages in place: a hole punched in the memfd reads as zero again and returns the host
 * memory. Runs of consecutive pages are punched at once. */
void mem_pages_zero(struct rt_mem *m, const uint32_t *pages, uint64_t n)
{
	for (uint64_t i = 0; i < n;) {
		uint64_t j = i + 1;
		while (j < n && pages[j] == pages[j - 1] + 1)
			j++;
		uint64_t off = (uint64_t)pages[i] * RT_PAGE, len = (j - i) * RT_PAGE;
		if (fallocate(rf_memory_fd(m->mem), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		              (off_t)len) < 0)
			memset(m->host + off, 0, len);
		i = j;
	}
}

/* Gives pages back zeroed (mem_pages_zero), then marks them free. */
void mem_pages_free(struct rt_mem *m, const uint32_t *pages, uint64_t n)
{
	mem_pages_zero(m, pages, n);
	for (uint64_t k = 0; k < n; k++)
		m->bitmap[pages[k] / 64] &= ~(1ull << (pages[k] % 64));
	m->used -= n;
}

/* ---- checked guest access ---- */

const struct region *mem_find(const struct rt_mem *m, uint64_t va)
{
	unsigned lo = 0, hi = m->n;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct region *r = &m->r[mid];
		if (va < r->va)
			hi = mid;
		else if (va - r->va >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

/* The host bytes behind va if the guest may access it with prot, and how many follow in the page. */
static unsigned char *page_at(const struct rt_mem *m, uint64_t va, unsigned prot, size_t *in_page)
{
	const struct region *r = mem_find(m, va);
	/* x86 pages are readable once present: write and exec imply read. */
	if (!r || !r->prot || !r->pages || (prot & RF_PROT_WRITE && !(r->prot & RF_PROT_WRITE)))
		return NULL;
	uint64_t idx = (va - r->va) / RT_PAGE, off = va % RT_PAGE;
	*in_page = RT_PAGE - off;
	return m->host + (uint64_t)r->pages[idx] * RT_PAGE + off;
}

/* As Linux's access_ok(): a range that leaves the user half fails whole. */
static bool range_ok(uint64_t va, uint64_t len)
{
	return len <= RF_USER_END && va <= RF_USER_END - len;
}

int mem_copy_in(const struct rt_mem *m, void *dst, uint64_t va, size_t len)
{
	if (!range_ok(va, len))
		return -EFAULT;
	for (size_t done = 0; done < len;) {
		size_t avail;
		unsigned char *h = page_at(m, va + done, RF_PROT_READ, &avail);
		if (!h)
			return -EFAULT;
		size_t take = avail < len - done ? avail : len - done;
		memcpy((unsigned char *)dst + done, h, take);
		done += take;
	}
	return 0;
}

int mem_copy_out(const struct rt_mem *m, uint64_t va, const void *src, size_t len)
{
	if (!range_ok(va, len))
		return -EFAULT;
	/* Checked whole first, so a bad pointer writes nothing at all. */
	for (size_t done = 0; done < len;) {
		size_t avail;
		if (!page_at(m, va + done, RF_PROT_WRITE, &avail))
			return -EFAULT;
		done += avail < len - done ? avail : len - done;
	}
	for (size_t done = 0; done < len;) {
		size_t avail;
		unsigned char *h = page_at(m, va + done, RF_PROT_WRITE, &avail);
		size_t take = avail < len - done ? avail : len - done;
		memcpy(h, (const unsigned char *)src + done, take);
		done += take;
	}
	return 0;
}

long mem_str_in(const struct rt_mem *m, char *dst, uint64_t va, size_t max)
{
	for (size_t done = 0; done < max;) {
		size_t avail;
		if (va + done >= RF_USER_END)
			return -EFAULT;
		unsigned char *h = page_at(m, va + done, RF_PROT_READ, &avail);
		if (!h)
			return -EFAULT;
		size_t take = avail < max - done ? avail : max - done;
		unsigned char *nul = memchr(h, 0, take);
		memcpy(dst + done, h, nul ? (size_t)(nul - h) + 1 : take);
		if (nul)
			return (long)(done + (size_t)(nul - h));
		done += take;
	}
	return -ENAMETOOLONG;
}

size_t mem_iov(const struct rt_mem *m, uint64_t va, size_t len, unsigned prot, struct iovec *iov, int max,
               int *niov)
{
	*niov = 0;
	if (!range_ok(va, len))
		return 0;
	size_t done = 0;
	while (done < len) {
		size_t avail;
		unsigned char *h = page_at(m, va + done, prot, &avail);
		if (!h)
			break;
		size_t take = avail < len - done ? avail : len - done;
		if (*niov && (unsigned char *)iov[*niov - 1].iov_base + iov[*niov - 1].iov_len == h)
			iov[*niov - 1].iov_len += take;   /* consecutive guest pages: one host run */
		else if (*niov < max)
			iov[(*niov)++] = (struct iovec){ h, take };
		else
			break;
		done += take;
	}
	return done;
}
