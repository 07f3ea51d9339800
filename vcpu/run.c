/* SPDX-License-Identifier: MIT */
/* The run loop: loads a context into a vCPU, runs it until an event, and stores the user state back. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../ring0/ring0.h"
#include "vcpu.h"

/* RFLAGS bits user code may own; IF is forced on and IOPL, NT, VM, VIF, VIP forced off. */
#define RFLAGS_USER 0x254fd5ull   /* CF PF AF ZF SF TF DF OF RF AC ID */
#define RFLAGS_IF   0x200ull

static void store_user_regs(rf_context *c, const struct kvm_regs *r)
{
	struct rf_regs *u = &c->regs;
	u->rax = r->rax; u->rbx = r->rbx; u->rcx = r->rcx; u->rdx = r->rdx;
	u->rsi = r->rsi; u->rdi = r->rdi; u->rbp = r->rbp;
	u->r8 = r->r8; u->r9 = r->r9; u->r10 = r->r10; u->r11 = r->r11;
	u->r12 = r->r12; u->r13 = r->r13; u->r14 = r->r14; u->r15 = r->r15;
}

/* Writes the context into the vCPU as an iret frame plus registers, so the next KVM_RUN starts at
 * ring0_iret (or ring0_flush_iret when the TLB must be flushed first). */
static void load_context(struct vcpu *v, const rf_context *c, const rf_as *as, uint64_t gen)
{
	struct kvm_regs *r = &v->run->s.regs.regs;
	struct kvm_sregs *s = &v->run->s.regs.sregs;
	const struct rf_regs *u = &c->regs;

	uint64_t *frame = (uint64_t *)(v->stack + 4096) - RING0_FRAME_OFF / 8;
	frame[0] = u->rip;
	frame[1] = RING0_SEL_UCODE;
	frame[2] = (u->rflags & RFLAGS_USER) | RFLAGS_IF | 2;
	frame[3] = u->rsp;
	frame[4] = RING0_SEL_UDATA;

	*r = (struct kvm_regs){
		.rax = u->rax, .rbx = u->rbx, .rcx = u->rcx, .rdx = u->rdx, .rsi = u->rsi,
		.rdi = u->rdi, .rbp = u->rbp, .r8 = u->r8, .r9 = u->r9, .r10 = u->r10,
		.r11 = u->r11, .r12 = u->r12, .r13 = u->r13, .r14 = u->r14, .r15 = u->r15,
		.rsp = v->stack_top_va - RING0_FRAME_OFF, .rflags = 2,
	};
	bool flush = v->loaded_as_id != as->id || v->loaded_gen != gen;
	r->rip = flush ? RING0_VA(RING0_OFF_flush_iret) : RING0_VA(RING0_OFF_iret);
	v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;

	bool sregs = false;
	if (!v->at_shim) {
		/* Not parked in the shim (new, reset, or taken out of ring 3): enter ring 0 by hand. */
		s->cs = v->init_sregs.cs;
		s->ss = v->init_sregs.ss;
		sregs = true;
	}
	if (s->cr3 != as->root || s->fs.base != u->fs_base || s->gs.base != u->gs_base) {
		s->cr3 = as->root;
		s->fs.base = u->fs_base;
		s->gs.base = u->gs_base;
		sregs = true;
	}
	if (sregs) {
		/* A set bit here would queue an interrupt: never send one back by accident. */
		memset(s->interrupt_bitmap, 0, sizeof s->interrupt_bitmap);
		v->run->kvm_dirty_regs |= KVM_SYNC_X86_SREGS;
	}
	v->at_shim = true;
	v->loaded_as_id = as->id;
	if (flush)
		v->loaded_gen = gen;
}

static bool events_quiet(const struct kvm_vcpu_events *e)
{
	return !e->exception.injected && !e->exception.pending && !e->nmi.injected &&
	       !e->interrupt.injected;
}

/* After an EINTR exit: may the loop write a fresh state, and from where? Returns true when the
 * context holds the user's state (taking it out of the vCPU if the guest was in ring 3). */
static bool take_back(struct vcpu *v, rf_context *c)
{
	const struct kvm_regs *r = &v->run->s.regs.regs;
	const struct kvm_sregs *s = &v->run->s.regs.sregs;
	if (!events_quiet(&v->run->s.regs.events))
		return false;   /* an event is being delivered; it ends in the shim, flush after */
	if ((s->cs.selector & 3) == 3) {
		store_user_regs(c, r);
		c->regs.rip = r->rip;
		c->regs.rsp = r->rsp;
		c->regs.rflags = r->rflags;
		c->regs.fs_base = s->fs.base;
		c->regs.gs_base = s->gs.base;
		v->at_shim = false;
		return true;
	}
	/* In ring 0 before the iretq: the frame still holds the context, which is unchanged. */
	return r->rip >= RING0_VA(RING0_OFF_iret) && r->rip <= RING0_VA(RING0_OFF_flush_iretq);
}

static void consume_kick(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, RF_KICK_SIGNAL);
	struct timespec zero = { 0, 0 };
	while (sigtimedwait(&set, NULL, &zero) == RF_KICK_SIGNAL)
		;
}

static int fatal_exit(struct vcpu *v, int err, const char *what)
{
	struct kvm_run *run = v->run;
	rf_error(err, "vCPU %u: %s (exit reason %u, rip 0x%llx, cs 0x%x)", v->id, what, run->exit_reason,
	         (unsigned long long)run->s.regs.regs.rip, run->s.regs.sregs.cs.selector);
	vcpu_reset(v);
	return err;
}

/* Handles an `out` exit from the shim: 1 = event for the caller, 0 = keep running, <0 = error. */
static int shim_exit(struct vcpu *v, rf_context *c, struct rf_event *ev)
{
	struct kvm_run *run = v->run;
	const struct kvm_regs *r = &run->s.regs.regs;
	const struct kvm_sregs *s = &run->s.regs.sregs;
	if (run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 1 || run->io.count != 1)
		return fatal_exit(v, -EIO, "I/O exit that is not the shim's");
	struct exit_view x = {
		.mode = v->p->mode, .port = run->io.port, .rip = r->rip, .rsp = r->rsp, .rcx = r->rcx,
		.r11 = r->r11, .cs = s->cs.selector, .cr2 = s->cr2,
		.stack_top = (const uint64_t *)(v->stack + 4096), .stack_top_va = v->stack_top_va,
	};
	struct exit_decoded d;
	exit_decode(&x, &d);
	switch (d.kind) {
	case EXIT_USER_EVENT:
		store_user_regs(c, r);
		c->regs.rip = d.rip;
		c->regs.rsp = d.rsp;
		c->regs.rflags = d.rflags;
		c->regs.fs_base = s->fs.base;
		c->regs.gs_base = s->gs.base;
		*ev = d.ev;
		return 1;
	case EXIT_USER_REJECTED:
		*ev = d.ev;
		ev->rip = c->regs.rip;
		return 1;
	case EXIT_SHIM_ERROR:
	default:
		return fatal_exit(v, -EIO, d.why);
	}
}

int vcpu_run(struct vcpu *v, rf_context *c, rf_as *as, struct rf_event *ev)
{
	struct kvm_run *run = v->run;
	int r = 0;

	if ((r = vcpu_fpu_load(v, c)) < 0)
		return r;

	atomic_store(&v->tid, vcpu_thread_id());
	atomic_store(&v->running_as, as);
	bool fresh = true;
	for (;;) {
		/* Acknowledge the generation before entering: a shootdown that raced with this either
		 * sees the acknowledgement or sent a signal that makes KVM_RUN return at once. */
		uint64_t gen = atomic_load(&as->gen);
		atomic_store(&v->ack_gen, gen);
		as_shootdown_wake(v->p);
		if (fresh)
			load_context(v, c, as, gen);
		fresh = false;

		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno != EINTR && errno != EAGAIN) {
				r = fatal_exit(v, -errno, strerror(errno));
				break;
			}
			consume_kick();
			if (atomic_load(&as->gen) != v->loaded_gen)
				fresh = take_back(v, c);
			continue;
		}
		if (run->exit_reason == KVM_EXIT_IO) {
			r = shim_exit(v, c, ev);
			if (r != 0)
				break;
			continue;
		}
		const char *what = run->exit_reason == KVM_EXIT_SHUTDOWN      ? "triple fault"
		                 : run->exit_reason == KVM_EXIT_FAIL_ENTRY    ? "entry failed"
		                 : run->exit_reason == KVM_EXIT_INTERNAL_ERROR ? "KVM internal error"
		                 : run->exit_reason == KVM_EXIT_HLT           ? "hlt in the shim"
		                 : run->exit_reason == KVM_EXIT_MMIO          ? "access outside guest memory"
		                                                              : "unexpected exit";
		r = fatal_exit(v, -EIO, what);
		break;
	}

	atomic_store(&v->running_as, NULL);
	as_shootdown_wake(v->p);
	return r == 1 ? 0 : r;
}
