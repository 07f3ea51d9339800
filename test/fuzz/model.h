/* SPDX-License-Identifier: MIT */
/* A model of one KVM vCPU without an in-kernel irqchip, for the kick fuzzer: the guest, KVM's event queue.
 *
 * Contracts:
 * - The model is the reference the state machine (vcpu/kick.c) is checked against; it follows
 *   docs/interrupt-injection.md ("what KVM does"). Where KVM's code was simplified, the comment in
 *   model.c says how and which way the simplification errs.
 * - The harness plays ringfence's run loop: it calls model_enter() for KVM_RUN, model_unit() for each
 *   guest step, and the model_* host operations for what the loop writes (KVM_INTERRUPT, the window
 *   request, KVM_SET_VCPU_EVENTS, a context load). Each returns the exit it caused, MX_NONE if none.
 * - Time is a virtual clock of ticks; one guest step (an instruction or an event delivery) is one tick.
 * - m->bad is set (never cleared) when the model sees something no correct run loop may cause; the
 *   harness turns it into a violation.
 */
#ifndef RINGFENCE_KICK_FUZZ_MODEL_H
#define RINGFENCE_KICK_FUZZ_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* What KVM_RUN's ready_for_interrupt_injection means on the modelled kernel. On every real kernel
 * it includes kvm_arch_interrupt_allowed() (IF=1, no shadow) and an empty interrupt slot, so there
 * the machine's own if_flag, shadow and in-flight checks are redundant with ready; MK_LIAR is what
 * makes those checks, and the planted bugs that drop them, observable. */
enum model_kernel {
	MK_FIXED,   /* fa7a549d (5.14, 5.10.y): IF, no shadow, nothing queued, re-injected or pending */
	MK_NOFIX,   /* 71cc849b..fa7a549d: IF, no shadow, the interrupt slot free; ignores an exception
	             * or NMI being re-injected and a pending exception (INT3/INTO included, which the
	             * events hide too: the one case no injector can see) */
	MK_LIAR,    /* a hypervisor bug, adversarial but fair: ready carries only what the events cannot
	             * show (a software interrupt or INT3/INTO being re-injected), 1 otherwise */
};

/* Where the guest is. G_USER is ring 3; the others are the shim in ring 0. */
enum model_pos {
	G_USER,
	G_IRET,    /* at ring0_iret after a context load: the next step is the iretq to user */
	G_EVENT,   /* in an exception, INT or syscall entry: the next step is its `out` (a user event) */
	G_KICK,    /* in the kick vector's entry: the next step is its `out` (ring 3 or ring-0 port) */
	G_NMI,     /* in the NMI handler: the next step is its iretq */
	G_STUCK,   /* a shim bug: ring-0 code that loops and never returns (interleaving 17) */
};

struct model_frame {
	uint8_t pos, cpl;
	bool if_;
};

enum model_exc { EXC_NONE, EXC_PENDING, EXC_INJECTED };

/* What ended a KVM_RUN, as the run loop classifies it (maps 1:1 to enum kick_exit). */
enum model_exit { MX_NONE, MX_EINTR, MX_WINDOW, MX_HLT, MX_EVENT, MX_KICK, MX_KICK_RING0, MX_OTHER };

#define MODEL_DEPTH 8

struct model {
	enum model_kernel kernel;
	struct model_frame st[MODEL_DEPTH];   /* st[depth - 1] is where the guest is */
	unsigned depth;
	bool shadow;              /* STI / MOV SS: the next instruction cannot be interrupted */
	bool tf;                  /* the user's RFLAGS.TF (visible in its registers) */
	bool step_trap;           /* a single-step #DB trap is pending after the last instruction;
	                           * KVM's events do not show it */
	bool hostile_next;        /* a shim bug: the next iretq to ring 3 leaves IF=0 */
	bool delivery_exits;      /* the next event delivery hits an EPT violation halfway */
	uint64_t pc;              /* grows whenever RIP would change: the loop's "progress" */

	/* KVM's event state (vcpu->arch), visible or not in KVM_GET_VCPU_EVENTS. */
	enum model_exc exc;
	bool exc_soft;            /* INT3/INTO: hidden from the events (no instruction length) */
	bool nmi_pending, nmi_injected, nmi_blocked;
	bool softint;             /* INT n being re-injected: in the interrupt slot, hidden */
	bool irq_ours;            /* our KVM_INTERRUPT, queued (interrupt.injected, visible) */
	int irq_owner;            /* the context that was running when it was injected */
	bool irq_excused;         /* injected while every visible field said yes (see harness.c) */

	/* The host side of KVM_RUN. */
	bool window;              /* kvm_run.request_interrupt_window */
	bool signal;              /* a signal is pending for the vCPU thread */
	bool immediate_exit;
	bool in_run;              /* the thread is inside KVM_RUN */
	bool timer;               /* the loop's deadline timer is armed */
	uint64_t clock, next_tick, period;

	unsigned drops, ring0_deliveries, deliveries;
	const char *bad;
};

void model_init(struct model *m, enum model_kernel k, uint64_t timer_period);

/* KVM_RUN: returns MX_EINTR when it returns before entering, MX_NONE when the guest may run. */
enum model_exit model_enter(struct model *m);
/* One guest step (only while in_run). op is the input's letter for what the guest does next;
 * it only matters when the guest executes an instruction (not while KVM delivers an event). */
enum model_exit model_unit(struct model *m, char op);
/* Whether the next model_unit() is an instruction (false: KVM delivers an event first). */
bool model_next_is_instruction(const struct model *m);

/* Host operations (the run loop, other threads). */
enum model_exit model_signal(struct model *m);     /* a signal to the vCPU thread */
void model_kvm_interrupt(struct model *m, int owner, bool excused);
void model_cancel(struct model *m);                /* KVM_SET_VCPU_EVENTS, interrupt.injected=0 */
void model_reset_events(struct model *m);          /* vcpu_reset(): KVM_SET_VCPU_EVENTS all zero */
void model_load(struct model *m);                  /* load_context(): regs+sregs, RIP at ring0_iret */
void model_resume_ring0(struct model *m);          /* back from the ring-0 kick entry */
void model_resume_user(struct model *m);           /* iretq from the ring-3 kick frame */

/* What KVM reports at an exit, and the truth. */
bool model_ready(const struct model *m);
/* The guest takes an interrupt injected now at the very next entry, in ring 3, as a user would. */
bool model_can_take(const struct model *m);
/* What taking the user state from the registers now would lose, or NULL when it is exact. */
const char *model_take_loses(const struct model *m);
const struct model_frame *model_top(const struct model *m);
bool model_events_quiet(const struct model *m);    /* nothing in flight in KVM at all */

const char *model_exit_name(enum model_exit x);
const char *model_kernel_name(enum model_kernel k);

/* harness.c: the shared core of the fuzz target and the seed replay. An input is one letter per
 * host event or guest step (the alphabet is in harness.c); whitespace is skipped and '#' starts a
 * comment up to the end of the line, so seeds are written by hand; any other byte stands for a
 * letter too, so every mutation is an input. */
struct kick_fuzz_stats {
	unsigned ops, kicks, injects, excused, reports, kick_reports, takebacks, switch_reports, clean;
	unsigned hidden_losses;  /* clean takes excused: what they lost no field showed (take_clean) */
	unsigned ring0, window_requests, window_exits, events, eintr, hlt, cancels, drops, max_late;
};

/* 0: every invariant held; 1: violated, *why says which, at which step. trace: NULL or a stream
 * that receives every step, exit and action. */
int kick_fuzz_run_stats(const uint8_t *data, size_t n, struct kick_fuzz_stats *st, FILE *trace,
                        char *why, size_t whylen);
int kick_fuzz_run(const uint8_t *data, size_t n, char *why, size_t whylen);
/* The steps an input stands for, as letters (a crash artifact made readable, or a seed). */
size_t kick_fuzz_decode(const uint8_t *data, size_t n, char *out, size_t max);

#endif
