/* SPDX-License-Identifier: MIT */
/* The region map: which user addresses hold which guest pages with which protection, kept in step
 * with the platform address space (every change here is an rf_as_map or rf_as_unmap there). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "runtime.h"

static uint64_t npages(uint64_t len) { return len / RT_PAGE; }

/* Index of the first region that ends above va (m->n if none). */
static unsigned first_above(const struct rt_mem *m, uint64_t va)
{
	unsigned lo = 0, hi = m->n;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (m->r[mid].va + m->r[mid].len <= va)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int insert_at(struct rt_mem *m, unsigned idx, const struct region *r)
{
	if (m->n >= RT_MAX_REGIONS)
		return -ENOMEM;
	if (m->n == m->cap) {
		unsigned cap = m->cap ? m->cap * 2 : 64;
		struct region *n = realloc(m->r, cap * sizeof *n);
		if (!n)
			return -ENOMEM;
		m->r = n;
		m->cap = cap;
	}
	memmove(&m->r[idx + 1], &m->r[idx], (m->n - idx) * sizeof *m->r);
	m->r[idx] = *r;
	m->n++;
	return 0;
}

static void delete_at(struct rt_mem *m, unsigned idx)
{
	memmove(&m->r[idx], &m->r[idx + 1], (m->n - idx - 1) * sizeof *m->r);
	m->n--;
}

/* Makes va a region boundary if a region straddles it. */
static int split(struct rt_mem *m, uint64_t va)
{
	unsigned i = first_above(m, va);
	if (i == m->n || m->r[i].va >= va)
		return 0;
	struct region *r = &m->r[i];
	struct region tail = *r;
	uint64_t head_pages = npages(va - r->va);
	tail.va = va;
	tail.len = r->va + r->len - va;
	if (r->pages) {
		tail.pages = malloc(npages(tail.len) * sizeof *tail.pages);
		if (!tail.pages)
			return -ENOMEM;
		memcpy(tail.pages, r->pages + head_pages, npages(tail.len) * sizeof *tail.pages);
	}
	int e = insert_at(m, i + 1, &tail);
	if (e < 0) {
		free(tail.pages);
		return e;
	}
	r = &m->r[i];   /* insert_at may have moved the array */
	r->len = va - r->va;
	if (r->pages) {
		uint32_t *shrunk = realloc(r->pages, head_pages * sizeof *r->pages);
		if (shrunk)
			r->pages = shrunk;
	}
	return 0;
}

/* Puts [va, va+len) of region r into the address space as r says: runs of consecutive guest pages
 * become one mapping each; a PROT_NONE region is unmapped. */
static int map_sync(struct rt_mem *m, const struct region *r, uint64_t va, uint64_t len)
{
	if (!r->prot || !r->pages)
		return rf_as_unmap(m->as, va, len);
	uint64_t first = npages(va - r->va), n = npages(len);
	for (uint64_t i = 0; i < n;) {
		uint64_t j = i + 1;
		while (j < n && r->pages[first + j] == r->pages[first + j - 1] + 1)
			j++;
		int e = rf_as_map(m->as, va + i * RT_PAGE, (j - i) * RT_PAGE, m->mem,
		                  (uint64_t)r->pages[first + i] * RT_PAGE, r->prot, 0);
		if (e < 0)
			return e;
		i = j;
	}
	return 0;
}

static bool can_merge(const struct region *a, const struct region *b)
{
	return a->va + a->len == b->va && a->prot == b->prot && a->kind == b->kind && a->shared == b->shared &&
	       a->nowrite == b->nowrite && !a->pages == !b->pages;
}

/* Joins r[i] and r[i+1] if they are alike, so growing heaps do not use up the region count. */
static void merge_next(struct rt_mem *m, unsigned i)
{
	if (i + 1 >= m->n || !can_merge(&m->r[i], &m->r[i + 1]))
		return;
	struct region *a = &m->r[i], *b = &m->r[i + 1];
	if (a->pages) {
		uint32_t *p = realloc(a->pages, npages(a->len + b->len) * sizeof *p);
		if (!p)
			return;   /* still correct, just two regions */
		memcpy(p + npages(a->len), b->pages, npages(b->len) * sizeof *p);
		a->pages = p;
		free(b->pages);
	}
	a->len += b->len;
	delete_at(m, i + 1);
}

static void merge_range(struct rt_mem *m, uint64_t va, uint64_t end)
{
	unsigned i = first_above(m, va);
	if (i > 0)
		i--;
	while (i < m->n && m->r[i].va <= end) {
		unsigned before = m->n;
		merge_next(m, i);
		if (m->n == before)
			i++;
	}
}

bool mem_is_free(const struct rt_mem *m, uint64_t va, uint64_t len)
{
	unsigned i = first_above(m, va);
	return i == m->n || m->r[i].va >= va + len;
}

int mem_add(struct rt_mem *m, uint64_t va, uint64_t len, unsigned prot, enum region_kind kind, unsigned flags,
            bool populate)
{
	struct region r = { .va = va, .len = len, .prot = prot, .kind = kind, .shared = flags & MEM_SHARED,
	                    .nowrite = flags & MEM_NOWRITE };
	/* Guest memory is checked before the page array is allocated: the array's size is bounded by
	 * guest memory, never by the length a program asks for. */
	if ((prot || populate) && npages(len) > m->npages - m->used)
		return -ENOMEM;
	if (prot || populate) {
		r.pages = malloc(npages(len) * sizeof *r.pages);
		if (!r.pages)
			return -ENOMEM;
		if (mem_pages_alloc(m, npages(len), r.pages) < 0) {
			free(r.pages);
			return -ENOMEM;
		}
	}
	unsigned i = first_above(m, va);
	int e = insert_at(m, i, &r);
	if (e == 0 && (e = map_sync(m, &m->r[i], va, len)) < 0)
		delete_at(m, i);
	if (e < 0) {
		if (r.pages)
			mem_pages_free(m, r.pages, npages(len));
		free(r.pages);
		return e;
	}
	if (m->used > m->mapped_peak)
		m->mapped_peak = m->used;
	merge_range(m, va, va + len);
	return 0;
}

int mem_remove(struct rt_mem *m, uint64_t va, uint64_t len)
{
	int e = split(m, va);
	if (e == 0)
		e = split(m, va + len);
	if (e < 0)
		return e;
	unsigned i = first_above(m, va);
	while (i < m->n && m->r[i].va < va + len) {
		struct region *r = &m->r[i];
		/* Out of the address space (every vCPU) before the pages can go to anyone else. */
		if (r->prot && (e = rf_as_unmap(m->as, r->va, r->len)) < 0)
			return e;
		if (r->pages)
			mem_pages_free(m, r->pages, npages(r->len));
		free(r->pages);
		delete_at(m, i);
	}
	return 0;
}

int mem_protect(struct rt_mem *m, uint64_t va, uint64_t len, unsigned prot)
{
	/* Linux changes nothing when part of the range is unmapped. */
	uint64_t at = va;
	for (unsigned i = first_above(m, va); at < va + len; i++) {
		if (i == m->n || m->r[i].va > at)
			return -ENOMEM;
		if ((prot & RF_PROT_WRITE) && m->r[i].nowrite)
			return -EACCES;
		at = m->r[i].va + m->r[i].len;
	}
	int e = split(m, va);
	if (e == 0)
		e = split(m, va + len);
	if (e < 0)
		return e;
	for (unsigned i = first_above(m, va); i < m->n && m->r[i].va < va + len; i++) {
		struct region *r = &m->r[i];
		if (prot && !r->pages) {
			/* A reservation made accessible gets its (zero) pages now. */
			if (npages(r->len) > m->npages - m->used)
				return -ENOMEM;
			uint32_t *p = malloc(npages(r->len) * sizeof *p);
			if (!p || mem_pages_alloc(m, npages(r->len), p) < 0) {
				free(p);
				return -ENOMEM;
			}
			r->pages = p;
		}
		r->prot = prot;
		if ((e = map_sync(m, r, r->va, r->len)) < 0)
			return e;
	}
	if (m->used > m->mapped_peak)
		m->mapped_peak = m->used;
	merge_range(m, va, va + len);
	return 0;
}

int mem_zero(struct rt_mem *m, uint64_t va, uint64_t len)
{
	for (unsigned i = first_above(m, va); i < m->n && m->r[i].va < va + len; i++) {
		const struct region *r = &m->r[i];
		if (!r->pages)
			continue;
		uint64_t lo = r->va > va ? r->va : va, hi = r->va + r->len < va + len ? r->va + r->len : va + len;
		mem_pages_zero(m, r->pages + npages(lo - r->va), npages(hi - lo));
	}
	return 0;
}

int mem_fill(struct rt_mem *m, uint64_t va, const void *src, size_t len)
{
	for (size_t done = 0; done < len;) {
		const struct region *r = mem_find(m, va + done);
		if (!r || !r->pages)
			return -EFAULT;
		uint64_t off = (va + done) % RT_PAGE;
		size_t take = RT_PAGE - off < len - done ? RT_PAGE - off : len - done;
		memcpy(m->host + (uint64_t)r->pages[npages(va + done - r->va)] * RT_PAGE + off,
		       (const unsigned char *)src + done, take);
		done += take;
	}
	return 0;
}

uint64_t mem_find_gap(const struct rt_mem *m, uint64_t len, uint64_t top)
{
	/* Gaps from the top down; one guard page stays free on each side of the new region. */
	unsigned i = first_above(m, top);
	uint64_t hi = top;
	if (i < m->n && m->r[i].va < top)
		hi = m->r[i].va;   /* a region straddles top: the gap ends below it */
	for (;;) {
		uint64_t lo = i > 0 ? m->r[i - 1].va + m->r[i - 1].len + RT_PAGE : ELF_USER_MIN;
		uint64_t end = hi < top ? hi - RT_PAGE : hi;
		if (end > lo && end - lo >= len)
			return end - len;
		if (i == 0)
			return 0;
		i--;
		hi = m->r[i].va;
	}
}

int64_t mem_remap(struct rt_mem *m, uint64_t old, uint64_t old_len, uint64_t new_len, unsigned flags,
                  uint64_t new_va)
{
	const struct region *r = mem_find(m, old);
	if (!r || old_len > r->va + r->len - old)
		return -EFAULT;   /* Linux: the old range must be one mapping */
	bool fixed = flags & MREMAP_FIXED;
	if (!fixed && new_len <= old_len) {
		int e = new_len < old_len ? mem_remove(m, old + new_len, old_len - new_len) : 0;
		return e < 0 ? e : (int64_t)old;
	}
	unsigned prot = r->prot;
	enum region_kind kind = r->kind;
	bool shared = r->shared, nowrite = r->nowrite, has_pages = r->pages != NULL;
	unsigned flags_of = (shared ? MEM_SHARED : 0) | (nowrite ? MEM_NOWRITE : 0);
	if (!fixed && old + new_len <= RT_USER_TOP && old + new_len > old &&
	    mem_is_free(m, old + old_len, new_len - old_len)) {
		int e = mem_add(m, old + old_len, new_len - old_len, prot, kind, flags_of, has_pages);
		return e < 0 ? e : (int64_t)old;
	}
	if (!(flags & MREMAP_MAYMOVE))
		return -ENOMEM;
	if (fixed) {
		if (new_va % RT_PAGE || new_va < ELF_USER_MIN || new_len > RT_USER_TOP - new_va ||
		    (new_va < old + old_len && old < new_va + new_len))
			return -EINVAL;
		int e = mem_remove(m, new_va, new_len);
		if (e < 0)
			return e;
	} else if (!(new_va = mem_find_gap(m, new_len, RT_MMAP_TOP))) {
		return -ENOMEM;
	}
	/* The pages move with the mapping: nothing is copied. */
	uint64_t keep = old_len < new_len ? old_len : new_len;
	uint32_t *moved = NULL;
	int e = split(m, old);
	if (e == 0)
		e = split(m, old + old_len);
	if (e < 0)
		return e;
	struct region *src = (struct region *)mem_find(m, old);
	if (src->pages) {
		if (new_len > keep && npages(new_len - keep) > m->npages - m->used)
			return -ENOMEM;
		moved = malloc(npages(new_len) * sizeof *moved);
		if (!moved || mem_pages_alloc(m, npages(new_len - keep), moved + npages(keep)) < 0) {
			free(moved);
			return -ENOMEM;
		}
		memcpy(moved, src->pages, npages(keep) * sizeof *moved);
		if (old_len > keep)
			mem_pages_free(m, src->pages + npages(keep), npages(old_len - keep));
		free(src->pages);
		src->pages = NULL;
	}
	if ((e = rf_as_unmap(m->as, old, old_len)) < 0 || (e = mem_remove(m, old, old_len)) < 0) {
		if (moved)
			mem_pages_free(m, moved, npages(new_len));
		free(moved);
		return e;
	}
	struct region nr = { .va = new_va, .len = new_len, .prot = prot, .kind = kind, .shared = shared,
	                     .nowrite = nowrite, .pages = moved };
	unsigned i = first_above(m, new_va);
	if ((e = insert_at(m, i, &nr)) == 0 && (e = map_sync(m, &m->r[i], new_va, new_len)) < 0)
		delete_at(m, i);
	if (e < 0) {
		if (moved)
			mem_pages_free(m, moved, npages(new_len));
		free(moved);
		return e;
	}
	merge_range(m, new_va, new_va + new_len);
	return (int64_t)new_va;
}
