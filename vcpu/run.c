/* SPDX-License-Identifier: MIT */
/* The run loop: loads a context into a vCPU, runs it until an event, and stores the user state back. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <stdio.h>
#include <asm/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../ring0/ring0.h"
#include "vcpu.h"

/* RFLAGS bits user code may own (popf sets each of them in ring 3); IF is forced on and IOPL, VM,
 * VIF, VIP and the reserved bits forced off. */
#define RFLAGS_USER 0x254fd5ull   /* CF PF AF ZF SF TF IF DF OF NT RF AC ID */
#define RFLAGS_IF   0x200ull

/* Takes the user's state out of the vCPU into c: GPRs and FS/GS bases from the exit, RIP, RSP and
 * RFLAGS from wherever that exit keeps them (the registers in ring 3, the frame in the shim). */
static void store_user_state(struct vcpu *v, rf_context *c, uint64_t rip, uint64_t rsp, uint64_t rflags)
{
	const struct kvm_regs *r = &v->run->s.regs.regs;
	const struct kvm_sregs *s = &v->run->s.regs.sregs;
	struct rf_regs *u = &c->regs;
	u->rax = r->rax; u->rbx = r->rbx; u->rcx = r->rcx; u->rdx = r->rdx;
	u->rsi = r->rsi; u->rdi = r->rdi; u->rbp = r->rbp;
	u->r8 = r->r8; u->r9 = r->r9; u->r10 = r->r10; u->r11 = r->r11;
	u->r12 = r->r12; u->r13 = r->r13; u->r14 = r->r14; u->r15 = r->r15;
	u->rip = rip;
	u->rsp = rsp;
	/* Only what user code can own: kvm-pvm can show VIF, VIP or reserved bits after a ring-3
	 * iretq, and IF is always set in ring 3. */
	u->rflags = (rflags & RFLAGS_USER) | RFLAGS_IF | 2;
	u->fs_base = s->fs.base;
	u->gs_base = s->gs.base;
}

/* DS, ES, FS and GS selectors are not part of a context (struct rf_regs): in 64-bit mode they carry
 * nothing but the FS/GS bases, which are. Whatever user code loaded into them is reset at every
 * load, so no context sees another's. FS/GS bases are set by the caller right after. */
static bool reset_data_segments(struct kvm_sregs *s, const struct kvm_sregs *init)
{
	struct kvm_segment *seg[] = { &s->ds, &s->es, &s->fs, &s->gs };
	const struct kvm_segment *want[] = { &init->ds, &init->es, &init->fs, &init->gs };
	bool changed = false;
	for (unsigned i = 0; i < 4; i++)
		if (seg[i]->selector != want[i]->selector || seg[i]->unusable != want[i]->unusable) {
			uint64_t base = seg[i]->base;
			*seg[i] = *want[i];
			seg[i]->base = base;
			changed = true;
		}
	return changed;
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
	sregs |= reset_data_segments(s, &v->init_sregs);
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

bool vcpu_events_quiet(const struct kvm_vcpu_events *e)
{
	return !e->exception.injected && !e->exception.pending && !e->nmi.injected &&
	       !e->interrupt.injected;
}

void vcpu_take_user(struct vcpu *v, rf_context *c)
{
	const struct kvm_regs *r = &v->run->s.regs.regs;
	store_user_state(v, c, r->rip, r->rsp, r->rflags);
	v->at_shim = false;   /* the next load enters ring 0 by hand */
	/* Kernels without fa7a549d may still hold an INT3/INT n re-injection that no field showed:
	 * the next KVM_RUN clears every event (through sync regs, no ioctl), so the state loaded next
	 * starts clean. */
	memset(&v->run->s.regs.events, 0, sizeof v->run->s.regs.events);
	v->run->kvm_dirty_regs |= KVM_SYNC_X86_EVENTS;
}

bool vcpu_take_back(struct vcpu *v, rf_context *c)
{
	const struct kvm_regs *r = &v->run->s.regs.regs;
	const struct kvm_sregs *s = &v->run->s.regs.sregs;
	if (!vcpu_events_quiet(&v->run->s.regs.events))
		return false;   /* an event is being delivered; it ends in the shim */
	if ((s->cs.selector & 3) == 3) {
		/* A software interrupt being re-injected (INT3, INT n) is invisible in the events: only
		 * ready=0 without a shadow shows it. Then the next exit is its delivery: run on. */
		if (!v->run->ready_for_interrupt_injection && !v->run->s.regs.events.interrupt.shadow)
			return false;
		/* Kernels without fa7a549d report ready=1 even then: vcpu_take_user drops whatever KVM
		 * still holds. */
		vcpu_take_user(v, c);
		return true;
	}
	/* In ring 0 before the iretq: the frame still holds the context, which is unchanged. */
	return r->rip >= RING0_VA(RING0_OFF_iret) && r->rip <= RING0_VA(RING0_OFF_flush_iretq);
}

/* kvm-pvm runs guest ring 3 on the host CPU with the host thread's own DS, ES, FS and GS selectors
 * and does not switch them: what user code loads there stays in this thread after KVM_RUN and is
 * what the next context on this vCPU starts with. Put back the null selectors Linux gives a 64-bit
 * thread. FS and GS go through arch_prctl, which reloads a null selector and keeps the base (a
 * plain mov of a null selector clears the base on Intel). A no-op on any other KVM. */
static void restore_host_selectors(void)
{
	uint16_t ds, es, fs, gs;
	__asm__ volatile("mov %%ds, %0; mov %%es, %1; mov %%fs, %2; mov %%gs, %3"
	                 : "=r"(ds), "=r"(es), "=r"(fs), "=r"(gs));
	if (ds | es)
		__asm__ volatile("mov %0, %%ds; mov %0, %%es" : : "r"(0));
	unsigned long base;
	if (fs && syscall(SYS_arch_prctl, ARCH_GET_FS, &base) == 0)
		syscall(SYS_arch_prctl, ARCH_SET_FS, base);
	if (gs && syscall(SYS_arch_prctl, ARCH_GET_GS, &base) == 0)
		syscall(SYS_arch_prctl, ARCH_SET_GS, base);
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

#define COUNT(v, field) atomic_fetch_add_explicit(&(v)->ctr.field, 1, memory_order_relaxed)

/* Ends the switch with an error that carries the vCPU's last exits (all of them to the platform's
 * exit_log_fd, if one was given), then resets the vCPU. */
static int fatal_exit(struct vcpu *v, int err, const char *what)
{
	struct kvm_run *run = v->run;
	char recent[200];
	exit_log_summary(&v->log, recent, sizeof recent);
	exit_log_dump(&v->log, v->p->exit_log_fd, v->id, what);
	rf_error(err, "vCPU %u: %s (exit reason %u, rip 0x%llx, cs 0x%x; last exits: %s)", v->id, what,
	         run->exit_reason, (unsigned long long)run->s.regs.regs.rip, run->s.regs.sregs.cs.selector, recent);
	vcpu_reset(v);   /* also drops anything queued, so no other context inherits it */
	return err;
}

/* Handles an `out` exit from the shim: 1 = event for the caller, 0 = keep running, <0 = error. */
static int shim_exit(struct vcpu *v, rf_context *c, bool *fresh, struct rf_event *ev)
{
	struct kvm_run *run = v->run;
	const struct kvm_regs *r = &run->s.regs.regs;
	const struct kvm_sregs *s = &run->s.regs.sregs;
	if (run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 1 || run->io.count != 1)
		return fatal_exit(v, -EIO, "I/O exit that is not the shim's");
	if (run->io.port == RING0_PORT_VECTOR + RF_VEC_DF) {
		/* Delivering an exception on IST1 faulted; #DF came on its own stack. Its frame says
		 * where the CPU was (the error code is always 0). */
		const uint64_t *f = (const uint64_t *)(v->df_stack + 4096) - RING0_FRAME_OFF / 8;
		char why[160];
		snprintf(why, sizeof why, "double fault at rip 0x%llx cs 0x%llx rsp 0x%llx rflags 0x%llx (cr2 0x%llx)",
		         (unsigned long long)f[0], (unsigned long long)f[1], (unsigned long long)f[3],
		         (unsigned long long)f[2], (unsigned long long)s->cr2);
		return fatal_exit(v, -EIO, why);
	}
	struct exit_view x = {
		.port = run->io.port, .rip = r->rip, .rsp = r->rsp, .rcx = r->rcx,
		.r11 = r->r11, .cs = s->cs.selector, .cr2 = s->cr2,
		.stack_top = (const uint64_t *)(v->stack + 4096), .stack_top_va = v->stack_top_va,
	};
	struct exit_decoded d;
	exit_decode(&x, &d);
	switch (d.kind) {
	case EXIT_USER_EVENT:
		if (d.arrival == SYSCALL_RING0)
			COUNT(v, syscall_ring0);
		else if (d.arrival == SYSCALL_FAULT)
			COUNT(v, syscall_fault);
		store_user_state(v, c, d.rip, d.rsp, d.rflags);
		if (d.ev.type == RF_EVENT_INTERRUPTED) {
			int k = vcpu_kick_exit(v, c, KX_KICK, fresh, ev);
			if (k == 0)
				*fresh = true;   /* no kick to report: resume the user from its frame */
			return k;
		}
		*ev = d.ev;
		break;
	case EXIT_USER_REJECTED:
		*ev = d.ev;
		ev->rip = c->regs.rip;
		break;
	case EXIT_KICK_RING0:
		return vcpu_kick_exit(v, c, KX_KICK_RING0, fresh, ev);
	case EXIT_SHIM_ERROR:
	default:
		return fatal_exit(v, -EIO, d.why);
	}
	/* A user event ends the switch; the machine drops its window (and any queued kick). */
	int k = vcpu_kick_exit(v, c, KX_EVENT, fresh, ev);
	return k < 0 ? k : 1;
}

static const char *exit_name(unsigned reason)
{
	switch (reason) {
	case KVM_EXIT_SHUTDOWN: return "triple fault";
	case KVM_EXIT_FAIL_ENTRY: return "entry failed";
	case KVM_EXIT_INTERNAL_ERROR: return "KVM internal error";
	case KVM_EXIT_HLT: return "hlt in the shim";
	case KVM_EXIT_MMIO: return "access outside guest memory";
	default: return "unexpected exit";
	}
}

/* The user state is in c, not in the guest: a wanted kick is reported without entering. */
static int report_at_once(struct vcpu *v, rf_context *c, struct rf_event *ev)
{
	vcpu_kick_report(c, ev);
	COUNT(v, immediate);
	return 1;
}

/* One KVM_RUN and what follows it: 1 = *ev for the caller, 0 = run again, <0 = error. */
static int run_once(struct vcpu *v, rf_context *c, rf_as *as, bool *fresh, struct rf_event *ev)
{
	struct kvm_run *run = v->run;
	/* Acknowledge the generation before entering: a shootdown that raced with this either
	 * sees the acknowledgement or sent a signal that makes KVM_RUN return at once. */
	uint64_t gen = atomic_load(&as->gen);
	atomic_store(&v->ack_gen, gen);
	as_shootdown_wake(v->p);
	bool unseen_kick = vcpu_kick_wanted(c) && !v->sm.armed && !v->sm.in_flight;
	if (*fresh) {
		if (unseen_kick)
			return report_at_once(v, c, ev);
		load_context(v, c, as, gen);
		*fresh = false;
	} else if (unseen_kick) {
		/* A kick the machine has not seen: let it see the vCPU at an exit right away. */
		__atomic_store_n(&run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	}

	int rr = ioctl(v->fd, KVM_RUN, 0);
	int err = rr < 0 ? errno : 0;
	__atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	restore_host_selectors();
	exit_log_add(&v->log, run, err, &v->init_sregs);
	if (rr < 0) {
		if (err != EINTR && err != EAGAIN)
			return fatal_exit(v, -err, strerror(err));
		COUNT(v, intr);
		consume_kick();
		if (atomic_load(&as->gen) != v->loaded_gen)
			*fresh = vcpu_take_back(v, c);
		return vcpu_kick_exit(v, c, KX_EINTR, fresh, ev);
	}
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		COUNT(v, io);
		return shim_exit(v, c, fresh, ev);
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		COUNT(v, window);
		return vcpu_kick_exit(v, c, KX_WINDOW, fresh, ev);
	default:
		COUNT(v, other);
		return fatal_exit(v, -EIO, exit_name(run->exit_reason));
	}
}

int vcpu_run(struct vcpu *v, rf_context *c, rf_as *as, struct rf_event *ev)
{
	if (vcpu_kick_wanted(c)) {
		report_at_once(v, c, ev);   /* before even loading its FPU state */
		return 0;
	}
	int r = vcpu_fpu_load(v, c);
	if (r < 0)
		return r;
	/* Publish before the first entry; rf_kick() reads c->vcpu after bumping kick_seq, so either
	 * it signals this thread or run_once sees the kick before KVM_RUN. */
	atomic_store(&v->tid, vcpu_thread_id());
	atomic_store(&v->running_as, as);
	/* Before any walk of its tables: from now on a shadow MMU may hold shadows of them. */
	atomic_store(&as->ran, true);
	atomic_store(&c->vcpu, v);
	bool fresh = true;
	do
		r = run_once(v, c, as, &fresh, ev);
	while (r == 0);
	atomic_store(&c->vcpu, NULL);
	vcpu_kick_quiesce(v);
	atomic_store(&v->running_as, NULL);
	as_shootdown_wake(v->p);
	return r == 1 ? 0 : r;
}
