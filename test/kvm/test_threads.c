/* SPDX-License-Identifier: MIT */
/* More contexts than vCPUs, switched from several threads at once: every context keeps its own
 * registers and counts, and the pool never grows past its limit. */
#include <pthread.h>
#include <string.h>

#include "kvmtest.h"

GUEST(count_loop);

#define THREADS     3
#define PER_THREAD  3
#define ROUNDS      150
#define MAX_VCPUS   2

struct worker {
	struct kt *t;
	unsigned idx;
	rf_context *c[PER_THREAD];
	unsigned errors, switches;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	for (unsigned i = 0; i < PER_THREAD; i++) {
		struct rf_regs *r = rf_context_regs(w->c[i]);
		memset(r, 0, sizeof *r);
		r->rip = KT_CODE_VA;
		r->rsp = KT_STACK_TOP;
		r->rflags = 0x202;
		r->r12 = 1000 * w->idx + i;          /* identity, must survive every switch */
		r->r13 = ~r->r12;
	}
	for (unsigned round = 1; round <= ROUNDS; round++)
		for (unsigned i = 0; i < PER_THREAD; i++) {
			struct rf_event ev;
			int rc = rf_switch(w->c[i], w->t->as, &ev);
			struct rf_regs *r = rf_context_regs(w->c[i]);
			w->switches++;
			if (rc != 0 || ev.type != RF_EVENT_SYSCALL || r->rbx != round ||
			    r->r12 != 1000 * w->idx + i || r->r13 != ~r->r12)
				w->errors++;
		}
	return NULL;
}

int main(void)
{
	struct kt t;
	struct rf_platform_options o = { .max_vcpus = MAX_VCPUS };
	kt_init(&t, &o);
	KT_LOAD(&t, count_loop);
	struct worker w[THREADS];
	pthread_t th[THREADS];
	for (unsigned i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .t = &t, .idx = i };
		for (unsigned j = 0; j < PER_THREAD; j++)
			if (rf_context_create(t.p, &w[i].c[j]) < 0) {
				printf("Bail out! %s\n", rf_last_error());
				return 1;
			}
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		ok(w[i].errors == 0 && w[i].switches == ROUNDS * PER_THREAD,
		   "thread %u: %u switches of %u contexts, %u wrong", i, w[i].switches, PER_THREAD, w[i].errors);
	}
	struct rf_platform_info info;
	rf_platform_info(t.p, &info);
	ok(info.vcpus_created <= MAX_VCPUS, "%u threads shared %u vCPUs (limit %u)", THREADS,
	   info.vcpus_created, MAX_VCPUS);

	/* One context may only be switched by one thread at a time. */
	rf_context *c = w[0].c[0];
	struct rf_event ev;
	ok(rf_switch(c, t.as, &ev) == 0, "a context runs again after the threads are done");
	for (unsigned i = 0; i < THREADS; i++)
		for (unsigned j = 0; j < PER_THREAD; j++)
			rf_context_destroy(w[i].c[j]);
	kt_fini(&t);
	return tap_done();
}
