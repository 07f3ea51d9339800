/* SPDX-License-Identifier: MIT */
/* Kick stress on real KVM: kicker threads kick contexts at random moments while runner threads
 * switch several contexts per vCPU through a guest mixing syscalls, #PF, #UD, #GP, #DE, a
 * single-stepped instruction (TF), MOV SS shadows, tight spins and long loops. Every kick must be
 * reported exactly once to its context, the guest's event sequence must be exactly what its code
 * makes, no kick may change guest state, nothing may hang (watchdog), and no kick may arrive in
 * ring 0. RINGFENCE_STRESS_KICKS sets the number of kicks (CI: 10000); RINGFENCE_KICK_POLICY
 * (take-back or inject) the platform's kick policy. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "kvmtest.h"

GUEST(stress);
extern const unsigned char stress_pf[], stress_pf_end[], stress_ud[], stress_ud_end[], stress_gp[],
	stress_gp_end[], stress_de[], stress_de_end[], stress_db[], stress_db_end[];

#define RUNNERS       2     /* = vCPUs */
#define PER_RUNNER    3     /* contexts per vCPU */
#define CONTEXTS      (RUNNERS * PER_RUNNER)
#define KICKERS       2
#define MAGIC_RBP     0x5eed5eed5eed5eedull
#define XMM7_OFF      (160 + 16 * 7)
#define WATCHDOG_S    120

static struct kt t;
static unsigned long total_kicks;
static atomic_ulong kicks[CONTEXTS], reports[CONTEXTS], issued;
static atomic_int stop, failures;
static rf_context *ctx[CONTEXTS];
static atomic_uint current[RUNNERS];   /* the context each runner is switching now */
static uint64_t last_r12[CONTEXTS], events[CONTEXTS];

static uint64_t va(const unsigned char *label) { return KT_CODE_VA + (uint64_t)(label - stress_start); }

static void fail(unsigned i, const char *what, uint64_t a, uint64_t b)
{
	if (atomic_fetch_add(&failures, 1) < 20)
		printf("# context %u: %s (0x%llx, 0x%llx)\n", i, what, (unsigned long long)a, (unsigned long long)b);
}

/* The next r12 at which the guest's code exits by itself (r12 % 8 in 0..4, and 6: the step trap). */
static uint64_t next_exit(uint64_t r12)
{
	do
		r12++;
	while ((r12 & 7) > 4 && (r12 & 7) != 6);
	return r12;
}

static void check_invariants(unsigned i, const struct rf_regs *r)
{
	if (r->r15 != i || r->rbp != MAGIC_RBP || r->rdi != 0x60000000 || r->r14 == 0)
		fail(i, "a register the guest never writes changed", r->r15, r->rbp);
}

/* One event from context i: checks it against what the guest's code must do, then sets up the
 * resume. */
static void handle(unsigned i, const struct rf_event *ev)
{
	struct rf_regs *r = rf_context_regs(ctx[i]);
	check_invariants(i, r);
	if (ev->type == RF_EVENT_INTERRUPTED) {
		unsigned long k = atomic_load(&kicks[i]), rep = atomic_fetch_add(&reports[i], 1) + 1;
		if (rep > k)
			fail(i, "a report without a kick", rep, k);
		if (r->r12 < last_r12[i] || r->r12 > next_exit(last_r12[i]))
			fail(i, "interrupted outside the code between two exits", r->r12, last_r12[i]);
		if (rep % 64 == 0) {
			uint64_t x;
			memcpy(&x, (unsigned char *)rf_context_fpu(ctx[i]) + XMM7_OFF, 8);
			if (x != 0x7777000000000000ull + i)
				fail(i, "xmm7 changed", x, i);
		}
		return;
	}
	events[i]++;
	uint64_t want = next_exit(last_r12[i]);
	if (r->r12 != want)
		fail(i, "an exit out of sequence (lost or repeated)", r->r12, want);
	last_r12[i] = r->r12;
	static const struct { unsigned type, vector; const unsigned char *at, *next; } *e, expect[7] = {
		{ RF_EVENT_SYSCALL, 0, NULL, NULL },
		{ RF_EVENT_PAGE_FAULT, RF_VEC_PF, stress_pf, stress_pf_end },
		{ RF_EVENT_EXCEPTION, RF_VEC_UD, stress_ud, stress_ud_end },
		{ RF_EVENT_EXCEPTION, RF_VEC_GP, stress_gp, stress_gp_end },
		{ RF_EVENT_EXCEPTION, RF_VEC_DE, stress_de, stress_de_end },
		{ 0, 0, NULL, NULL },
		/* A trap: reported after the stepped instruction, with TF still set, which the host clears. */
		{ RF_EVENT_EXCEPTION, RF_VEC_DB, stress_db_end, stress_db_end },
	};
	e = &expect[r->r12 & 7];
	if (ev->type != e->type || (e->at && (ev->vector != e->vector || r->rip != va(e->at))))
		fail(i, "the wrong event for this step", ev->type * 256 + ev->vector, r->rip);
	if (e->vector == RF_VEC_DB && !(r->rflags & 0x100))
		fail(i, "the step trap came without TF", r->rflags, r->rip);
	if (e->vector == RF_VEC_DB)
		r->rflags &= ~0x100ull;
	if (e->at)
		r->rip = va(e->next);
}

static void *runner(void *arg)
{
	unsigned first = (unsigned)(uintptr_t)arg * PER_RUNNER;
	while (!atomic_load(&stop))
		for (unsigned i = first; i < first + PER_RUNNER; i++) {
			struct rf_event ev;
			atomic_store(&current[first / PER_RUNNER], i);
			int rc = rf_switch(ctx[i], t.as, &ev);
			if (rc) {
				fail(i, "rf_switch failed", (uint64_t)-rc, 0);
				printf("# %s\n", rf_last_error());
				atomic_store(&stop, 1);
				return NULL;
			}
			handle(i, &ev);
		}
	return NULL;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *kicker(void *arg)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
	while (!atomic_load(&stop) && atomic_load(&issued) < total_kicks) {
		for (volatile uint64_t n = xorshift(&seed) % 200000; n; n--)
			;   /* a random moment: long enough that the guest is often deep in its code */
		/* Mostly the context a runner is in right now (the injection path), sometimes any (the
		 * report-at-next-switch path). */
		uint64_t pick = xorshift(&seed);
		unsigned i = pick & 3 ? atomic_load(&current[(pick >> 2) % RUNNERS]) : (unsigned)((pick >> 2) % CONTEXTS);
		/* At most one kick outstanding per context, so "exactly once" is countable. */
		if (atomic_load(&reports[i]) != atomic_load(&kicks[i]))
			continue;
		if (i % KICKERS != (uintptr_t)arg)
			continue;   /* each context has one kicker: no two race on the same counters */
		if (atomic_fetch_add(&issued, 1) >= total_kicks)
			break;
		atomic_fetch_add(&kicks[i], 1);   /* before the kick: a report can never precede it */
		rf_kick(ctx[i]);
	}
	return NULL;
}

static unsigned long sum(atomic_ulong *a)
{
	unsigned long s = 0;
	for (unsigned i = 0; i < CONTEXTS; i++)
		s += atomic_load(&a[i]);
	return s;
}

int main(void)
{
	const char *env = getenv("RINGFENCE_STRESS_KICKS");
	total_kicks = env ? strtoul(env, NULL, 10) : 10000;
	const char *pol = getenv("RINGFENCE_KICK_POLICY");
	struct rf_platform_options o = { .max_vcpus = RUNNERS };
	o.kick_policy = pol && !strcmp(pol, "inject") ? RF_KICK_INJECT : RF_KICK_TAKE_BACK;
	kt_init(&t, &o);
	printf("# kick policy: %s\n", o.kick_policy == RF_KICK_INJECT ? "inject" : "take back when clean");
	KT_LOAD(&t, stress);
	for (unsigned i = 0; i < CONTEXTS; i++) {
		if (i && rf_context_create(t.p, &ctx[i]) < 0) {
			printf("Bail out! %s\n", rf_last_error());
			return 1;
		}
		if (!i)
			ctx[0] = t.c;
		struct rf_regs *r = rf_context_regs(ctx[i]);
		memset(r, 0, sizeof *r);
		r->rip = KT_CODE_VA;
		r->rsp = KT_STACK_TOP - 4096 * (i + 1);
		r->rflags = 0x202;
		r->r15 = i;
		r->rbp = MAGIC_RBP;
		r->rdi = 0x60000000;          /* unmapped: the #PF step */
		r->r14 = 100000 + 10000 * i;  /* long-loop laps: most time in the guest */
		unsigned char *x = rf_context_fpu(ctx[i]);
		uint64_t v = 0x7777000000000000ull + i, bv;
		memcpy(x + XMM7_OFF, &v, 8);
		memcpy(&bv, x + 512, 8);
		bv |= 2;
		memcpy(x + 512, &bv, 8);
	}
	pthread_t run[RUNNERS], kick[KICKERS];
	for (uintptr_t i = 0; i < RUNNERS; i++)
		pthread_create(&run[i], NULL, runner, (void *)i);
	for (uintptr_t i = 0; i < KICKERS; i++)
		pthread_create(&kick[i], NULL, kicker, (void *)i);

	/* Watchdog: reports must keep coming until every kick is reported. */
	struct timespec last, now;
	clock_gettime(CLOCK_MONOTONIC, &last);
	unsigned long seen = 0;
	while (!atomic_load(&stop) && (atomic_load(&issued) < total_kicks || sum(reports) < sum(kicks))) {
		unsigned long s = sum(reports);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (s != seen) {
			seen = s;
			last = now;
		} else if (now.tv_sec - last.tv_sec > WATCHDOG_S) {
			printf("Bail out! no kick reported for %d s (%lu of %lu kicks reported)\n", WATCHDOG_S, s,
			       sum(kicks));
			return 1;
		}
		struct timespec nap = { 0, 10000000 };
		nanosleep(&nap, NULL);   /* polling the watchdog, not synchronizing anything */
	}
	atomic_store(&stop, 1);
	for (unsigned i = 0; i < KICKERS; i++)
		pthread_join(kick[i], NULL);
	for (unsigned i = 0; i < RUNNERS; i++)
		pthread_join(run[i], NULL);

	unsigned long k = sum(kicks), r = sum(reports);
	uint64_t evs = 0;
	for (unsigned i = 0; i < CONTEXTS; i++)
		evs += events[i];
	ok(k == total_kicks && r == k, "%lu kicks, %lu reports: each reported exactly once", k, r);
	unsigned bad = 0;
	for (unsigned i = 0; i < CONTEXTS; i++)
		bad += atomic_load(&kicks[i]) != atomic_load(&reports[i]);
	ok(!bad, "per context, reports equal kicks (%u contexts differ)", bad);
	ok(atomic_load(&failures) == 0, "%llu guest events in exact sequence, no state changed by a kick (%d failures)",
	   (unsigned long long)evs, atomic_load(&failures));
	struct rf_vcpu_stats s, tot = { 0 };
	for (unsigned v = 0; v < RUNNERS; v++)
		if (rf_vcpu_stats(t.p, v, &s) == 0) {
			tot.kicks_injected += s.kicks_injected;
			tot.kicks_delivered += s.kicks_delivered;
			tot.kicks_immediate += s.kicks_immediate;
			tot.deadline_takebacks += s.deadline_takebacks;
			tot.kicks_taken_clean += s.kicks_taken_clean;
			tot.ring0_arrivals += s.ring0_arrivals;
			tot.window_requests += s.window_requests;
			tot.window_exits += s.window_exits;
			tot.injections_cancelled += s.injections_cancelled;
		}
	printf("# taken clean %llu injected %llu delivered %llu immediate %llu taken back %llu cancelled %llu "
	       "window %llu/%llu\n", (unsigned long long)tot.kicks_taken_clean,
	       (unsigned long long)tot.kicks_injected, (unsigned long long)tot.kicks_delivered,
	       (unsigned long long)tot.kicks_immediate, (unsigned long long)tot.deadline_takebacks,
	       (unsigned long long)tot.injections_cancelled, (unsigned long long)tot.window_requests,
	       (unsigned long long)tot.window_exits);
	ok(tot.kicks_taken_clean + tot.kicks_delivered + tot.kicks_immediate + tot.deadline_takebacks == r,
	   "every report is a clean take, a delivery, an immediate report or a deadline take-back");
	ok(o.kick_policy == RF_KICK_INJECT ? tot.kicks_taken_clean == 0 : tot.kicks_taken_clean > 0,
	   "the policy decided how kicks were taken (%llu clean)", (unsigned long long)tot.kicks_taken_clean);
	ok_eq(tot.ring0_arrivals, 0, "no kick arrived in ring 0");
	for (unsigned i = 1; i < CONTEXTS; i++)
		rf_context_destroy(ctx[i]);
	kt_fini(&t);
	return tap_done();
}
