/* SPDX-License-Identifier: MIT */
/* Unit tests of platform/pagetable.c on plain host memory through a fake struct pt_mem. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"
#include "../tap.h"

#define PG       4096ull
#define H2M      (2ull << 20)
#define GIB      (1ull << 30)
#define TABLE    (PTE_P | PTE_RW | PTE_US)
#define PERMS    (PTE_RW | PTE_US | PTE_NX)
#define SOFT     (1ull << 9)              /* OS-available bit: only a remap may drop it */
#define SENTINEL (PG | PTE_P | PTE_RW)    /* page 1 stands in for the supervisor PDPT */
#define G(x)     (RF_USER_GPA_BASE + (x))
#define ULL(x)   ((unsigned long long)(x))

/* The fake hands out pages from 2 up and never reuses one, so any touch of a retired page, of the
 * supervisor stand-in or of a page never allocated is caught (counted in `bad`). */
enum { FREE, LIVE, RETIRED };
struct fake {
	struct pt_mem m;
	unsigned n, next, allocs, retires, bad;
	long fail_after;                 /* allocations that still succeed; <0: no limit */
	uint64_t (*page)[512], root;
	unsigned char *state;
	unsigned char *changed;          /* pages changed() reported since the test last cleared it */
};

static bool live(const struct fake *f, uint64_t gpa)
{
	return !(gpa % PG) && gpa / PG < f->n && f->state[gpa / PG] == LIVE;
}

static uint64_t *f_table(void *o, uint64_t gpa)
{
	struct fake *f = o;
	if (!live(f, gpa)) {
		f->bad++;
		memset(f->page[0], 0, PG);   /* scratch page 0 lets a buggy walk run on to the assertions */
		return f->page[0];
	}
	return f->page[gpa / PG];
}

static int f_alloc(void *o, uint64_t *gpa)
{
	struct fake *f = o;
	if (f->fail_after == 0 || f->next >= f->n)
		return -ENOMEM;
	f->fail_after -= f->fail_after > 0;
	f->state[f->next] = LIVE;   /* calloc'ed: already zero */
	f->allocs++;
	*gpa = f->next++ * PG;
	return 0;
}

static void f_retire(void *o, uint64_t gpa)
{
	struct fake *f = o;
	f->bad += !live(f, gpa);   /* retired twice, or never a table */
	if (live(f, gpa)) {
		f->retires++;
		f->state[gpa / PG] = RETIRED;
		memset(f->page[gpa / PG], 0xa5, PG);   /* present+PS garbage: a stale walk finds nonsense */
	}
}

static void f_changed(void *o, uint64_t gpa)
{
	struct fake *f = o;
	f->bad += !live(f, gpa);   /* only a live table can have had an entry rewritten */
	if (live(f, gpa))
		f->changed[gpa / PG] = 1;
}

static struct fake *fake_new(unsigned n)
{
	struct fake *f = calloc(1, sizeof *f);
	if (!f || !(f->page = calloc(n, PG)) || !(f->state = calloc(n, 1)) || !(f->changed = calloc(n, 1)))
		abort();
	f->m = (struct pt_mem){ f, f_table, f_alloc, f_retire, f_changed };
	f->n = n;
	f->next = 2;
	f->fail_after = -1;
	if (f_alloc(f, &f->root) < 0)
		abort();
	f->page[f->root / PG][511] = SENTINEL;
	return f;
}

static uint64_t lk(struct fake *f, uint64_t va, uint64_t *size)
{
	*size = 0;
	return pt_lookup(&f->m, f->root, va, size);
}

static const char *visit(struct fake *f, unsigned char *seen, uint64_t gpa, int level, unsigned *reached)
{
	if (!live(f, gpa))
		return "a reachable table is not a live page";
	if (seen[gpa / PG]++)
		return "a table is reachable twice";
	(*reached)++;
	for (unsigned k = 0; level > 1 && k < (level == 4 ? 256u : 512u); k++) {
		uint64_t e = f->page[gpa / PG][k];
		if (!(e & PTE_P) || (level == 2 && (e & PTE_PS)))
			continue;
		if (e & PTE_PS)
			return "a leaf above 2 MiB";
		if ((e & ~PTE_ADDR) != TABLE)
			return "an intermediate entry is not exactly P|RW|US";
		const char *why = visit(f, seen, e & PTE_ADDR, level - 1, reached);
		if (why)
			return why;
	}
	return NULL;
}

/* The tables must be a tree of live pages that holds every live page: a live page outside it is a
 * leak, a page in it that is not live was retired while still reachable. */
static const char *check_tree(struct fake *f)
{
	unsigned char *seen = calloc(f->n, 1);
	unsigned reached = 0, nlive = 0;
	if (!seen)
		abort();
	const char *why = visit(f, seen, f->root, 4, &reached);
	for (unsigned i = 0; i < f->n; i++)
		nlive += f->state[i] == LIVE;
	free(seen);
	if (!why && reached != nlive)
		why = "live table pages are unreachable (leaked)";
	if (!why && f->page[f->root / PG][511] != SENTINEL)
		why = "the supervisor slot 511 changed";
	return why || !f->bad ? why : "touched or retired a page that is not a live table";
}

static void tree_ok(struct fake *f, const char *name)
{
	const char *why = check_tree(f);
	ok(!why, "%s: tables form a tree, linked P|RW|US, no leak%s%s", name, why ? ": " : "", why ? why : "");
}

/* Ends every test: the tree is sound, and pt_destroy retires each live table once, nothing else. */
static void destroy_ok(struct fake *f, const char *name)
{
	unsigned nlive = 0, before = f->retires, left = 0;
	tree_ok(f, name);
	for (unsigned i = 0; i < f->n; i++)
		nlive += f->state[i] == LIVE;
	pt_destroy(&f->m, f->root);
	for (unsigned i = 0; i < f->n; i++)
		left += f->state[i] == LIVE;
	ok(!left && f->retires - before == nlive && f->retires == f->allocs && !f->bad,
	   "%s: pt_destroy retired all %u tables once (%u left, %u retired, %u of %u allocs in all, %u bad)",
	   name, nlive, left, f->retires - before, f->retires, f->allocs, f->bad);
	free(f->page);
	free(f->state);
	free(f->changed);
	free(f);
}

static struct {
	unsigned n;
	uint64_t gpa[4096], size[4096];
} rec;

static void rec_cb(void *arg, uint64_t gpa, uint64_t size)
{
	(void)arg;
	rec.gpa[rec.n % 4096] = gpa;   /* n beyond 4096 fails every caller's count anyway */
	rec.size[rec.n++ % 4096] = size;
}

/* cleared() promises no order, so reports are looked up rather than compared in sequence. */
static bool reported(uint64_t gpa, uint64_t size)
{
	for (unsigned k = 0; k < rec.n && k < 4096; k++)
		if (rec.gpa[k] == gpa && rec.size[k] == size)
			return true;
	return false;
}

#define UNMAP(f, va, len) (rec.n = 0, pt_unmap(&(f)->m, (f)->root, (va), (len), rec_cb, NULL))
#define MAP(f, va, gpa, len, fl, huge) pt_map(&(f)->m, (f)->root, (va), (gpa), (len), (fl), (huge))
#define PROTECT(f, va, len, fl) pt_protect(&(f)->m, (f)->root, (va), (len), (fl))

static void test_map(void)
{
	struct fake *f = fake_new(16);
	uint64_t va = 0x7f1234560000ull, size = 0, fl;
	for (unsigned prot = 1; prot < 8; prot++) {
		fl = pt_leaf_flags(prot);
		int r = MAP(f, va + prot * PG, G(prot * PG), PG, fl, false);
		uint64_t e = r ? 0 : lk(f, va + prot * PG + 0x123, &size);
		ok(e == (G(prot * PG) | fl) && size == PG && (e & PTE_P) && (e & PTE_US) && !(e & PTE_PS) &&
		   !(e & PTE_RW) == !(prot & RF_PROT_WRITE) && !(e & PTE_NX) == !!(prot & RF_PROT_EXEC),
		   "4K map, prot %u: lookup gives address, 4 KiB, P|US, RW iff write, NX unless exec (0x%llx)", prot,
		   ULL(e));
	}
	ok(!lk(f, va, &size) && !lk(f, va + 8 * PG, &size), "4K maps: neighbours stay unmapped");
	ok_eq(f->allocs, 4, "4K maps in an empty root allocate PDPT, PD and PT once");
	tree_ok(f, "4K map");
	fl = pt_leaf_flags(RF_PROT_READ);
	ok(MAP(f, va + 6 * PG, G(0x999000), PG, fl, false) == 0 && lk(f, va + 6 * PG, &size) == (G(0x999000) | fl) &&
	   f->allocs == 4, "4K remap replaces address and flags, allocates nothing");
	destroy_ok(f, "4K map");

	f = fake_new(16);
	va = 3 * GIB + 4 * H2M;
	fl = pt_leaf_flags(RF_PROT_READ | RF_PROT_WRITE);
	ok_eq(MAP(f, va, G(6 * H2M), 2 * H2M, fl, true), 0, "2M map of two leaves");
	ok(lk(f, va + 0x1234, &size) == (G(6 * H2M) | fl | PTE_PS) && size == H2M,
	   "2M lookup: PS, 2 MiB, address, flags");
	ok(lk(f, va + H2M + 0x1ff000, &size) == (G(7 * H2M) | fl | PTE_PS) && size == H2M, "2M lookup: second leaf");
	ok(!lk(f, va + 2 * H2M, &size) && !lk(f, va - PG, &size), "2M map: nothing beyond its range");
	ok_eq(f->allocs, 3, "2M map allocates PDPT and PD only");
	destroy_ok(f, "2M map");
}

static void test_split(void)
{
	struct fake *f = fake_new(16);
	uint64_t va = 5 * GIB + 8 * H2M, g = G(10 * H2M), size, fl = pt_leaf_flags(RF_PROT_EXEC) | SOFT;
	MAP(f, va, g, H2M, fl, true);
	unsigned a0 = f->allocs, bad = 0;
	ok_eq(UNMAP(f, va + 5 * PG, PG), 0, "unmap 4K inside a 2M leaf");
	ok(rec.n == 1 && reported(g + 5 * PG, PG), "split: cleared() reports exactly the 4K page removed");
	for (unsigned i = 0; i < 512; i++) {
		uint64_t e = lk(f, va + i * PG, &size);
		bad += i == 5 ? e != 0 : (e != ((g + i * PG) | fl) || size != PG);
	}
	ok(!bad, "split: page 5 gone, the other 511 keep address and every flag (%u wrong)", bad);
	ok_eq(f->allocs, a0 + 1, "split allocates one page table");
	tree_ok(f, "split");
	ok_eq(UNMAP(f, va, H2M), 0, "unmap the rest of the split region");
	bad = rec.n != 511;
	for (unsigned i = 0; i < 512; i++)
		bad += i != 5 && !reported(g + i * PG, PG);
	ok(!bad, "split: the remaining 511 pages each reported as 4 KiB");
	destroy_ok(f, "split");
}

static void test_unmap(void)
{
	struct fake *f = fake_new(32);
	uint64_t a = 2 * GIB + 3 * H2M + 7 * PG, b = 2 * GIB + 6 * H2M, c = 7 * GIB, size;
	uint64_t fl = pt_leaf_flags(RF_PROT_READ);
	ok(UNMAP(f, 0, RF_USER_END) == 0 && rec.n == 0, "unmap of the empty user half reports nothing");
	MAP(f, a, G(0), PG, fl, false);
	MAP(f, b, G(H2M), H2M, fl, true);
	ok(UNMAP(f, a + PG, b - a - PG) == 0 && rec.n == 0, "unmap of the holes between two mappings: nothing");
	ok(UNMAP(f, b + H2M, 5 * GIB) == 0 && rec.n == 0, "unmap over absent PDEs, PDPTEs and PML4Es: nothing");
	ok(lk(f, a, &size) == (G(0) | fl) && lk(f, b, &size) == (G(H2M) | fl | PTE_PS), "hole unmaps keep both");
	ok(UNMAP(f, 0, RF_USER_END) == 0 && rec.n == 2 && reported(G(0), PG) && reported(G(H2M), H2M),
	   "unmap of the user half reports the 4K page and the 2M leaf");
	/* Skipping a hole at each level must stop exactly where the next entry of that level starts. */
	static const uint64_t next[] = { 2 * GIB + 9 * H2M, 8 * GIB, 2ull << 39 };
	for (unsigned l = 0; l < 3; l++) {
		uint64_t span = H2M << (9 * l);
		MAP(f, next[l], G(l * PG), PG, fl, false);
		ok(UNMAP(f, next[l] - span + 3 * PG, span - 2 * PG) == 0 && rec.n == 1 && reported(G(l * PG), PG),
		   "a hole of %s is skipped up to the page right after it", l == 0 ? "2M" : l == 1 ? "1G" : "512G");
	}
	/* Across a 1 GiB boundary: two page tables in two page directories, then a 2M leaf. */
	MAP(f, c - 3 * PG, G(0x100000), PG, fl, false);
	MAP(f, c - 2 * PG, G(0), 4 * PG, fl, false);
	MAP(f, c + H2M, G(4 * H2M), H2M, fl, true);
	ok_eq(UNMAP(f, c - 2 * PG, 2 * PG + 2 * H2M), 0, "unmap across a 1 GiB boundary");
	ok(rec.n == 5 && reported(G(0), PG) && reported(G(PG), PG) && reported(G(2 * PG), PG) &&
	   reported(G(3 * PG), PG) && reported(G(4 * H2M), H2M), "1G boundary: four 4K pages and the 2M leaf reported");
	ok(!lk(f, c - 2 * PG, &size) && !lk(f, c + PG, &size) && !lk(f, c + H2M, &size) &&
	   lk(f, c - 3 * PG, &size) == (G(0x100000) | fl), "1G boundary: range gone, the page before it kept");
	MAP(f, c - H2M, G(8 * H2M), 2 * H2M, fl, true);
	ok(UNMAP(f, c - PG, 2 * PG) == 0 && rec.n == 2 && reported(G(9 * H2M - PG), PG) && reported(G(9 * H2M), PG),
	   "8K across 1 GiB cutting two 2M leaves: both split, one 4K page reported from each");
	ok(lk(f, c - 2 * PG, &size) == (G(9 * H2M - 2 * PG) | fl) && size == PG &&
	   lk(f, c + PG, &size) == (G(9 * H2M + PG) | fl) && size == PG, "straddle: neighbours keep their addresses");
	destroy_ok(f, "unmap");
}

static void test_protect(void)
{
	static uint64_t before[1024];
	struct fake *f = fake_new(16);
	uint64_t va = 9 * GIB, size, fl = pt_leaf_flags(RF_PROT_WRITE) | SOFT, nf = pt_leaf_flags(RF_PROT_EXEC);
	uint64_t kept = (fl & ~PERMS) | (nf & PERMS), rf = pt_leaf_flags(RF_PROT_READ), bad = 0;
	MAP(f, va, G(0x40000), 3 * PG, fl, false);
	MAP(f, va + H2M, G(2 * H2M), H2M, fl, true);
	unsigned a0 = f->allocs;
	ok(PROTECT(f, va, 3 * PG, nf) == 0 && PROTECT(f, va + H2M, H2M, nf) == 0, "protect 4K pages, a whole 2M leaf");
	for (unsigned i = 0; i < 3; i++)
		bad += lk(f, va + i * PG, &size) != ((G(0x40000) + i * PG) | kept);
	ok(!bad, "protect: 4K entries keep address and other bits, take RW/US/NX from the new flags");
	ok(lk(f, va + H2M, &size) == (G(2 * H2M) | kept | PTE_PS) && size == H2M && f->allocs == a0,
	   "protect of a whole 2M leaf keeps it one leaf with its address");
	ok_eq(PROTECT(f, va + H2M + 10 * PG, PG, rf), 0, "protect one 4K page inside a 2M leaf");
	bad = 0;
	for (unsigned i = 0; i < 512; i++) {
		uint64_t want = i == 10 ? (kept & ~PERMS) | (rf & PERMS) : kept;
		bad += lk(f, va + H2M + i * PG, &size) != ((G(2 * H2M) + i * PG) | want) || size != PG;
	}
	ok(!bad && f->allocs == a0 + 1, "protect in a 2M leaf splits it, changes page 10 only (%llu wrong)", ULL(bad));
	destroy_ok(f, "protect");

	f = fake_new(16);
	va = 11 * GIB;
	MAP(f, va, G(0), 2 * PG, rf, false);
	MAP(f, va + 3 * PG, G(3 * PG), PG, rf, false);
	MAP(f, va + H2M, G(H2M), H2M, rf, true);
	a0 = f->allocs;
	for (unsigned i = 0; i < 1024; i++)
		before[i] = lk(f, va + i * PG, &size);
	ok_eq(PROTECT(f, va, 4 * PG, nf), -ENOENT, "protect over a one-page hole");
	ok_eq(PROTECT(f, va + 3 * PG, H2M, nf), -ENOENT, "protect from a 4K page over a hole into a 2M leaf");
	ok_eq(PROTECT(f, va + H2M + PG, H2M, nf), -ENOENT, "protect from inside a 2M leaf into the hole after it");
	bad = 0;
	for (unsigned i = 0; i < 1024; i++)
		bad += lk(f, va + i * PG, &size) != before[i] || (i >= 512 && size != H2M);
	ok(!bad && f->allocs == a0, "refused protects change nothing and split nothing (%llu wrong)", ULL(bad));
	destroy_ok(f, "refused protect");
}

static void test_retire(void)
{
	struct fake *f = fake_new(64);
	uint64_t va = 13 * GIB + 2 * H2M, size, fl = pt_leaf_flags(RF_PROT_READ);
	MAP(f, va, G(0), PG, fl, false);
	MAP(f, va + 100 * PG, G(0), PG, fl, false);
	unsigned pt = f->next - 1;   /* the page table was the last page handed out */
	ok_eq(MAP(f, va, G(4 * H2M), H2M, fl, true), 0, "2M map over a region of 4K pages");
	ok(f->retires == 1 && f->state[pt] == RETIRED, "the replaced page table is retired");
	ok(lk(f, va + 100 * PG, &size) == (G(4 * H2M) | fl | PTE_PS) && size == H2M, "the region is one 2M leaf now");
	ok(MAP(f, va, G(6 * H2M), H2M, fl, true) == 0 && f->retires == 1, "2M over 2M retires nothing");
	tree_ok(f, "2M over 4K");
	/* A tree over several PML4 slots, with a split leaf, for pt_destroy to take apart. */
	MAP(f, GIB, G(0), 3 * PG, fl, false);
	MAP(f, 3 * GIB, G(0), 4 * H2M, fl, true);
	MAP(f, 3 * GIB + H2M + PG, G(0), PG, fl, false);
	MAP(f, 5ull << 39, G(0), PG, fl, false);
	MAP(f, RF_USER_END - PG, G(0), PG, fl, false);
	ok(f->allocs == 14 && f->retires == 1, "destroy: 14 tables built, one retired before (%u, %u)", f->allocs,
	   f->retires);
	destroy_ok(f, "destroy");
}

static void test_alloc_fail(void)
{
	uint64_t va = 15 * GIB, size, fl = pt_leaf_flags(RF_PROT_READ);
	for (long k = 0; k <= 3; k++) {
		struct fake *f = fake_new(16);
		f->fail_after = k;
		int r = MAP(f, va, G(0), PG, fl, false);
		ok(k < 3 ? r == -ENOMEM && !lk(f, va, &size) : r == 0 && lk(f, va, &size),
		   "4K map with %ld allocations left: %d", k, r);
		destroy_ok(f, "failed map");
	}
	struct fake *f = fake_new(16);
	MAP(f, va, G(0), PG, fl, false);
	MAP(f, va + 4 * H2M, G(0), H2M, fl, true);
	f->fail_after = 0;
	ok_eq(MAP(f, va + H2M - PG, G(0), 2 * PG, fl, false), -ENOMEM, "4K map needing a second page table mid-way");
	ok_eq(MAP(f, va + GIB, G(0), H2M, fl, true), -ENOMEM, "2M map needing a new page directory");
	ok(UNMAP(f, va + 4 * H2M + PG, PG) == -ENOMEM && rec.n == 0, "unmap needing a split fails, reports nothing");
	ok_eq(PROTECT(f, va + 4 * H2M, PG, pt_leaf_flags(RF_PROT_WRITE)), -ENOMEM, "protect needing a split fails");
	ok(lk(f, va + 4 * H2M + PG, &size) == (G(0) | fl | PTE_PS) && size == H2M, "failed splits keep the 2M leaf");
	destroy_ok(f, "failed allocations");

	/* Regression: a protect that splits its first 2M leaf, then cannot split its last one, used to
	 * have changed the pages in between already (and the caller skipped the flush). */
	f = fake_new(16);
	uint64_t wf = pt_leaf_flags(RF_PROT_WRITE);
	MAP(f, va, G(0), 3 * H2M, fl, true);
	f->fail_after = 1;
	ok_eq(PROTECT(f, va + PG, 3 * H2M - 2 * PG, wf), -ENOMEM, "protect needing two splits, room for one");
	unsigned changed = 0;
	for (uint64_t a = va; a < va + 3 * H2M; a += PG)
		changed += (lk(f, a, &size) & PTE_RW) != 0;
	ok_eq(changed, 0, "a protect that fails changes no permission");
	destroy_ok(f, "failed protect");
}

/* ---- randomized differential test against a per-page model ---- */
#define WIN_REGIONS 4
#define WIN_PAGES   (WIN_REGIONS * 512)
#define WIN_BASE    (3 * GIB - 2 * H2M)   /* straddles a 1 GiB boundary: two page directories */

/* Page i of the window only ever maps WIN_GPA(i, k) for some k, so an address cleared() reports
 * names the page it came from. */
#define WIN_GPA(i, k) G(((uint64_t)(k) * WIN_PAGES + (i)) * PG)

static struct {
	bool present[WIN_PAGES], huge[WIN_REGIONS];   /* huge: the region is one PS leaf */
	uint64_t gpa[WIN_PAGES], flags[WIN_PAGES];
} md;
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static char why[200];

static uint64_t rnd(uint64_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng % n;
}

static const char *compare(struct fake *f)
{
	for (unsigned i = 0; i < WIN_PAGES; i++) {
		uint64_t va = WIN_BASE + i * PG, size, e = lk(f, va, &size);
		uint64_t phys = (e & PTE_ADDR & ~(size - 1)) + (va & (size - 1));
		if (md.present[i] ? (e & PTE_P) && size == (md.huge[i / 512] ? H2M : PG) && phys == md.gpa[i] &&
		                    !(e & PTE_PS) == (size == PG) && (e & ~PTE_ADDR & ~PTE_PS) == md.flags[i]
		                  : e == 0)
			continue;
		snprintf(why, sizeof why, "page %u: entry 0x%llx size 0x%llx; model %d gpa 0x%llx flags 0x%llx huge %d",
		         i, ULL(e), ULL(size), md.present[i], ULL(md.gpa[i]), ULL(md.flags[i]), md.huge[i / 512]);
		return why;
	}
	return check_tree(f);
}

/* cleared() must report each present page of the range once: as one 2 MiB leaf for a whole region
 * that is one, as 4 KiB pages otherwise. */
static const char *random_unmap(struct fake *f, unsigned s, unsigned n, int *r)
{
	static unsigned char hit[WIN_PAGES];
	unsigned want = 0, got = 0;
	memset(hit, 0, sizeof hit);
	*r = UNMAP(f, WIN_BASE + (uint64_t)s * PG, (uint64_t)n * PG);
	for (unsigned k = 0; k < rec.n && k < 4096; k++) {
		unsigned i = (rec.gpa[k] - G(0)) / PG % WIN_PAGES;
		bool whole = md.huge[i / 512] && i % 512 == 0 && i >= s && i + 512 <= s + n;
		if (rec.size[k] != (whole ? H2M : PG))
			return "cleared() reported a leaf of the wrong size";
		for (unsigned j = i; j < i + rec.size[k] / PG; j++, got++)
			if (j < s || j >= s + n || !md.present[j] || md.gpa[j] != rec.gpa[k] + (j - i) * PG || hit[j]++)
				return "cleared() reported a page that was not mapped in the range, or twice";
	}
	for (unsigned i = s; i < s + n; i++)
		want += md.present[i];
	memset(&md.present[s], 0, n * sizeof md.present[0]);
	for (unsigned k = s / 512; k <= (s + n - 1) / 512; k++)
		md.huge[k] = false;
	if (want == got && rec.n <= 4096)
		return NULL;
	snprintf(why, sizeof why, "cleared() reported %u pages in %u calls, the range held %u", got, rec.n, want);
	return why;
}

/* A shadow MMU learns of a host edit only through the table page holding it: every page in which
 * an entry that was present changed must have been reported by changed(), or retired. */
static uint64_t snap[2048][512];
static unsigned char snap_live[2048];

static void snapshot(struct fake *f)
{
	memset(f->changed, 0, f->n);
	for (unsigned i = 0; i < f->next; i++)
		if ((snap_live[i] = f->state[i] == LIVE))
			memcpy(snap[i], f->page[i], PG);
}

static const char *check_changed(struct fake *f, unsigned *reports)
{
	for (unsigned i = 0; i < f->n; i++)
		*reports += f->changed[i];
	for (unsigned i = 0; i < f->next; i++) {
		if (!snap_live[i] || f->state[i] != LIVE || f->changed[i])
			continue;
		for (unsigned k = 0; k < 512; k++)
			if ((snap[i][k] & PTE_P) && f->page[i][k] != snap[i][k]) {
				snprintf(why, sizeof why, "table page %u entry %u: 0x%llx became 0x%llx, not reported", i, k,
				         ULL(snap[i][k]), ULL(f->page[i][k]));
				return why;
			}
	}
	return NULL;
}

static void test_random(void)
{
	struct fake *f = fake_new(2048);
	unsigned op, ops = 4000, prot_ok = 0, prot_no = 0, splits = 0, cleared = 0, reports = 0;
	const char *fail = NULL;
	for (op = 0; op < ops && !fail; op++) {
		unsigned kind = rnd(100), s, n;
		snapshot(f);
		if ((kind >= 30 && kind < 45) || rnd(4) == 0) {   /* whole regions: 2M maps, whole-leaf edits */
			s = rnd(WIN_REGIONS) * 512;
			n = (1 + rnd(WIN_REGIONS - s / 512)) * 512;
		} else {
			s = rnd(WIN_PAGES);
			n = 1 + rnd(rnd(8) ? 16 : WIN_PAGES - s);
			n = s + n > WIN_PAGES ? WIN_PAGES - s : n;
		}
		if (kind >= 65 && rnd(2) && md.present[s]) {   /* a mapped run, so that protects succeed */
			unsigned lim = 1 + rnd(700);
			for (n = 1; n < lim && s + n < WIN_PAGES && md.present[s + n];)
				n++;
		}
		uint64_t va = WIN_BASE + (uint64_t)s * PG, len = (uint64_t)n * PG, fl = pt_leaf_flags(1 + rnd(7));
		unsigned r0 = s / 512, r1 = (s + n - 1) / 512, allocs = f->allocs;
		int r, want = 0;
		if (kind < 45) {
			bool huge = kind >= 30;
			uint64_t g = WIN_GPA(s, rnd(16));
			r = MAP(f, va, g, len, fl, huge);
			for (unsigned i = s; i < s + n; i++) {
				md.present[i] = true;
				md.gpa[i] = g + (uint64_t)(i - s) * PG;
				md.flags[i] = fl;
			}
			for (unsigned k = r0; k <= r1; k++)
				md.huge[k] = huge;
		} else if (kind < 65) {
			fail = random_unmap(f, s, n, &r);
			cleared += rec.n;
		} else {
			bool all = true;
			for (unsigned i = s; i < s + n; i++)
				all = all && md.present[i];
			want = all ? 0 : -ENOENT;
			r = PROTECT(f, va, len, fl);
			prot_ok += all;
			prot_no += !all;
			for (unsigned i = s; all && i < s + n; i++)
				md.flags[i] = (md.flags[i] & ~PERMS) | (fl & PERMS);
			for (unsigned k = r0; all && k <= r1; k++)
				md.huge[k] = md.huge[k] && s <= k * 512 && s + n >= (k + 1) * 512;
		}
		splits += kind >= 45 && f->allocs > allocs;
		if (!fail && r != want) {
			snprintf(why, sizeof why, "returned %d, want %d", r, want);
			fail = why;
		}
		if (!fail)
			fail = compare(f);
		if (!fail)
			fail = check_changed(f, &reports);
		if (fail)
			printf("#   op %u: kind %u, pages %u+%u (va 0x%llx)\n", op, kind, s, n, ULL(va));
	}
	ok(!fail, "random: %u of %u ops match the model%s%s", op - !!fail, ops, fail ? ": " : "", fail ? fail : "");
	ok(prot_ok > 300 && prot_no > 100 && splits > 100 && cleared > 500,
	   "random: coverage (%u protects done, %u refused, %u splits, %u leaves cleared)", prot_ok, prot_no,
	   splits, cleared);
	ok(reports > 1000, "random: changed() reported %u table pages, each a page with a rewritten entry", reports);
	destroy_ok(f, "random");
}

static void test_supervisor_slot(void)
{
	struct fake *f = fake_new(32);
	uint64_t *root = f->page[f->root / PG], size, fl = pt_leaf_flags(RF_PROT_READ), bad = 0;
	/* Leaves in the very last user PML4 slot (255), the one next to the supervisor's. */
	MAP(f, RF_USER_END - 2 * H2M, G(0), 2 * H2M, fl, true);
	MAP(f, RF_USER_END - PG, G(0), PG, fl, false);
	ok(PROTECT(f, RF_USER_END - H2M, H2M, pt_leaf_flags(RF_PROT_WRITE)) == 0 &&
	   PROTECT(f, RF_USER_END - GIB, GIB, fl) == -ENOENT, "protect at the top of the user half; refused on holes");
	int r = UNMAP(f, 0, RF_USER_END);
	ok(r == 0 && rec.n == 513, "unmap of the whole user half (%u leaves)", rec.n);
	ok(!lk(f, RF_USER_END - PG, &size), "the top user page is gone");
	for (unsigned i = 256; i < 511; i++)
		bad += root[i] != 0;
	ok(root[511] == SENTINEL && !bad && !f->bad, "root slots 256-511 untouched: sentinel 0x%llx", ULL(root[511]));
	destroy_ok(f, "supervisor slot");
}

int main(void)
{
	test_map();
	test_split();
	test_unmap();
	test_protect();
	test_retire();
	test_alloc_fail();
	test_random();
	test_supervisor_slot();
	return tap_done();
}
