/* SPDX-License-Identifier: MIT */
/* Address spaces: page-table roots over system memory, and the shootdown that makes an unmap or a
 * protection change visible on every vCPU before the call returns. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../vcpu/vcpu.h"
#include "platform.h"

static uint64_t *sys_table(void *opaque, uint64_t gpa)
{
	return sysmem_ptr(&((rf_platform *)opaque)->sys, gpa);
}

static int sys_alloc(void *opaque, uint64_t *gpa)
{
	return sysmem_alloc(&((rf_platform *)opaque)->sys, gpa);
}

static void sys_free_now(void *opaque, uint64_t gpa)
{
	sysmem_free(&((rf_platform *)opaque)->sys, gpa);
}

void as_sys_pt_mem(rf_platform *p, struct pt_mem *m)
{
	*m = (struct pt_mem){ p, sys_table, sys_alloc, sys_free_now, NULL };
}

static uint64_t *as_table(void *opaque, uint64_t gpa) { return sys_table(((rf_as *)opaque)->p, gpa); }
static int as_alloc(void *opaque, uint64_t *gpa) { return sys_alloc(((rf_as *)opaque)->p, gpa); }

/* A table is only freed once no vCPU can still walk it: after the next shootdown. */
static void as_retire(void *opaque, uint64_t gpa)
{
	rf_as *as = opaque;
	if (as->n_retired == as->cap_retired) {
		unsigned cap = as->cap_retired ? 2 * as->cap_retired : 16;
		uint64_t *n = realloc(as->retired, cap * sizeof *n);
		if (!n)
			return;   /* leaks one page rather than risk a use after free */
		as->retired = n;
		as->cap_retired = cap;
	}
	as->retired[as->n_retired++] = gpa;
}

/* Shadow MMU: remember the table page, so that it is touched before the change is published. */
static void as_changed(void *opaque, uint64_t gpa)
{
	rf_as *as = opaque;
	if (as->n_dirty && as->dirty[as->n_dirty - 1] == gpa)
		return;
	if (as->n_dirty == as->cap_dirty) {
		unsigned cap = as->cap_dirty ? 2 * as->cap_dirty : 16;
		uint64_t *n = realloc(as->dirty, cap * sizeof *n);
		if (!n) {
			as->dirty_lost = true;   /* then every table of the space is touched */
			return;
		}
		as->dirty = n;
		as->cap_dirty = cap;
	}
	as->dirty[as->n_dirty++] = gpa;
}

static void as_pt_mem(rf_as *as, struct pt_mem *m)
{
	*m = (struct pt_mem){ as, as_table, as_alloc, as_retire,
	                      as->p->mmu == RF_MMU_SHADOW ? as_changed : NULL };
}

/* ---- shadow MMU: table pages touched from guest ring 0 before a change is published ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void zap_add(void *arg, uint64_t gpa)
{
	vcpu_zap_add(arg, gpa);
}

/* Touches every changed page, then every retired one: a retired table is unreachable only once
 * its parent's shadow has been dropped, and must have no shadow left when it is reused. Nothing
 * to do while no vCPU has walked the space's tables (reused pages were touched when freed). */
static int touch_tables(rf_as *as)
{
	rf_platform *p = as->p;
	int r = 0;
	if (p->mmu == RF_MMU_SHADOW && atomic_load(&as->ran) &&
	    (as->n_dirty || as->dirty_lost || as->n_retired)) {
		struct zap_batch b;
		vcpu_zap_begin(p, &b);
		if (as->dirty_lost) {
			struct pt_mem m;
			as_sys_pt_mem(p, &m);
			pt_tables(&m, as->root, zap_add, &b);
		} else {
			if (as->n_dirty)   /* qsort wants a valid pointer even for no elements */
				qsort(as->dirty, as->n_dirty, sizeof *as->dirty, cmp_u64);
			for (unsigned i = 0; i < as->n_dirty; i++)
				vcpu_zap_add(&b, as->dirty[i]);
		}
		for (unsigned i = 0; i < as->n_retired; i++)
			vcpu_zap_add(&b, as->retired[i]);
		if ((r = vcpu_zap_end(&b)) < 0)
			atomic_store(&p->unsafe, true);
	}
	as->n_dirty = 0;
	as->dirty_lost = false;
	return r;
}

/* Frees the retired tables once touch_tables() has made a shadow MMU forget them. A failed touch
 * keeps them: a shadow of a reused page would bring its old translations back. */
static void release_retired(rf_as *as, int touched)
{
	if (touched == 0)
		for (unsigned i = 0; i < as->n_retired; i++)
			sysmem_free(&as->p->sys, as->retired[i]);
	as->n_retired = 0;
}

int rf_as_create(rf_platform *p, rf_as **out)
{
	rf_as *as = calloc(1, sizeof *as);
	if (!as)
		return rf_error(-ENOMEM, "out of memory");
	int r = sysmem_alloc(&p->sys, &as->root);
	if (r < 0) {
		free(as);
		return r;
	}
	((uint64_t *)sysmem_ptr(&p->sys, as->root))[511] = p->kernel_pdpt | PTE_P | PTE_RW;
	as->p = p;
	as->id = atomic_fetch_add(&p->next_id, 1);
	pthread_mutex_init(&as->lock, NULL);
	atomic_init(&as->gen, 1);
	pthread_mutex_lock(&p->lock);
	p->n_spaces++;
	pthread_mutex_unlock(&p->lock);
	*out = as;
	return 0;
}

int rf_as_destroy(rf_as *as)
{
	if (!as)
		return 0;
	if (atomic_load(&as->running))
		return rf_error(-EBUSY, "address space is running on %d vCPUs", atomic_load(&as->running));
	rf_platform *p = as->p;
	struct pt_mem m;
	/* No vCPU runs it, and any vCPU that ran it reloads CR3 (ids are never reused), so the
	 * tables can go as soon as a shadow MMU has forgotten them. */
	as_pt_mem(as, &m);
	pt_destroy(&m, as->root);
	/* A failed touch leaves the tables allocated (and the platform marked unsafe); the space is
	 * gone either way, so this still succeeds. */
	release_retired(as, touch_tables(as));
	for (unsigned i = 0; i < as->n_uses; i++)
		atomic_fetch_sub(&as->uses[i].m->maps, 1);
	free(as->uses);
	free(as->retired);
	free(as->dirty);
	pthread_mutex_destroy(&as->lock);
	pthread_mutex_lock(&p->lock);
	p->n_spaces--;
	pthread_mutex_unlock(&p->lock);
	free(as);
	return 0;
}

/* ---- which memories an address space maps, so a mapped memory cannot be destroyed ---- */

static int use_add(rf_as *as, rf_memory *m, uint64_t pages)
{
	for (unsigned i = 0; i < as->n_uses; i++)
		if (as->uses[i].m == m) {
			as->uses[i].pages += pages;
			return 0;
		}
	void *n = realloc(as->uses, (as->n_uses + 1) * sizeof as->uses[0]);
	if (!n)
		return rf_error(-ENOMEM, "out of memory");
	as->uses = n;
	as->uses[as->n_uses].m = m;
	as->uses[as->n_uses++].pages = pages;
	atomic_fetch_add(&m->maps, 1);
	return 0;
}

struct unmap_count {
	rf_as *as;
	bool changed;
};

static void use_cleared(void *arg, uint64_t gpa, uint64_t size)
{
	struct unmap_count *u = arg;
	rf_as *as = u->as;
	u->changed = true;
	for (unsigned i = 0; i < as->n_uses; i++) {
		rf_memory *m = as->uses[i].m;
		if (gpa < m->gpa || gpa >= m->gpa + m->size)
			continue;
		as->uses[i].pages -= size / RF_PAGE_SIZE;
		if (!as->uses[i].pages) {
			atomic_fetch_sub(&m->maps, 1);
			as->uses[i] = as->uses[--as->n_uses];
		}
		return;
	}
}

static void note_cleared(void *arg, uint64_t gpa, uint64_t size)
{
	(void)gpa;
	(void)size;
	((struct unmap_count *)arg)->changed = true;
}

/* ---- shootdown ---- */

void as_shootdown_wake(rf_platform *p)
{
	if (atomic_load(&p->shoot_waiters)) {
		pthread_mutex_lock(&p->shoot_lock);
		pthread_cond_broadcast(&p->shoot_cv);
		pthread_mutex_unlock(&p->shoot_lock);
	}
}

static bool stale(struct vcpu *v, rf_as *as, uint64_t gen)
{
	return atomic_load(&v->running_as) == as && atomic_load(&v->ack_gen) < gen;
}

/* Called with as->lock held after the tables changed: makes a shadow MMU see the change, bumps the
 * generation and waits until every vCPU running as has acknowledged it (it then reloads CR3 before
 * any user instruction), then frees the retired tables. */
static int shootdown(rf_as *as)
{
	rf_platform *p = as->p;
	int r = touch_tables(as);
	uint64_t gen = atomic_fetch_add(&as->gen, 1) + 1;
	unsigned n = atomic_load(&p->n_vcpus);
	for (unsigned i = 0; i < n; i++) {
		struct vcpu *v = atomic_load(&p->vcpus[i]);
		if (!v || !stale(v, as, gen))
			continue;
		syscall(SYS_tgkill, getpid(), atomic_load(&v->tid), RF_KICK_SIGNAL);
		pthread_mutex_lock(&p->shoot_lock);
		atomic_fetch_add(&p->shoot_waiters, 1);
		while (stale(v, as, gen))
			pthread_cond_wait(&p->shoot_cv, &p->shoot_lock);
		atomic_fetch_sub(&p->shoot_waiters, 1);
		pthread_mutex_unlock(&p->shoot_lock);
	}
	release_retired(as, r);
	return r;
}

/* ---- map, unmap, protect ---- */

static int check_range(uint64_t va, uint64_t len, uint64_t align)
{
	if (!len || va % align || len % align)
		return rf_error(-EINVAL, "range 0x%llx+0x%llx is empty or not %llu-aligned",
		                (unsigned long long)va, (unsigned long long)len, (unsigned long long)align);
	if (va >= RF_USER_END || len > RF_USER_END - va)
		return rf_error(-EINVAL, "range 0x%llx+0x%llx leaves the user half",
		                (unsigned long long)va, (unsigned long long)len);
	return 0;
}

int rf_as_map(rf_as *as, uint64_t va, uint64_t len, rf_memory *m, uint64_t offset, unsigned prot,
              unsigned flags)
{
	bool huge = flags & RF_MAP_HUGE;
	uint64_t align = huge ? RF_HUGE_SIZE : RF_PAGE_SIZE;
	int r = check_range(va, len, align);
	if (r < 0)
		return r;
	if (!m || m->p != as->p || offset % align || offset > m->size || len > m->size - offset)
		return rf_error(-EINVAL, "offset 0x%llx+0x%llx is not an aligned range of the memory",
		                (unsigned long long)offset, (unsigned long long)len);
	if (!prot || (prot & ~(RF_PROT_READ | RF_PROT_WRITE | RF_PROT_EXEC)) || (flags & ~RF_MAP_HUGE))
		return rf_error(-EINVAL, "bad protection 0x%x or flags 0x%x", prot, flags);
	struct pt_mem pm;
	as_pt_mem(as, &pm);
	pthread_mutex_lock(&as->lock);
	struct unmap_count u = { as, false };
	r = pt_unmap(&pm, as->root, va, len, use_cleared, &u);
	if (r == 0 && (r = pt_map(&pm, as->root, va, m->gpa + offset, len, pt_leaf_flags(prot), huge)) == 0)
		r = use_add(as, m, len / RF_PAGE_SIZE);
	if (r < 0) {
		/* Out of table pages (or memory) half way: take the partial mapping out again; its
		 * pages were never counted as uses. */
		struct unmap_count partial = { as, false };
		pt_unmap(&pm, as->root, va, len, note_cleared, &partial);
		u.changed = true;
	}
	if (u.changed || r < 0 || as->n_retired || as->n_dirty || as->dirty_lost) {
		int s = shootdown(as);
		r = r < 0 ? r : s;
	}
	pthread_mutex_unlock(&as->lock);
	return r;
}

int rf_as_unmap(rf_as *as, uint64_t va, uint64_t len)
{
	int r = check_range(va, len, RF_PAGE_SIZE);
	if (r < 0)
		return r;
	struct pt_mem pm;
	as_pt_mem(as, &pm);
	pthread_mutex_lock(&as->lock);
	struct unmap_count u = { as, false };
	r = pt_unmap(&pm, as->root, va, len, use_cleared, &u);
	if (u.changed || as->n_retired || as->n_dirty || as->dirty_lost) {
		int s = shootdown(as);
		r = r < 0 ? r : s;
	}
	pthread_mutex_unlock(&as->lock);
	return r;
}

int rf_as_protect(rf_as *as, uint64_t va, uint64_t len, unsigned prot)
{
	int r = check_range(va, len, RF_PAGE_SIZE);
	if (r < 0)
		return r;
	if (!prot || (prot & ~(RF_PROT_READ | RF_PROT_WRITE | RF_PROT_EXEC)))
		return rf_error(-EINVAL, "bad protection 0x%x", prot);
	struct pt_mem pm;
	as_pt_mem(as, &pm);
	pthread_mutex_lock(&as->lock);
	r = pt_protect(&pm, as->root, va, len, pt_leaf_flags(prot));
	if (r == -ENOENT)
		r = rf_error(-ENOMEM, "range 0x%llx+0x%llx is not fully mapped", (unsigned long long)va,
		             (unsigned long long)len);
	else if (r < 0)
		rf_error(r, "out of page-table pages splitting a 2 MiB page");
	if (r != -ENOMEM || as->n_dirty || as->dirty_lost) {
		/* A failed split may still have replaced a 2 MiB leaf by an equal table. */
		int s = shootdown(as);
		r = r < 0 ? r : s;
	}
	pthread_mutex_unlock(&as->lock);
	return r;
}
