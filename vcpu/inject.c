/* SPDX-License-Identifier: MIT */
/* Kicks on a real vCPU: what the run loop observes for the state machine, and how its actions are
 * applied to KVM (window request, KVM_INTERRUPT, cancel, deadline timer, take-back). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "../ring0/ring0.h"
#include "vcpu.h"

/* ---- the deadline timer: a per-thread POSIX timer that sends the kick signal to this thread ---- */

static __thread timer_t deadline_timer;
static __thread bool timer_made;
static pthread_key_t timer_key;
static pthread_once_t timer_once = PTHREAD_ONCE_INIT;

static void timer_destroy(void *t)
{
	timer_delete(*(timer_t *)t);
}

static void timer_key_init(void)
{
	pthread_key_create(&timer_key, timer_destroy);
}

static int timer_arm(uint64_t ns)
{
	if (!timer_made) {
		struct sigevent se = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = RF_KICK_SIGNAL };
		se._sigev_un._tid = vcpu_thread_id();
		if (timer_create(CLOCK_MONOTONIC, &se, &deadline_timer) < 0)
			return rf_error(-errno, "timer_create: %s", strerror(errno));
		timer_made = true;
		pthread_once(&timer_once, timer_key_init);
		pthread_setspecific(timer_key, &deadline_timer);
	}
	/* First at the deadline, then every quarter of it in case an expiry raced with an exit. */
	uint64_t every = ns / 4 + 1;
	struct itimerspec its = {
		.it_value = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) },
		.it_interval = { (time_t)(every / 1000000000u), (long)(every % 1000000000u) },
	};
	if (timer_settime(deadline_timer, 0, &its, NULL) < 0)
		return rf_error(-errno, "timer_settime: %s", strerror(errno));
	return 0;
}

static void timer_disarm(void)
{
	struct itimerspec off = { 0 };
	if (timer_made)
		timer_settime(deadline_timer, 0, &off, NULL);
}

/* ---- observing and reporting ---- */

uint64_t vcpu_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

bool vcpu_kick_wanted(const rf_context *c)
{
	return atomic_load(&c->kick_seq) != atomic_load(&c->kick_done);
}

void vcpu_kick_report(rf_context *c, struct rf_event *ev)
{
	/* Covers every kick made up to now; a later one is a new kick. */
	atomic_store(&c->kick_done, atomic_load(&c->kick_seq));
	*ev = (struct rf_event){ .type = RF_EVENT_INTERRUPTED, .vector = RING0_KICK_VECTOR, .rip = c->regs.rip };
}

static bool sm_active(const struct kick_sm *sm)
{
	return sm->armed || sm->in_flight || sm->window || sm->timer;
}

bool vcpu_kick_active(const struct vcpu *v, const rf_context *c)
{
	return sm_active(&v->sm) || vcpu_kick_wanted(c);
}

static void observe(struct vcpu *v, const rf_context *c, enum kick_exit x, bool fresh, struct kick_obs *o)
{
	const struct kvm_run *run = v->run;
	const struct kvm_vcpu_events *e = &run->s.regs.events;
	uint64_t rip = run->s.regs.regs.rip;
	unsigned cpl = run->s.regs.sregs.cs.selector & 3;
	*o = (struct kick_obs){
		.exit = x, .ready = run->ready_for_interrupt_injection, .if_flag = run->if_flag,
		/* A context about to be loaded enters the shim in ring 0, whatever the exit showed. */
		.cpl3 = cpl == 3 && !fresh, .shadow = e->interrupt.shadow != 0,
		.exc_injected = e->exception.injected, .exc_pending = e->exception.pending,
		.nmi_injected = e->nmi.injected, .nmi_pending = e->nmi.pending,
		.irq_injected = e->interrupt.injected, .triple_fault = e->triple_fault.pending,
		.tf = (run->s.regs.regs.rflags & 0x100) != 0,
		.kick_wanted = vcpu_kick_wanted(c), .progress = rip != v->last_rip || cpl != v->last_cpl,
		.now_ns = vcpu_now_ns(),
	};
	v->last_rip = rip;
	v->last_cpl = cpl;
}

static int apply(struct vcpu *v, unsigned acts)
{
	struct kvm_run *run = v->run;
	int r = 0;
	if (acts & KA_WINDOW_OFF)
		run->request_interrupt_window = 0;
	if (acts & KA_WINDOW_ON)
		run->request_interrupt_window = 1;
	if (acts & KA_TIMER_OFF)
		timer_disarm();
	if ((acts & KA_TIMER_ON) && (r = timer_arm(v->p->kick_deadline_ns)) < 0)
		return r;
	if (acts & KA_CANCEL) {
		struct kvm_vcpu_events e = run->s.regs.events;
		e.interrupt.injected = 0;
		if (KVM_IOCTL(v->fd, KVM_SET_VCPU_EVENTS, &e) < 0)
			return rf_error(-errno, "KVM_SET_VCPU_EVENTS (cancel the kick): %s", strerror(errno));
	}
	if (acts & KA_RESUME_RING0) {
		/* The kick's frame is on top of the ring-0 stack: iretq pops it and the shim goes on. */
		run->s.regs.regs.rip = RING0_VA(RING0_OFF_iret);
		run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	}
	if (acts & KA_INJECT) {
		/* Last: nothing is written to the vCPU between this and KVM_RUN. */
		struct kvm_interrupt irq = { .irq = RING0_KICK_VECTOR };
		if (KVM_IOCTL(v->fd, KVM_INTERRUPT, &irq) < 0)
			return rf_error(-errno, "KVM_INTERRUPT: %s", strerror(errno));
	}
	return 0;
}

/* The deadline passed and the guest never took the interrupt. If its state can be taken cleanly
 * (ring 3, or the shim before its iretq, nothing being delivered), take it. Otherwise give it one
 * more deadline: a shim about to exit (or a delivery under way) ends in an exit that reports the
 * event, and the kick at the next switch. Only a vCPU still stuck after that is reset, reporting
 * the state the context was last switched in with: the guest is wedged, nothing better exists. */
static int take_for_kick(struct vcpu *v, rf_context *c, bool *fresh)
{
	if (*fresh || vcpu_take_back(v, c)) {
		*fresh = true;
		v->takeback_declined = false;
		return 1;
	}
	if (!v->takeback_declined) {
		v->takeback_declined = true;
		int r = apply(v, kick_sm_rearm(&v->sm, vcpu_now_ns()));
		return r < 0 ? r : 0;
	}
	v->takeback_declined = false;
	vcpu_reset(v);
	*fresh = true;
	return 1;
}

int vcpu_kick_exit(struct vcpu *v, rf_context *c, enum kick_exit x, bool *fresh, struct rf_event *ev)
{
	if (!vcpu_kick_active(v, c))
		return 0;
	struct kick_obs o;
	observe(v, c, x, *fresh, &o);
	unsigned acts = kick_sm_step(&v->sm, &o);
	exit_log_kick(&v->log, acts, v->sm.armed, v->sm.in_flight);
	int r = apply(v, acts);
	if (r < 0)
		return r;
	if (acts & KA_TAKE_CLEAN) {
		vcpu_take_user(v, c);
		*fresh = true;
		vcpu_kick_report(c, ev);
		return 1;
	}
	if (acts & KA_TAKE_BACK) {
		if ((r = take_for_kick(v, c, fresh)) <= 0)
			return r;
		atomic_fetch_add_explicit(&v->kc.takebacks, 1, memory_order_relaxed);
		vcpu_kick_report(c, ev);
		return 1;
	}
	if (acts & KA_REPORT) {
		vcpu_kick_report(c, ev);
		return 1;
	}
	return 0;
}

void vcpu_kick_quiesce(struct vcpu *v)
{
	/* Leaving the run loop: no window, no timer; an injection can never be left queued (the
	 * machine cancels it at the event that ends the switch). */
	v->run->request_interrupt_window = 0;
	v->takeback_declined = false;
	if (v->sm.timer)
		timer_disarm();
	kick_sm_init(&v->sm, v->p->kick_deadline_ns, v->p->kick_policy == RF_KICK_TAKE_BACK, &v->kc);
}
