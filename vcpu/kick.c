/* SPDX-License-Identifier: MIT */
/* The guarded interrupt-window state machine that turns a kick into an injected interrupt only
 * when the guest can take it (see vcpu.h and docs/interrupt-injection.md). No system calls. */
#include "vcpu.h"

#define COUNT(sm, field) atomic_fetch_add_explicit(&(sm)->counts->field, 1, memory_order_relaxed)

/* Planted bugs, one per build of test/fuzz's mutant targets, to prove the fuzzer catches each.
 * KICK_MUTANT is never defined in the library. */
#define MUTANT_IGNORE_IF           1
#define MUTANT_IGNORE_EXC_INJECTED 2
#define MUTANT_READY_ONLY          3
#define MUTANT_INJECT_TWICE        4
#define MUTANT_WINDOW_OFF_EARLY    5
#define MUTANT_NO_DEADLINE         6
#define MUTANT_TAKE_BACK_TF        7   /* takes the state while a single-step trap may be pending */
#define MUTANT_TAKE_BACK_REINJECT  8   /* ... while an exception is being re-injected */
#define MUTANT_TAKE_BACK_RING0     9   /* ... in ring 0 */
#ifndef KICK_MUTANT
#define KICK_MUTANT 0
#endif

void kick_sm_init(struct kick_sm *sm, uint64_t deadline_ns, bool take_back_clean, struct kick_counts *counts)
{
	*sm = (struct kick_sm){ .take_back_clean = take_back_clean, .deadline_ns = deadline_ns, .counts = counts };
}

bool kick_can_inject(const struct kick_sm *sm, const struct kick_obs *o)
{
	/* ready alone is not enough: kernels between 5.10 and fa7a549d report ready=1 while an
	 * exception is being re-injected; the events alone are not enough either: a software
	 * interrupt being re-injected shows only as ready=0. */
	if (KICK_MUTANT == MUTANT_READY_ONLY)
		return o->ready;
	if (KICK_MUTANT == MUTANT_INJECT_TWICE)
		return o->ready && o->if_flag && o->cpl3 && !o->shadow && !o->exc_injected && !o->exc_pending;
	/* TF: the last instruction's step trap may be pending, unseen; it would be delivered first and
	 * our vector behind it, in ring 0. A single-stepping guest exits at its next instruction anyway. */
	return o->ready && (o->if_flag || KICK_MUTANT == MUTANT_IGNORE_IF) && o->cpl3 && !o->shadow &&
	       (!o->exc_injected || KICK_MUTANT == MUTANT_IGNORE_EXC_INJECTED) && !o->exc_pending &&
	       !o->nmi_injected && !o->irq_injected && !o->triple_fault && !o->tf && !sm->in_flight;
}

/* The user state in the exit's registers is exactly the user's when the injection predicate holds
 * (ring 3 at an instruction boundary, nothing of KVM's being delivered, re-injected or pending,
 * nothing of ours queued) and nothing waits that only a guest entry would deliver: a single-step
 * trap (TF set: the trap of the last instruction may be pending, and KVM's events do not show it)
 * or an NMI. docs/interrupt-injection.md has the reasoning. */
bool kick_can_take_back(const struct kick_sm *sm, const struct kick_obs *o)
{
	if (!sm->take_back_clean || (o->exit != KX_EINTR && o->exit != KX_WINDOW && o->exit != KX_HLT))
		return false;
	bool ring3 = o->cpl3 || KICK_MUTANT == MUTANT_TAKE_BACK_RING0;
	bool settled = (o->ready && !o->exc_injected) || KICK_MUTANT == MUTANT_TAKE_BACK_REINJECT;
	bool no_trap = !o->tf || KICK_MUTANT == MUTANT_TAKE_BACK_TF;
	return ring3 && settled && no_trap && o->if_flag && !o->shadow && !o->exc_pending && !o->nmi_injected &&
	       !o->nmi_pending && !o->irq_injected && !o->triple_fault && !sm->in_flight;
}

static unsigned window_off(struct kick_sm *sm)
{
	if (!sm->window)
		return 0;
	sm->window = false;
	return KA_WINDOW_OFF;
}

static unsigned disarm(struct kick_sm *sm)
{
	unsigned acts = window_off(sm);
	if (sm->timer)
		acts |= KA_TIMER_OFF;
	sm->timer = false;
	sm->armed = false;
	sm->idle_windows = 0;
	return acts;
}

/* EINTR, window and HLT exits: the points where injecting is allowed at all. */
static unsigned decide(struct kick_sm *sm, const struct kick_obs *o, unsigned acts)
{
	if (!o->kick_wanted)
		return acts | disarm(sm);   /* a shootdown, a stale window: nothing to inject */
	if (kick_can_take_back(sm, o)) {
		COUNT(sm, clean);
		return acts | disarm(sm) | KA_TAKE_CLEAN;
	}
	if (!sm->armed) {
		/* The timer runs for as long as a kick is being worked on, injected or not: a shim
		 * that never reaches its exit after the delivery must still meet the deadline. (Arming
		 * it only while waiting was a bug the fuzzer found: seeds/bug-lazy-timer-stuck-after-inject.) */
		sm->armed = true;
		sm->armed_ns = o->now_ns;
		sm->idle_windows = 0;
		sm->timer = true;
		acts |= KA_TIMER_ON;
	}
	if (sm->in_flight && KICK_MUTANT != MUTANT_INJECT_TWICE)
		return acts | window_off(sm);   /* queued already: a window now would only spin */
	if (kick_can_inject(sm, o)) {
		sm->in_flight = true;
		COUNT(sm, injected);
		return acts | window_off(sm) | KA_INJECT;
	}
	if (o->now_ns - sm->armed_ns >= sm->deadline_ns && KICK_MUTANT != MUTANT_NO_DEADLINE)
		return acts | disarm(sm) | KA_TAKE_BACK;   /* counted by the loop if it reports */
	if (sm->idle_windows > 0)
		return acts | window_off(sm);   /* the window opened and nothing moved: stop asking,
		                                  * the deadline timer brings the next exit */
	if (KICK_MUTANT == MUTANT_WINDOW_OFF_EARLY && sm->window && o->exit == KX_EINTR)
		return acts | window_off(sm);   /* the bug: gives up the window before it opened */
	if (!sm->window) {
		sm->window = true;
		COUNT(sm, window_requests);
		acts |= KA_WINDOW_ON;
	}
	return acts;
}

unsigned kick_sm_rearm(struct kick_sm *sm, uint64_t now_ns)
{
	sm->armed = true;
	sm->armed_ns = now_ns;
	sm->idle_windows = 0;
	sm->timer = true;
	return KA_TIMER_ON;
}

unsigned kick_sm_step(struct kick_sm *sm, const struct kick_obs *o)
{
	/* The first exit at which our interrupt is no longer queued ends its flight, whether it was
	 * delivered (a KX_KICK follows or is this exit) or dropped (then it is injected again). */
	if (sm->in_flight && !o->irq_injected)
		sm->in_flight = false;
	switch (o->exit) {
	case KX_KICK:
		sm->in_flight = false;
		if (!o->kick_wanted)
			return disarm(sm);   /* no report without a kick */
		COUNT(sm, delivered);
		return disarm(sm) | KA_REPORT;
	case KX_KICK_RING0:
		COUNT(sm, ring0_arrivals);
		sm->in_flight = false;
		return decide(sm, o, KA_RESUME_RING0);
	case KX_EVENT: {
		unsigned acts = 0;
		if (sm->in_flight && o->irq_injected) {
			/* Never leave our interrupt queued behind us: the next context would get it. */
			sm->in_flight = false;
			COUNT(sm, cancelled);
			acts |= KA_CANCEL;
		}
		return acts | disarm(sm);   /* a wanted kick is reported at the next switch */
	}
	case KX_WINDOW:
		COUNT(sm, window_exits);
		sm->idle_windows = o->progress ? 0 : sm->idle_windows + 1;
		sm->window = false;   /* it opened; ask again only if still needed */
		return decide(sm, o, 0) | (sm->window ? 0 : KA_WINDOW_OFF);
	case KX_EINTR:
	case KX_HLT:
		if (o->progress)
			sm->idle_windows = 0;
		return decide(sm, o, 0);
	case KX_OTHER:
	default:
		return 0;
	}
}
