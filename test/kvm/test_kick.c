/* SPDX-License-Identifier: MIT */
/* Kicks on real KVM: a spinning guest is taken back with its exact state, an idle context reports
 * at once without entering, kicks coalesce, go to the right context, land during a fault storm,
 * and can be sent from a signal handler. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "kvmtest.h"

GUEST(spin);
GUEST(count_loop);
GUEST(fault_loop);
extern const unsigned char fault_loop_pf[], fault_loop_pf_end[];

#define LAPS_OFF  (2u << 20)           /* the data area: one lap counter per context */
#define WATCHDOG_S 120

struct runner {
	struct kt *t;
	rf_context *c;
	int rc;
	struct rf_event ev;
	unsigned switches;
	bool skip_faults;                  /* fault_loop: skip the faulting load and go on */
	unsigned interrupted;
};

static void *run_until_interrupted(void *arg)
{
	struct runner *w = arg;
	for (;;) {
		w->rc = rf_switch(w->c, w->t->as, &w->ev);
		__atomic_add_fetch(&w->switches, 1, __ATOMIC_RELAXED);
		if (w->rc || w->ev.type == RF_EVENT_INTERRUPTED || !w->skip_faults)
			break;
		if (w->ev.type != RF_EVENT_PAGE_FAULT)
			break;
		rf_context_regs(w->c)->rip += (uint64_t)(fault_loop_pf_end - fault_loop_pf);
	}
	return NULL;
}

static volatile uint64_t *laps(struct kt *t, unsigned i)
{
	return (volatile uint64_t *)(t->host + LAPS_OFF + 64 * i);
}

/* Waits for the guest's own lap counter to move: it is then running guest code. */
static bool wait_running(struct kt *t, unsigned i, uint64_t beyond)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	while (*laps(t, i) <= beyond) {
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (b.tv_sec - a.tv_sec > WATCHDOG_S)
			return false;
		sched_yield();
	}
	return true;
}

static bool join(pthread_t th)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += WATCHDOG_S;
	if (pthread_timedjoin_np(th, NULL, &dl) == 0)
		return true;
	printf("Bail out! a kicked switch did not return within %d s\n", WATCHDOG_S);
	exit(1);
}

static void prepare_spin(struct kt *t, rf_context *c, unsigned i)
{
	struct rf_regs *r = rf_context_regs(c);
	memset(r, 0, sizeof *r);
	r->rip = KT_CODE_VA;
	r->rsp = KT_STACK_TOP - 4096 * (i + 1);
	r->rflags = 0x202;
	r->rsi = KT_DATA_VA + 64 * i;
	r->r12 = 0x1200 + i;
	r->r13 = 0xabcdef;
	*laps(t, i) = 0;
}

static struct rf_vcpu_stats stats_sum(rf_platform *p)
{
	struct rf_platform_info info;
	struct rf_vcpu_stats s, sum = { 0 };
	rf_platform_info(p, &info);
	for (unsigned i = 0; i < info.vcpus_created; i++)
		if (rf_vcpu_stats(p, i, &s) == 0) {
			uint64_t *a = &sum.exits_io;
			const uint64_t *b = &s.exits_io;
			for (size_t k = 0; k < sizeof s / sizeof(uint64_t); k++)
				a[k] += b[k];
		}
	return sum;
}

static void test_kick_spinning(struct kt *t)
{
	KT_LOAD(t, spin);
	prepare_spin(t, t->c, 0);
	struct runner w = { .t = t, .c = t->c };
	struct rf_vcpu_stats before = stats_sum(t->p);
	uint64_t rbx = 0;
	for (int round = 0; round < 3; round++) {
		pthread_t th;
		uint64_t seen = *laps(t, 0);
		pthread_create(&th, NULL, run_until_interrupted, &w);
		ok(wait_running(t, 0, seen + 1000), "round %d: the guest spins", round);
		rf_kick(t->c);
		join(th);
		struct rf_regs *r = rf_context_regs(t->c);
		ok(w.rc == 0 && w.ev.type == RF_EVENT_INTERRUPTED, "round %d: the spinning guest is interrupted", round);
		ok(r->rip >= KT_CODE_VA && r->rip < KT_CODE_VA + (uint64_t)(spin_end - spin_start) &&
		   r->rip == w.ev.rip, "round %d: at an instruction of the loop (0x%llx)", round,
		   (unsigned long long)r->rip);
		ok(r->rbx > rbx && r->r12 == 0x1200 && r->r13 == 0xabcdef && r->rsi == KT_DATA_VA,
		   "round %d: state exact: the count went on (%llu), other registers untouched", round,
		   (unsigned long long)r->rbx);
		ok((r->rflags & 0x200) && r->rsp == KT_STACK_TOP - 4096, "round %d: flags and stack intact", round);
		rbx = r->rbx;
	}
	struct rf_vcpu_stats after = stats_sum(t->p);
	uint64_t clean = after.kicks_taken_clean - before.kicks_taken_clean;
	ok(clean + after.kicks_delivered - before.kicks_delivered + after.deadline_takebacks - before.deadline_takebacks == 3,
	   "3 kicks taken (%llu clean, %llu injected, %llu delivered, %llu at the deadline)", (unsigned long long)clean,
	   (unsigned long long)(after.kicks_injected - before.kicks_injected),
	   (unsigned long long)(after.kicks_delivered - before.kicks_delivered),
	   (unsigned long long)(after.deadline_takebacks - before.deadline_takebacks));
	struct rf_platform_info info;
	rf_platform_info(t->p, &info);
	/* A spinning guest sits in ring 3 with nothing in flight: the take-back policy takes every kick
	 * at its exit; the inject policy never does. */
	ok(info.kick_policy == RF_KICK_INJECT ? clean == 0 : clean == 3, "the %s policy took %llu of 3 kicks clean",
	   info.kick_policy == RF_KICK_INJECT ? "inject" : "take-back", (unsigned long long)clean);
	ok_eq(after.ring0_arrivals, 0, "no kick ever arrived in ring 0");
}

static void test_kick_idle(struct kt *t)
{
	KT_LOAD(t, count_loop);
	struct rf_regs *r = rf_context_regs(t->c);
	r->rbx = 5;
	struct rf_vcpu_stats before = stats_sum(t->p);
	for (int i = 0; i < 5; i++)
		rf_kick(t->c);   /* five kicks, not running: one report */
	struct rf_event ev;
	kt_switch(t, &ev);
	ok(ev.type == RF_EVENT_INTERRUPTED && r->rip == KT_CODE_VA && r->rbx == 5,
	   "kicked while idle: interrupted at once, the guest never ran");
	struct rf_vcpu_stats after = stats_sum(t->p);
	ok(after.kicks_immediate == before.kicks_immediate + 1 && after.exits_io == before.exits_io,
	   "reported without entering the guest");
	kt_switch(t, &ev);
	ok(ev.type == RF_EVENT_SYSCALL && r->rbx == 6, "the five kicks were one report: the next switch runs");
}

static void test_right_context(struct kt *t)
{
	rf_context *b;
	rf_context_create(t->p, &b);
	KT_LOAD(t, spin);
	prepare_spin(t, t->c, 0);
	prepare_spin(t, b, 1);
	struct runner w = { .t = t, .c = t->c };
	pthread_t th;
	pthread_create(&th, NULL, run_until_interrupted, &w);
	wait_running(t, 0, 1000);
	rf_kick(b);   /* not running: must not disturb a */
	uint64_t seen = *laps(t, 0);
	ok(wait_running(t, 0, seen + 100000), "a kick to another context does not stop the running one");
	rf_kick(t->c);
	join(th);
	ok(w.rc == 0 && w.ev.type == RF_EVENT_INTERRUPTED && w.switches == 1, "its own kick does, once");
	struct rf_event ev;
	ok(rf_switch(b, t->as, &ev) == 0 && ev.type == RF_EVENT_INTERRUPTED && *laps(t, 1) == 0,
	   "the other context reports its kick at its next switch, without running");
	rf_context_destroy(b);
}

static void test_fault_storm(struct kt *t)
{
	KT_LOAD(t, fault_loop);
	struct rf_regs *r = rf_context_regs(t->c);
	r->rdi = 0x50000000;   /* unmapped */
	struct runner w = { .t = t, .c = t->c, .skip_faults = true };
	pthread_t th;
	pthread_create(&th, NULL, run_until_interrupted, &w);
	while (__atomic_load_n(&w.switches, __ATOMIC_RELAXED) < 200)
		sched_yield();
	rf_kick(t->c);
	join(th);
	ok(w.rc == 0 && w.ev.type == RF_EVENT_INTERRUPTED, "a kick during a page-fault storm is reported");
	uint64_t laps_done = r->rbx;
	ok(laps_done + 1 >= w.switches && laps_done <= w.switches,
	   "every fault was reported once around the kick (%llu laps, %u switches)",
	   (unsigned long long)laps_done, w.switches);
	struct rf_event ev;
	kt_switch(t, &ev);
	ok(ev.type == RF_EVENT_PAGE_FAULT, "after the report the storm goes on: no second report");
}

static rf_context *signal_target;

static void on_sigusr1(int sig)
{
	(void)sig;
	rf_kick(signal_target);   /* async-signal-safe */
}

static void test_kick_from_signal_handler(struct kt *t)
{
	KT_LOAD(t, spin);
	prepare_spin(t, t->c, 0);
	signal_target = t->c;
	struct sigaction sa = { .sa_handler = on_sigusr1 };
	sigaction(SIGUSR1, &sa, NULL);
	struct runner w = { .t = t, .c = t->c };
	pthread_t th;
	pthread_create(&th, NULL, run_until_interrupted, &w);
	wait_running(t, 0, 1000);
	raise(SIGUSR1);
	join(th);
	ok(w.rc == 0 && w.ev.type == RF_EVENT_INTERRUPTED, "a kick from a signal handler takes the guest back");
}

static void run_policy(enum rf_kick_policy policy)
{
	struct kt t;
	struct rf_platform_options o = { .max_vcpus = 2, .kick_policy = policy };
	kt_init(&t, &o);
	printf("# kick policy: %s\n", policy == RF_KICK_INJECT ? "inject" : "default (take back when clean)");
	test_kick_spinning(&t);
	test_kick_idle(&t);
	test_right_context(&t);
	test_fault_storm(&t);
	test_kick_from_signal_handler(&t);
	struct rf_vcpu_stats s = stats_sum(t.p);
	printf("# stats: clean %llu injected %llu delivered %llu immediate %llu window requests %llu exits %llu "
	       "takebacks %llu ring0 %llu cancelled %llu\n", (unsigned long long)s.kicks_taken_clean,
	       (unsigned long long)s.kicks_injected, (unsigned long long)s.kicks_delivered,
	       (unsigned long long)s.kicks_immediate, (unsigned long long)s.window_requests,
	       (unsigned long long)s.window_exits, (unsigned long long)s.deadline_takebacks,
	       (unsigned long long)s.ring0_arrivals, (unsigned long long)s.injections_cancelled);
	ok_eq(s.ring0_arrivals, 0, "ring-0 arrivals stay 0");
	kt_fini(&t);
}

int main(void)
{
	run_policy(RF_KICK_DEFAULT);
	run_policy(RF_KICK_INJECT);
	return tap_done();
}
