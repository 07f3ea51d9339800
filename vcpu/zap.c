/* SPDX-License-Identifier: MIT */
/* The maintenance vCPU: on a shadow MMU, touches changed page-table pages from guest ring 0 so that
 * KVM drops its stale shadows of them before an address-space change returns (docs/shadow-mmu.md). */
#include <errno.h>
#include <string.h>

#include "../ring0/ring0.h"
#include "vcpu.h"

#define ZAP_LIST_MAX (4096 / 8)

/* A root with the shared supervisor half and, in slot 510, all of system memory as 2 MiB pages:
 * supervisor-only (no PTE_US), writable, never executable. Only the maintenance vCPU loads it. */
static int build_root(rf_platform *p)
{
	uint64_t pdpt, pd;
	int r;
	if ((r = sysmem_alloc(&p->sys, &p->zap_root)) < 0 || (r = sysmem_alloc(&p->sys, &pdpt)) < 0 ||
	    (r = sysmem_alloc(&p->sys, &pd)) < 0 || (r = sysmem_alloc(&p->sys, &p->zap_list)) < 0)
		return r;
	uint64_t *root = sysmem_ptr(&p->sys, p->zap_root);
	root[511] = p->kernel_pdpt | PTE_P | PTE_RW;
	root[(RING0_ALIAS_VA >> 39) & 511] = pdpt | PTE_P | PTE_RW;
	((uint64_t *)sysmem_ptr(&p->sys, pdpt))[0] = pd | PTE_P | PTE_RW;
	uint64_t *pde = sysmem_ptr(&p->sys, pd);
	_Static_assert(RF_SYS_SIZE <= 512 * (2ull << 20), "the alias is one page directory");
	for (uint64_t i = 0; i < p->sys.size >> 21; i++)
		pde[i] = (i << 21) | PTE_P | PTE_RW | PTE_PS | PTE_A | PTE_D | PTE_NX;
	return 0;
}

int vcpu_zap_init(rf_platform *p)
{
	if (p->zap_vcpu)
		return 0;
	int r = build_root(p);
	if (r < 0)
		return r;
	struct vcpu *v;
	if ((r = vcpu_create(p, RING0_MAINT_VCPU, &v)) < 0)
		return r;
	v->init_sregs.cr3 = p->zap_root;
	if ((r = vcpu_reset(v)) < 0) {
		vcpu_destroy(v);
		return r;
	}
	p->zap_vcpu = v;
	return 0;
}

/* Runs ring0_zap over the first n entries of the list page. */
static int zap_run(rf_platform *p, unsigned n)
{
	struct vcpu *v = p->zap_vcpu;
	struct kvm_run *run = v->run;
	run->s.regs.regs = (struct kvm_regs){
		.rip = RING0_VA(RING0_OFF_zap), .rsi = RING0_ALIAS_VA + p->zap_list, .rcx = n,
		.rsp = v->stack_top_va, .rflags = 2,
	};
	run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
	int rr;
	do   /* a signal for this thread only delays the loop; its registers carry the progress */
		rr = ioctl(v->fd, KVM_RUN, 0);
	while (rr < 0 && (errno == EINTR || errno == EAGAIN));
	const struct kvm_regs *r = &run->s.regs.regs;
	if (rr == 0 && run->exit_reason == KVM_EXIT_IO && run->io.port == RING0_PORT_ZAP && r->rcx == 0 &&
	    (r->rip == RING0_VA(RING0_OFF_zap_out) || r->rip == RING0_VA(RING0_OFF_zap_out) + 2))
		return 0;
	int err = rr < 0 ? -errno : -EIO;
	rf_error(err, "shadow-MMU maintenance vCPU failed touching %u table pages (KVM_RUN %d, exit %u, port 0x%x, "
	         "rip 0x%llx, rcx %llu): page-table changes may not be visible",
	         n, rr, run->exit_reason, run->io.port, (unsigned long long)r->rip, (unsigned long long)r->rcx);
	vcpu_reset(v);
	return err;
}

void vcpu_zap_begin(rf_platform *p, struct zap_batch *b)
{
	pthread_mutex_lock(&p->zap_lock);
	*b = (struct zap_batch){ .p = p, .list = sysmem_ptr(&p->sys, p->zap_list) };
}

void vcpu_zap_add(struct zap_batch *b, uint64_t gpa)
{
	if (b->n && b->list[b->n - 1] == RING0_ALIAS_VA + gpa)
		return;
	b->list[b->n++] = RING0_ALIAS_VA + gpa;
	b->pages++;
	if (b->n == ZAP_LIST_MAX) {
		if (!b->err)
			b->err = zap_run(b->p, b->n);
		b->n = 0;
	}
}

int vcpu_zap_end(struct zap_batch *b)
{
	if (!b->err && b->n)
		b->err = zap_run(b->p, b->n);
	atomic_fetch_add(&b->p->zap_batches, 1);
	atomic_fetch_add(&b->p->zap_pages, b->pages);
	pthread_mutex_unlock(&b->p->zap_lock);
	return b->err;
}
