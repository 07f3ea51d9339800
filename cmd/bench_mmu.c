/* SPDX-License-Identifier: MIT */
/* Page-table changes for ringfence bench: a remap the guest must see at its next read, and an unmap
 * of N pages the guest has used while the space runs on another vCPU. On a shadow MMU both include
 * the maintenance vCPU's touch of each changed table page. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "ringfence.h"

#define CODE_VA   0x400000ull
#define DATA_VA   0x600000ull          /* remap: the page that changes; unmap: the spinner's counter */
#define REGION_VA 0x40000000ull        /* unmap: the N pages */
#define READ_OFF  0x0                  /* 1: mov (%rdi),%rax; syscall; jmp 1b */
#define TOUCH_OFF 0x20                 /* 1: mov (%rdi),%rax; add $4096,%rdi; dec %ecx; jnz 1b; syscall; ud2 */
#define SPIN_OFF  0x40                 /* 1: incq (%rsi); jmp 1b */

struct mmu_bench {
	rf_platform *p;
	rf_memory *mem, *region;
	rf_as *as;
	rf_context *c, *spin;
	volatile uint64_t *laps;
	pthread_t spinner;
	bool spinning;
	atomic_int stop;
	int spin_rc;
};

static int setup(struct mmu_bench *m, rf_platform *p)
{
	static const unsigned char read_code[] = { 0x48, 0x8b, 0x07, 0x0f, 0x05, 0xeb, 0xf9 };
	static const unsigned char touch_code[] = { 0x48, 0x8b, 0x07, 0x48, 0x81, 0xc7, 0x00, 0x10, 0x00, 0x00,
	                                            0xff, 0xc9, 0x75, 0xf2, 0x0f, 0x05, 0x0f, 0x0b };
	static const unsigned char spin_code[] = { 0x48, 0xff, 0x06, 0xeb, 0xfb };
	int r;
	m->p = p;
	if ((r = rf_memory_create(p, RF_HUGE_SIZE, &m->mem)) < 0 || (r = rf_memory_create(p, RF_HUGE_SIZE, &m->region)) < 0 ||
	    (r = rf_as_create(p, &m->as)) < 0 || (r = rf_context_create(p, &m->c)) < 0 ||
	    (r = rf_context_create(p, &m->spin)) < 0)
		return r;
	unsigned char *host = rf_memory_host(m->mem);
	memcpy(host + READ_OFF, read_code, sizeof read_code);
	memcpy(host + TOUCH_OFF, touch_code, sizeof touch_code);
	memcpy(host + SPIN_OFF, spin_code, sizeof spin_code);
	/* Pages 1 and 2 hold different values: the remap moves DATA_VA between them. */
	*(uint64_t *)(host + RF_PAGE_SIZE) = 1;
	*(uint64_t *)(host + 2 * RF_PAGE_SIZE) = 2;
	m->laps = (volatile uint64_t *)(host + 3 * RF_PAGE_SIZE);
	return rf_as_map(m->as, CODE_VA, RF_PAGE_SIZE, m->mem, 0, RF_PROT_READ | RF_PROT_EXEC, 0);
}

static void *spinner(void *arg)
{
	struct mmu_bench *m = arg;
	struct rf_event ev;
	do
		m->spin_rc = rf_switch(m->spin, m->as, &ev);
	while (m->spin_rc == 0 && !atomic_load(&m->stop));
	return NULL;
}

/* Another thread runs a guest in the same space, and is seen running, before anything is timed. */
static int start_spinner(struct mmu_bench *m)
{
	int r = rf_as_map(m->as, DATA_VA + RF_PAGE_SIZE, RF_PAGE_SIZE, m->mem, 3 * RF_PAGE_SIZE,
	                  RF_PROT_READ | RF_PROT_WRITE, 0);
	if (r < 0)
		return r;
	*rf_context_regs(m->spin) = (struct rf_regs){ .rip = CODE_VA + SPIN_OFF, .rsi = DATA_VA + RF_PAGE_SIZE,
	                                              .rsp = DATA_VA + 2 * RF_PAGE_SIZE, .rflags = 0x202 };
	uint64_t start = *m->laps;
	if (pthread_create(&m->spinner, NULL, spinner, m))
		return -EAGAIN;
	m->spinning = true;
	while (*m->laps < start + 64 && !m->spin_rc)
		sched_yield();
	return m->spin_rc;
}

static int teardown(struct mmu_bench *m)
{
	int r = 0;
	if (m->spinning) {
		atomic_store(&m->stop, 1);
		rf_kick(m->spin);
		pthread_join(m->spinner, NULL);
		r = m->spin_rc;
	}
	rf_context_destroy(m->spin);
	rf_context_destroy(m->c);
	rf_as_destroy(m->as);
	rf_memory_destroy(m->region);
	rf_memory_destroy(m->mem);
	return r;
}

/* One remap and the read that must see it. */
static int remap_once(struct mmu_bench *m, unsigned i)
{
	uint64_t want = 1 + (i & 1);
	int r = rf_as_map(m->as, DATA_VA, RF_PAGE_SIZE, m->mem, want * RF_PAGE_SIZE, RF_PROT_READ, 0);
	struct rf_event ev;
	if (r < 0 || (r = rf_switch(m->c, m->as, &ev)) < 0)
		return r;
	if (ev.type != RF_EVENT_SYSCALL || rf_context_regs(m->c)->rax != want) {
		fprintf(stderr, "ringfence bench: remap: the guest read %llu (event %d), not the new page's %llu\n",
		        (unsigned long long)rf_context_regs(m->c)->rax, ev.type, (unsigned long long)want);
		return -EPROTO;
	}
	return 0;
}

int bench_remap(rf_platform *p, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	struct mmu_bench m = { 0 };
	int r = setup(&m, p);
	if (r == 0) {
		*rf_context_regs(m.c) = (struct rf_regs){ .rip = CODE_VA + READ_OFF, .rdi = DATA_VA,
		                                          .rsp = CODE_VA + RF_PAGE_SIZE, .rflags = 0x202 };
		unsigned k = 0;
		for (unsigned i = 0; i < warmup && r == 0; i++)
			r = remap_once(&m, k++);
		for (unsigned i = 0; i < n && r == 0; i++) {
			uint64_t t0 = bench_now_ns();
			for (unsigned j = 0; j < batch && r == 0; j++)
				r = remap_once(&m, k++);
			ns[i] = bench_now_ns() - t0;
		}
	}
	int t = teardown(&m);
	return r < 0 ? r : t;
}

/* Maps `pages` pages, lets the guest read each (so a shadow MMU shadows their table), then times
 * the unmap alone. */
static int unmap_once(struct mmu_bench *m, unsigned pages, uint64_t *ns)
{
	uint64_t len = (uint64_t)pages * RF_PAGE_SIZE;
	int r = rf_as_map(m->as, REGION_VA, len, m->region, 0, RF_PROT_READ, 0);
	if (r < 0)
		return r;
	*rf_context_regs(m->c) = (struct rf_regs){ .rip = CODE_VA + TOUCH_OFF, .rdi = REGION_VA, .rcx = pages,
	                                          .rsp = CODE_VA + RF_PAGE_SIZE, .rflags = 0x202 };
	struct rf_event ev;
	if ((r = rf_switch(m->c, m->as, &ev)) < 0)
		return r;
	if (ev.type != RF_EVENT_SYSCALL)
		return -EPROTO;
	uint64_t t0 = bench_now_ns();
	r = rf_as_unmap(m->as, REGION_VA, len);
	*ns += bench_now_ns() - t0;
	return r;
}

int bench_unmap(rf_platform *p, unsigned pages, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	struct mmu_bench m = { 0 };
	int r = setup(&m, p);
	if (r == 0)
		r = start_spinner(&m);
	uint64_t sink = 0;
	for (unsigned i = 0; i < warmup && r == 0; i++)
		r = unmap_once(&m, pages, &sink);
	for (unsigned i = 0; i < n && r == 0; i++) {
		ns[i] = 0;
		for (unsigned j = 0; j < batch && r == 0; j++)
			r = unmap_once(&m, pages, &ns[i]);
	}
	int t = teardown(&m);
	return r < 0 ? r : t;
}
