/* SPDX-License-Identifier: MIT */
/* Start-up probes: whether KVM sees the host's page-table edits by itself (EPT/NPT) or keeps shadows
 * that must be told (a shadow MMU), and how a ring-3 SYSCALL arrives (reported; both ways are
 * decoded). */
#include <errno.h>
#include <string.h>

#include "../ring0/ring0.h"
#include "../vcpu/vcpu.h"
#include "platform.h"

#define PROBE_VA 0x400000ull

/* Syscall events so far by how they arrived, over every vCPU. */
static void arrivals(rf_platform *p, uint64_t *ring0, uint64_t *fault)
{
	*ring0 = *fault = 0;
	struct rf_vcpu_stats st;
	for (unsigned i = 0; rf_vcpu_stats(p, i, &st) == 0; i++) {
		*ring0 += st.syscalls_ring0;
		*fault += st.syscalls_fault;
	}
}

static int run_probe(rf_platform *p, rf_memory *m, enum rf_syscall_mode *found)
{
	rf_as *as = NULL;
	rf_context *c = NULL;
	int r;
	static const unsigned char code[] = { 0x0f, 0x05, 0x0f, 0x0b };   /* syscall; ud2 */
	memcpy(rf_memory_host(m), code, sizeof code);
	if ((r = rf_as_create(p, &as)) < 0 || (r = rf_context_create(p, &c)) < 0)
		goto out;
	if ((r = rf_as_map(as, PROBE_VA, RF_HUGE_SIZE, m, 0, RF_PROT_READ | RF_PROT_EXEC, 0)) < 0)
		goto out;
	rf_context_regs(c)->rip = PROBE_VA;
	rf_context_regs(c)->rsp = PROBE_VA;
	uint64_t ring0, fault, ring0_after, fault_after;
	arrivals(p, &ring0, &fault);
	struct rf_event ev;
	if ((r = rf_switch(c, as, &ev)) < 0)
		goto out;
	arrivals(p, &ring0_after, &fault_after);
	bool syscall = ev.type == RF_EVENT_SYSCALL && rf_context_regs(c)->rip == PROBE_VA + 2;
	if (syscall && ring0_after == ring0 + 1 && fault_after == fault)
		*found = RF_SYSCALL_NATIVE;
	else if (syscall && fault_after == fault + 1 && ring0_after == ring0)
		*found = RF_SYSCALL_VIA_FAULT;
	else
		r = rf_error(-ENOTSUP, "syscall probe: SYSCALL from ring 3 gave event %d vector %u at 0x%llx",
		             ev.type, ev.vector, (unsigned long long)ev.rip);
out:
	if (c)
		rf_context_destroy(c);
	if (as)
		rf_as_destroy(as);
	return r;
}

int platform_probe_syscall(rf_platform *p)
{
	rf_memory *m;
	enum rf_syscall_mode found = RF_SYSCALL_AUTO;
	p->mode = RF_SYSCALL_NATIVE;   /* decoding does not depend on it; it is only reported */
	int r = rf_memory_create(p, RF_HUGE_SIZE, &m);
	if (r < 0)
		return r;
	r = run_probe(p, m, &found);
	rf_memory_destroy(m);
	if (r < 0)
		return r;
	p->mode = found;
	return 0;
}

/* ---- the MMU probe ---- */

#define MMU_DATA_VA (PROBE_VA + RF_PAGE_SIZE)

struct mmu_probe {
	rf_platform *p;
	rf_memory *m;
	rf_as *as;
	rf_context *c;
};

/* Runs the probe program from byte `at`: one store of a value to the data page, then ud2. */
static int store_once(struct mmu_probe *t, uint64_t at, struct rf_event *ev)
{
	struct rf_regs *r = rf_context_regs(t->c);
	memset(r, 0, sizeof *r);
	r->rip = PROBE_VA + at;
	r->rbx = MMU_DATA_VA;
	r->rflags = 0x202;
	return rf_switch(t->c, t->as, ev);
}

/* Write-protects the data page after ring 3 has written it, then writes again: true when the
 * second write faulted, i.e. KVM saw the edit. */
static int edit_seen(struct mmu_probe *t, bool *seen)
{
	struct rf_event ev;
	int r;
	if ((r = rf_as_protect(t->as, MMU_DATA_VA, RF_PAGE_SIZE, RF_PROT_READ | RF_PROT_WRITE)) < 0 ||
	    (r = store_once(t, 0, &ev)) < 0)
		return r;
	if (ev.type != RF_EVENT_EXCEPTION || ev.vector != RF_VEC_UD)
		return rf_error(-ENOTSUP, "MMU probe: the first store gave event %d vector %u at 0x%llx", ev.type,
		                ev.vector, (unsigned long long)ev.rip);
	if ((r = rf_as_protect(t->as, MMU_DATA_VA, RF_PAGE_SIZE, RF_PROT_READ)) < 0 || (r = store_once(t, 9, &ev)) < 0)
		return r;
	if (ev.type == RF_EVENT_PAGE_FAULT && ev.fault_addr == MMU_DATA_VA && ev.present &&
	    ev.access == RF_ACCESS_WRITE)
		*seen = true;
	else if (ev.type == RF_EVENT_EXCEPTION && ev.vector == RF_VEC_UD && ev.rip == PROBE_VA + 16)
		*seen = false;
	else
		return rf_error(-ENOTSUP, "MMU probe: the store after write-protecting gave event %d vector %u at 0x%llx",
		                ev.type, ev.vector, (unsigned long long)ev.rip);
	return 0;
}

static int run_mmu_probe(struct mmu_probe *t, enum rf_mmu want)
{
	static const unsigned char code[] = {
		0x48, 0xc7, 0x03, 0x01, 0x00, 0x00, 0x00,   /* movq $1, (%rbx) */
		0x0f, 0x0b,                                 /* ud2 */
		0x48, 0xc7, 0x03, 0x02, 0x00, 0x00, 0x00,   /* movq $2, (%rbx) */
		0x0f, 0x0b,                                 /* ud2 */
	};
	rf_platform *p = t->p;
	int r;
	memcpy(rf_memory_host(t->m), code, sizeof code);
	if ((r = rf_as_create(p, &t->as)) < 0 || (r = rf_context_create(p, &t->c)) < 0 ||
	    (r = rf_as_map(t->as, PROBE_VA, RF_PAGE_SIZE, t->m, 0, RF_PROT_READ | RF_PROT_EXEC, 0)) < 0 ||
	    (r = rf_as_map(t->as, MMU_DATA_VA, RF_PAGE_SIZE, t->m, RF_PAGE_SIZE, RF_PROT_READ | RF_PROT_WRITE, 0)) < 0)
		return r;
	bool seen = false;
	if (want != RF_MMU_SHADOW) {
		/* Edits are not touched yet (p->mmu is AUTO): this sees what KVM does by itself. */
		if ((r = edit_seen(t, &seen)) < 0)
			return r;
		if (seen) {
			p->mmu = RF_MMU_DIRECT;
			return 0;
		}
	}
	p->mmu = RF_MMU_SHADOW;
	if ((r = vcpu_zap_init(p)) < 0 || (r = edit_seen(t, &seen)) < 0)
		return r;
	if (!seen)
		return rf_error(-ENOTSUP, "MMU probe: this KVM keeps a stale translation even after the shadow-MMU "
		                          "flush (a 2-byte ring-0 write to the table page and a CR3 reload); "
		                          "running guests here would not be safe");
	return 0;
}

int platform_probe_mmu(rf_platform *p, enum rf_mmu want)
{
	if (want != RF_MMU_AUTO && want != RF_MMU_SHADOW)
		return rf_error(-EINVAL, "mmu option %d: only AUTO or SHADOW can be asked for", want);
	struct mmu_probe t = { .p = p };
	p->mmu = RF_MMU_AUTO;
	int r = rf_memory_create(p, RF_HUGE_SIZE, &t.m);
	if (r < 0)
		return r;
	r = run_mmu_probe(&t, want);
	if (r < 0)
		p->mmu = RF_MMU_AUTO;
	/* Destroyed after p->mmu is decided, so that a shadow MMU forgets the probe's tables. */
	if (t.c)
		rf_context_destroy(t.c);
	if (t.as)
		rf_as_destroy(t.as);
	rf_memory_destroy(t.m);
	return r;
}
