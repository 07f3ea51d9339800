/* SPDX-License-Identifier: MIT */
/* Kick latency for ringfence bench: from rf_kick() to the switch returning RF_EVENT_INTERRUPTED,
 * for a guest spinning in ring 3 and for a guest in a page-fault storm, split at the first exit
 * after the kick (read from the vCPU's exit record). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "ringfence.h"
#include "vcpu.h"

#define CODE_VA  0x400000ull
#define DATA_VA  0x600000ull          /* the lap counter */
#define PF_ADDR  0x20000000ull        /* never mapped */
#define STORM_OFF 0x40
#define STORM_LOAD_LEN 3              /* mov (%rdi),%rax */

struct kick_bench {
	rf_platform *p;
	rf_memory *mem;
	rf_as *as;
	rf_context *c;
	bool storm;
	volatile uint64_t *laps;
	atomic_int go, done;
	uint64_t end_ns;
	int rc;
};

/* The guest side: switch until interrupted (skipping storm faults), stamp the time, repeat. */
static void *guest_thread(void *arg)
{
	struct kick_bench *k = arg;
	for (;;) {
		int go;
		while (!(go = atomic_load(&k->go)))
			sched_yield();
		if (go < 0)
			return NULL;
		atomic_store(&k->go, 0);
		struct rf_event ev;
		for (;;) {
			k->rc = rf_switch(k->c, k->as, &ev);
			if (k->rc || ev.type == RF_EVENT_INTERRUPTED)
				break;
			if (!k->storm || ev.type != RF_EVENT_PAGE_FAULT) {
				k->rc = -EPROTO;
				break;
			}
			rf_context_regs(k->c)->rip += STORM_LOAD_LEN;
		}
		k->end_ns = bench_now_ns();
		atomic_store(&k->done, 1);
	}
}

static int setup(struct kick_bench *k, rf_platform *p, bool storm)
{
	/* spin: 1: incq (%rsi); jmp 1b    storm: 1: incq (%rsi); mov (%rdi),%rax; jmp 1b */
	static const unsigned char spin[] = { 0x48, 0xff, 0x06, 0xeb, 0xfb };
	static const unsigned char storm_code[] = { 0x48, 0xff, 0x06, 0x48, 0x8b, 0x07, 0xeb, 0xf8 };
	int r;
	k->p = p;
	k->storm = storm;
	if ((r = rf_memory_create(p, RF_HUGE_SIZE, &k->mem)) < 0 || (r = rf_as_create(p, &k->as)) < 0 ||
	    (r = rf_context_create(p, &k->c)) < 0)
		return r;
	unsigned char *host = rf_memory_host(k->mem);
	memcpy(host, spin, sizeof spin);
	memcpy(host + STORM_OFF, storm_code, sizeof storm_code);
	k->laps = (volatile uint64_t *)(host + RF_PAGE_SIZE);
	if ((r = rf_as_map(k->as, CODE_VA, RF_PAGE_SIZE, k->mem, 0, RF_PROT_READ | RF_PROT_EXEC, 0)) < 0 ||
	    (r = rf_as_map(k->as, DATA_VA, RF_PAGE_SIZE, k->mem, RF_PAGE_SIZE, RF_PROT_READ | RF_PROT_WRITE, 0)) < 0)
		return r;
	*rf_context_regs(k->c) = (struct rf_regs){ .rip = CODE_VA + (storm ? STORM_OFF : 0), .rsp = DATA_VA + 2048,
	                                            .rsi = DATA_VA, .rdi = PF_ADDR, .rflags = 0x202 };
	return 0;
}

static void teardown(struct kick_bench *k)
{
	rf_context_destroy(k->c);
	rf_as_destroy(k->as);
	rf_memory_destroy(k->mem);
}

/* The first exit any vCPU of p recorded at or after t0 (the bench runs one guest at a time). */
static uint64_t first_exit_after(rf_platform *p, uint64_t t0)
{
	uint64_t best = 0;
	for (unsigned i = 0; i < atomic_load(&p->n_vcpus); i++) {
		const struct exit_log *log = &atomic_load(&p->vcpus[i])->log;
		uint64_t first = log->n > EXIT_LOG_SIZE ? log->n - EXIT_LOG_SIZE : 0;
		for (uint64_t j = log->n; j > first; j--) {
			uint64_t t = log->r[(j - 1) % EXIT_LOG_SIZE].t_ns;
			if (t < t0)
				break;
			if (!best || t < best)
				best = t;
		}
	}
	return best;
}

/* One kick once the guest has run some laps; the sample ends when the switch has returned. */
static int one_kick(struct kick_bench *k, uint64_t *ns, struct kick_split *split)
{
	uint64_t start = *k->laps;
	atomic_store(&k->done, 0);
	atomic_store(&k->go, 1);
	while (*k->laps < start + 64)
		sched_yield();
	uint64_t t0 = bench_now_ns();
	rf_kick(k->c);
	while (!atomic_load(&k->done))
		sched_yield();
	*ns = k->end_ns - t0;
	uint64_t exit_ns = first_exit_after(k->p, t0);
	if (split && split->n < split->cap && exit_ns) {
		split->to_exit[split->n] = exit_ns - t0;
		split->to_report[split->n++] = k->end_ns - exit_ns;
	}
	return k->rc;
}

int bench_kick(rf_platform *p, bool storm, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n,
               struct kick_split *split)
{
	struct kick_bench k = { 0 };
	pthread_t th;
	int r = setup(&k, p, storm);
	if (r < 0) {
		teardown(&k);
		return r;
	}
	pthread_create(&th, NULL, guest_thread, &k);
	uint64_t sample;
	for (unsigned i = 0; i < warmup && r == 0; i++)
		r = one_kick(&k, &sample, NULL);
	for (unsigned i = 0; i < n && r == 0; i++) {
		ns[i] = 0;
		for (unsigned j = 0; j < batch && r == 0; j++) {
			r = one_kick(&k, &sample, split);
			ns[i] += sample;
		}
	}
	atomic_store(&k.go, -1);
	pthread_join(th, NULL);
	teardown(&k);
	return r;
}
