/* SPDX-License-Identifier: MIT */
/* x86-64 page-table edits for the user half: map, unmap, protect with 4 KiB and 2 MiB leaves. */
#include "platform.h"

#include <errno.h>
#include <stddef.h>

#include "ringfence.h"

#define IDX(va, level) (((va) >> (12 + 9 * ((level) - 1))) & 511)
#define LEVEL_SIZE(level) (1ull << (12 + 9 * ((level) - 1)))
#define TABLE_FLAGS (PTE_P | PTE_RW | PTE_US)
#define LEAF_PERMS (PTE_RW | PTE_US | PTE_NX)

uint64_t pt_leaf_flags(unsigned prot)
{
	uint64_t f = PTE_P | PTE_US | PTE_A | PTE_D;
	if (prot & RF_PROT_WRITE)
		f |= PTE_RW;
	if (!(prot & RF_PROT_EXEC))
		f |= PTE_NX;
	return f;
}

/* Reports that a present entry of the table page at gpa was rewritten (see struct pt_mem). */
static void changed(const struct pt_mem *m, uint64_t gpa)
{
	if (m->changed)
		m->changed(m->opaque, gpa);
}

/* The entry for va at `level`, creating tables above it; NULL with -ENOMEM. Splits a 2 MiB leaf
 * on the way when the caller wants a level-1 entry inside it. *table is the entry's table page. */
static uint64_t *walk(const struct pt_mem *m, uint64_t root, uint64_t va, int level, bool create, int *err,
                      uint64_t *table)
{
	uint64_t tgpa = root;
	uint64_t *t = m->table(m->opaque, root);
	for (int l = 4; l > level; l--) {
		uint64_t *e = &t[IDX(va, l)];
		if (!(*e & PTE_P)) {
			if (!create)
				return NULL;
			uint64_t gpa;
			if ((*err = m->alloc(m->opaque, &gpa)) < 0)
				return NULL;
			*e = gpa | TABLE_FLAGS;
		} else if (*e & PTE_PS) {
			if (!create) {
				*table = tgpa;
				return e;  /* a 2 MiB leaf covers va: the caller sees it as such */
			}
			uint64_t gpa;
			if ((*err = m->alloc(m->opaque, &gpa)) < 0)
				return NULL;
			uint64_t *pt = m->table(m->opaque, gpa);
			uint64_t base = *e & PTE_ADDR & ~(LEVEL_SIZE(2) - 1);
			uint64_t flags = *e & ~PTE_ADDR & ~PTE_PS;
			for (int i = 0; i < 512; i++)
				pt[i] = (base + (uint64_t)i * 4096) | flags;
			/* Same translations, but a shadow of this page still holds the 2 MiB leaf, which a
			 * later edit of the new table would never reach. */
			*e = gpa | TABLE_FLAGS;
			changed(m, tgpa);
		}
		tgpa = *e & PTE_ADDR;
		t = m->table(m->opaque, tgpa);
	}
	*table = tgpa;
	return &t[IDX(va, level)];
}

/* Retires every table below a level-2 entry (a page table) or deeper. */
static void retire_below(const struct pt_mem *m, uint64_t entry, int level)
{
	if (!(entry & PTE_P) || (entry & PTE_PS) || level == 1)
		return;
	uint64_t gpa = entry & PTE_ADDR;
	if (level > 2) {
		uint64_t *t = m->table(m->opaque, gpa);
		for (int i = 0; i < 512; i++)
			retire_below(m, t[i], level - 1);
	}
	m->retire(m->opaque, gpa);
}

int pt_map(const struct pt_mem *m, uint64_t root, uint64_t va, uint64_t gpa, uint64_t len,
           uint64_t leaf_flags, bool huge)
{
	int err = 0;
	for (uint64_t off = 0; off < len;) {
		uint64_t table;
		uint64_t *e = walk(m, root, va + off, huge ? 2 : 1, true, &err, &table);
		if (!e)
			return err;
		uint64_t old = *e;
		*e = (gpa + off) | leaf_flags | (huge ? PTE_PS : 0);
		if (old & PTE_P)
			changed(m, table);
		if (huge)
			retire_below(m, old, 2);
		off += huge ? RF_HUGE_SIZE : RF_PAGE_SIZE;
	}
	return 0;
}

/* Visits every present leaf in [va, va+len), splitting 2 MiB leaves that are only partly covered
 * when `split` is set. fn returns <0 to stop. */
static int for_each_leaf(const struct pt_mem *m, uint64_t root, uint64_t va, uint64_t len, bool split,
                         int (*fn)(uint64_t *leaf, void *arg), void *arg)
{
	uint64_t end = va + len;
	int err = 0;
	while (va < end) {
		uint64_t *e = NULL;
		int level = 4;
		uint64_t tgpa = root;
		uint64_t *t = m->table(m->opaque, root);
		/* Descend as far as entries are present; skip whole holes. */
		for (;;) {
			e = &t[IDX(va, level)];
			if (!(*e & PTE_P) || level == 1 || (*e & PTE_PS))
				break;
			tgpa = *e & PTE_ADDR;
			t = m->table(m->opaque, tgpa);
			level--;
		}
		uint64_t size = LEVEL_SIZE(level);
		uint64_t next = (va & ~(size - 1)) + size;
		if (!(*e & PTE_P)) {
			va = next;
			continue;
		}
		if (level == 2 && (va & (size - 1) || next > end)) {
			if (!split)
				return -EINVAL;
			uint64_t table;
			if (!walk(m, root, va, 1, true, &err, &table))
				return err;
			continue;  /* now a 4 KiB table: revisit */
		}
		int r = fn(e, arg);
		if (r < 0)
			return r;
		changed(m, tgpa);   /* fn rewrote a present leaf */
		va = next;
	}
	return 0;
}

struct unmap_arg {
	void (*cleared)(void *arg, uint64_t gpa, uint64_t size);
	void *arg;
};

static int clear_leaf(uint64_t *leaf, void *arg)
{
	const struct unmap_arg *u = arg;
	uint64_t size = (*leaf & PTE_PS) ? RF_HUGE_SIZE : RF_PAGE_SIZE;
	u->cleared(u->arg, *leaf & PTE_ADDR & ~(size - 1), size);
	*leaf = 0;
	return 0;
}

int pt_unmap(const struct pt_mem *m, uint64_t root, uint64_t va, uint64_t len,
             void (*cleared)(void *arg, uint64_t gpa, uint64_t size), void *arg)
{
	struct unmap_arg u = { cleared, arg };
	return for_each_leaf(m, root, va, len, true, clear_leaf, &u);
}

struct protect_arg {
	uint64_t flags;
};

static int set_perms(uint64_t *leaf, void *arg)
{
	const struct protect_arg *p = arg;
	*leaf = (*leaf & ~LEAF_PERMS) | (p->flags & LEAF_PERMS);
	return 0;
}

/* Splits the 2 MiB leaf holding addr if [start, end) covers only part of it. Translations stay
 * the same, so no TLB flush is owed for it (walk still reports the page to a shadow MMU). */
static int split_at(const struct pt_mem *m, uint64_t root, uint64_t addr, uint64_t start, uint64_t end)
{
	uint64_t size;
	uint64_t e = pt_lookup(m, root, addr, &size);
	uint64_t base = addr & ~(RF_HUGE_SIZE - 1);
	int err = 0;
	uint64_t table;
	if (e && size == RF_HUGE_SIZE && (base < start || base + RF_HUGE_SIZE > end) &&
	    !walk(m, root, addr, 1, true, &err, &table))
		return err;
	return 0;
}

int pt_protect(const struct pt_mem *m, uint64_t root, uint64_t va, uint64_t len, uint64_t leaf_flags)
{
	for (uint64_t a = va; a < va + len;) {
		uint64_t size;
		if (!pt_lookup(m, root, a, &size))
			return -ENOENT;
		a = (a & ~(size - 1)) + size;
	}
	/* Only the first and last 2 MiB leaves can be partly covered. Splitting them first leaves
	 * the last pass nothing that can fail, so protection changes all or nothing. */
	int r;
	if ((r = split_at(m, root, va, va, va + len)) < 0 ||
	    (r = split_at(m, root, va + len - 1, va, va + len)) < 0)
		return r;
	struct protect_arg p = { leaf_flags };
	return for_each_leaf(m, root, va, len, false, set_perms, &p);
}

uint64_t pt_lookup(const struct pt_mem *m, uint64_t root, uint64_t va, uint64_t *size)
{
	uint64_t *t = m->table(m->opaque, root);
	for (int level = 4; level >= 1; level--) {
		uint64_t e = t[IDX(va, level)];
		if (!(e & PTE_P))
			return 0;
		if (level == 1 || (e & PTE_PS)) {
			*size = LEVEL_SIZE(level);
			return e;
		}
		t = m->table(m->opaque, e & PTE_ADDR);
	}
	return 0;
}

static void tables_below(const struct pt_mem *m, uint64_t entry, int level,
                         void (*fn)(void *arg, uint64_t gpa), void *arg)
{
	if (!(entry & PTE_P) || (entry & PTE_PS) || level == 1)
		return;
	uint64_t *t = m->table(m->opaque, entry & PTE_ADDR);
	for (int i = 0; level > 2 && i < 512; i++)
		tables_below(m, t[i], level - 1, fn, arg);
	fn(arg, entry & PTE_ADDR);
}

void pt_tables(const struct pt_mem *m, uint64_t root, void (*fn)(void *arg, uint64_t gpa), void *arg)
{
	uint64_t *t = m->table(m->opaque, root);
	for (int i = 0; i < 256; i++)
		tables_below(m, t[i], 4, fn, arg);
	fn(arg, root);
}

void pt_destroy(const struct pt_mem *m, uint64_t root)
{
	uint64_t *t = m->table(m->opaque, root);
	for (int i = 0; i < 256; i++)
		retire_below(m, t[i], 4);
	m->retire(m->opaque, root);
}
