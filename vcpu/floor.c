/* SPDX-License-Identifier: MIT */
/* Benchmark floors: the cheapest exits this host allows, measured on a vCPU of the platform. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <time.h>

#include "../ring0/ring0.h"
#include "vcpu.h"

#define FLOOR_CODE_VA 0x400000ull

/* One KVM_RUN that must end in the shim's `out` on port. A kick (EINTR) is not ours to handle
 * here, nothing else signals this thread, so the run is simply resumed. */
static int run_to_port(struct vcpu *v, uint16_t port)
{
	while (ioctl(v->fd, KVM_RUN, 0) < 0)
		if (errno != EINTR && errno != EAGAIN)
			return rf_error(-errno, "floor: KVM_RUN: %s", strerror(errno));
	const struct kvm_run *run = v->run;
	if (run->exit_reason != KVM_EXIT_IO || run->io.port != port ||
	    run->io.direction != KVM_EXIT_IO_OUT)
		return rf_error(-EIO, "floor: exit %u port 0x%x at rip 0x%llx, expected `out` to 0x%x",
		                run->exit_reason, run->exit_reason == KVM_EXIT_IO ? run->io.port : 0,
		                (unsigned long long)run->s.regs.regs.rip, port);
	return 0;
}

/* Enters ring 0 by hand at rip on root, through the sync-regs copy as run.c's load_context does
 * for a vCPU that is not parked in the shim (not timed: only the round trips after it are). */
static void enter_ring0(struct vcpu *v, uint64_t root, uint64_t rip, uint64_t rsp)
{
	struct kvm_regs *r = &v->run->s.regs.regs;
	struct kvm_sregs *s = &v->run->s.regs.sregs;
	*r = (struct kvm_regs){ .rip = rip, .rsp = rsp, .rflags = 2 };
	s->cs = v->init_sregs.cs;
	s->ss = v->init_sregs.ss;
	s->cr3 = root;
	memset(s->interrupt_bitmap, 0, sizeof s->interrupt_bitmap);
	v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
}

/* One round trip that ends in an `out` on port. */
typedef int (*round_trip_fn)(struct vcpu *v, uint16_t port);

/* warmup untimed round trips, then n samples of batch round trips each (ns per sample). */
static int sample(struct vcpu *v, round_trip_fn trip, uint16_t port, unsigned warmup, unsigned batch,
                  uint64_t *ns, unsigned n)
{
	int r;
	for (unsigned i = 0; i < warmup; i++)
		if ((r = trip(v, port)) < 0)
			return r;
	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = vcpu_now_ns();
		for (unsigned j = 0; j < batch; j++)
			if ((r = trip(v, port)) < 0)
				return r;
		ns[i] = vcpu_now_ns() - t0;
	}
	return 0;
}

/* The fault left its frame (rip still at the faulting instruction, no error code) exactly
 * where ring0_iret pops it, so pointing RIP and RSP back at the iretq is the whole resume: REGS
 * dirty, no SREGS, no frame. The exit port says which vector the floor runs. */
static int fault_trip(struct vcpu *v, uint16_t port)
{
	struct kvm_regs *r = &v->run->s.regs.regs;
	r->rip = RING0_VA(RING0_OFF_iret);
	r->rsp = v->stack_top_va - RING0_FRAME_OFF;
	v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	return run_to_port(v, port);
}

static int borrow(rf_platform *p, struct vcpu **v)
{
	int r = vcpu_acquire(p, v);
	if (r < 0)
		return r;
	/* Reset first: the vCPU may hold anything a previous switch left (ring 3, a pending event). */
	if ((r = vcpu_bind_thread(*v)) < 0 || (r = vcpu_reset(*v)) < 0) {
		vcpu_release(*v);
		return r;
	}
	return 0;
}

/* Hands the vCPU back the way the pool expects it: reset, so the next switch reloads everything. */
static int give_back(struct vcpu *v, int r)
{
	int rr = vcpu_reset(v);
	vcpu_release(v);
	return r < 0 ? r : rr;
}

int vcpu_floor_out(rf_platform *p, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	struct vcpu *v;
	int r = borrow(p, &v);
	if (r < 0)
		return r;
	enter_ring0(v, p->idle_root, RING0_VA(RING0_OFF_bench_out), v->stack_top_va - 64);
	/* Ring 0 `out` in a loop: nothing to write between runs, KVM skips the `out` itself. */
	r = sample(v, run_to_port, RING0_PORT_BENCH, warmup, batch, ns, n);
	return give_back(v, r);
}

/* Checks the first fault once, so the timed loop can trust the port alone. */
static int check_first_fault(struct vcpu *v, uint16_t port)
{
	int r = run_to_port(v, port);
	if (r < 0)
		return r;
	const uint64_t *f = (const uint64_t *)(v->stack + 4096) - RING0_FRAME_OFF / 8;
	uint16_t cs = v->run->s.regs.sregs.cs.selector;
	if ((cs & 3) != 0 || v->run->s.regs.regs.rsp != v->stack_top_va - RING0_FRAME_OFF ||
	    f[0] != FLOOR_CODE_VA || f[1] != RING0_SEL_UCODE)
		return rf_error(-EIO, "floor: %s frame rip 0x%llx cs 0x%llx (exit cs 0x%x), expected ring 3 at 0x%llx",
		                rf_vector_name(port - RING0_PORT_VECTOR), (unsigned long long)f[0],
		                (unsigned long long)f[1], cs,
		                (unsigned long long)FLOOR_CODE_VA);
	return 0;
}

static int fault_floor_in(rf_platform *p, rf_as *as, uint16_t port, unsigned warmup, unsigned batch,
                          uint64_t *ns, unsigned n)
{
	struct vcpu *v;
	int r = borrow(p, &v);
	if (r < 0)
		return r;
	uint64_t *frame = (uint64_t *)(v->stack + 4096) - RING0_FRAME_OFF / 8;
	frame[0] = FLOOR_CODE_VA;
	frame[1] = RING0_SEL_UCODE;
	frame[2] = 0x202;
	frame[3] = FLOOR_CODE_VA + RF_PAGE_SIZE;   /* never used: neither instruction touches it */
	frame[4] = RING0_SEL_UDATA;
	atomic_store(&as->ran, true);   /* its tables get shadows: destroying it must touch them */
	enter_ring0(v, as->root, RING0_VA(RING0_OFF_iret), v->stack_top_va - RING0_FRAME_OFF);
	if ((r = check_first_fault(v, port)) == 0)
		r = sample(v, fault_trip, port, warmup, batch, ns, n);
	return give_back(v, r);
}

int vcpu_floor_fault(rf_platform *p, unsigned vector, unsigned warmup, unsigned batch, uint64_t *ns,
                     unsigned n)
{
	/* Two faulting instructions that leave RIP on themselves and push no error code:
	 * - div %ecx with every GPR 0: #DE, which KVM never intercepts (VMX and SVM alike), so the
	 *   round trip is the CPU's exception delivery plus our exit: the floor.
	 * - ud2: #UD, which KVM always intercepts (to emulate VMCALL/VMMCALL): an extra exit into
	 *   KVM and an emulation attempt before the #UD reaches the guest. */
	static const unsigned char div_ecx[] = { 0xf7, 0xf1 }, ud2[] = { 0x0f, 0x0b };
	const unsigned char *code = vector == RF_VEC_DE ? div_ecx : vector == RF_VEC_UD ? ud2 : NULL;
	if (!code)
		return rf_error(-EINVAL, "floor: no fault floor for vector %u", vector);
	/* A throwaway address space with one user page holding the instruction, built through the
	 * public API so the page tables are exactly what the platform makes. */
	rf_memory *m = NULL;
	rf_as *as = NULL;
	int r;
	if ((r = rf_memory_create(p, RF_HUGE_SIZE, &m)) < 0)
		return r;
	memcpy(rf_memory_host(m), code, 2);
	if ((r = rf_as_create(p, &as)) == 0 &&
	    (r = rf_as_map(as, FLOOR_CODE_VA, RF_PAGE_SIZE, m, 0, RF_PROT_READ | RF_PROT_EXEC, 0)) == 0)
		r = fault_floor_in(p, as, (uint16_t)(RING0_PORT_VECTOR + vector), warmup, batch, ns, n);
	/* Both can only fail while in use, and nothing uses them any more. */
	rf_as_destroy(as);
	rf_memory_destroy(m);
	return r;
}
