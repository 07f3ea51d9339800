/* SPDX-License-Identifier: MIT */
/* Address spaces on real KVM: unmap then touch faults, protection changes, two spaces isolated,
 * 2 MiB pages, and remap/unmap seen at once by vCPUs that are running the space on other threads. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "kvmtest.h"

GUEST(load);
GUEST(store);
GUEST(watch);

#define PAGE_A_OFF (6ull << 20)           /* spare 2 MiB of the fixture memory */
#define PAGE_B_OFF (PAGE_A_OFF + 4096)
#define WATCH_VA   0x30000000ull
#define COUNTER_OFF (PAGE_A_OFF + 8192)   /* laps counters, one cache line per thread */
#define WATCHDOG_S 120

static uint64_t *at(struct kt *t, uint64_t off) { return (uint64_t *)(t->host + off); }

static void test_unmap_protect(struct kt *t)
{
	struct rf_regs *r = rf_context_regs(t->c);
	struct rf_event ev;
	*at(t, PAGE_A_OFF) = 0xa;
	ok(rf_as_map(t->as, WATCH_VA, 4096, t->mem, PAGE_A_OFF, RF_PROT_READ | RF_PROT_WRITE, 0) == 0, "map a page");
	KT_LOAD(t, load);
	r->rdi = WATCH_VA;
	if (kt_switch(t, &ev))
		ok(ev.type == RF_EVENT_SYSCALL && r->rax == 0xa, "read through the new mapping");
	ok(rf_as_unmap(t->as, WATCH_VA, 4096) == 0, "unmap it");
	KT_LOAD(t, load);
	r->rdi = WATCH_VA;
	if (kt_switch(t, &ev))
		ok(ev.type == RF_EVENT_PAGE_FAULT && !ev.present && ev.fault_addr == WATCH_VA,
		   "touching it after unmap is a not-present fault (no stale TLB entry)");

	ok(rf_as_map(t->as, WATCH_VA, 4096, t->mem, PAGE_A_OFF, RF_PROT_READ | RF_PROT_WRITE, 0) == 0, "map again");
	KT_LOAD(t, store);
	r->rdi = WATCH_VA;
	r->rsi = 0x51;
	if (kt_switch(t, &ev))
		ok(ev.type == RF_EVENT_SYSCALL && *at(t, PAGE_A_OFF) == 0x51, "guest write lands in the host's view");
	ok(rf_as_protect(t->as, WATCH_VA, 4096, RF_PROT_READ) == 0, "protect read-only");
	KT_LOAD(t, store);
	r->rdi = WATCH_VA;
	if (kt_switch(t, &ev))
		ok(ev.type == RF_EVENT_PAGE_FAULT && ev.present && ev.access == RF_ACCESS_WRITE,
		   "write after protect is a protection fault (no stale writable TLB entry)");
	ok(rf_as_protect(t->as, WATCH_VA + 4096, 4096, RF_PROT_READ) == -ENOMEM,
	   "protect of an unmapped page is refused");
	ok(rf_as_unmap(t->as, WATCH_VA, 4096) == 0, "clean up");
	ok(rf_memory_destroy(t->mem) == -EBUSY, "a mapped memory cannot be destroyed");
}

static void test_bad_arguments(struct kt *t)
{
	ok(rf_as_map(t->as, 0x1001, 4096, t->mem, 0, RF_PROT_READ, 0) == -EINVAL, "unaligned va refused");
	ok(rf_as_map(t->as, RF_USER_END - 4096, 8192, t->mem, 0, RF_PROT_READ, 0) == -EINVAL,
	   "range into the supervisor half refused");
	ok(rf_as_map(t->as, 0x40000000, 4096, t->mem, KT_MEM_SIZE, RF_PROT_READ, 0) == -EINVAL,
	   "offset past the memory refused");
	ok(rf_as_map(t->as, 0x40000000, 4096, t->mem, 0, 0, 0) == -EINVAL, "no permissions refused");
	ok(rf_as_map(t->as, 0x40001000, RF_HUGE_SIZE, t->mem, 0, RF_PROT_READ, RF_MAP_HUGE) == -EINVAL,
	   "unaligned huge mapping refused");
	ok(rf_as_unmap(t->as, 0, UINT64_MAX & ~4095ull) == -EINVAL, "overflowing unmap refused");
}

/* The memfd may be handed to a less trusted process (serve passes it to clients): a shrink under
 * the platform's mapping would make its next touch a SIGBUS, so the size is sealed. */
static void test_memory_fd_sealed(struct kt *t)
{
	int fd = rf_memory_fd(t->mem);
	int seals = fcntl(fd, F_GET_SEALS);
	const int want = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	ok(seals >= 0 && (seals & want) == want, "rf_memory_fd is sealed against shrinking, growing and further seals (0x%x)", seals);
	ok(ftruncate(fd, 0) < 0 && errno == EPERM, "so a shrink is refused (EPERM)");
	t->host[KT_MEM_SIZE - 1] = 0x5a;
	ok(t->host[KT_MEM_SIZE - 1] == 0x5a, "and its last byte is still there to touch");
}

static void test_isolation(struct kt *t)
{
	rf_as *other;
	if (!ok(rf_as_create(t->p, &other) == 0, "second address space"))
		return;
	*at(t, PAGE_A_OFF) = 0x1111;
	*at(t, PAGE_B_OFF) = 0x2222;
	rf_as_map(t->as, WATCH_VA, 4096, t->mem, PAGE_A_OFF, RF_PROT_READ, 0);
	rf_as_map(other, WATCH_VA, 4096, t->mem, PAGE_B_OFF, RF_PROT_READ, 0);
	rf_as_map(other, KT_CODE_VA, 1u << 20, t->mem, 0, RF_PROT_READ | RF_PROT_EXEC, 0);
	rf_as_map(other, KT_STACK_VA, 2u << 20, t->mem, 4u << 20, RF_PROT_READ | RF_PROT_WRITE, 0);
	struct rf_regs *r = rf_context_regs(t->c);
	struct rf_event ev;
	for (int round = 0; round < 3; round++) {
		KT_LOAD(t, load);
		r->rdi = WATCH_VA;
		kt_switch(t, &ev);
		uint64_t in_a = r->rax;
		KT_LOAD(t, load);
		r->rdi = WATCH_VA;
		rf_switch(t->c, other, &ev);
		ok(in_a == 0x1111 && r->rax == 0x2222, "round %d: same va, each space sees its own page", round);
	}
	KT_LOAD(t, load);
	r->rdi = KT_DATA_VA;
	rf_switch(t->c, other, &ev);
	ok(ev.type == RF_EVENT_PAGE_FAULT && !ev.present, "the other space does not see the first one's data");
	rf_as_unmap(t->as, WATCH_VA, 4096);
	ok(rf_as_destroy(other) == 0, "destroy the second space");
}

static void test_huge(struct kt *t)
{
	struct rf_regs *r = rf_context_regs(t->c);
	struct rf_event ev;
	/* The fixture's data area is one 2 MiB page; split it by unmapping one 4 KiB page inside. */
	*at(t, (2u << 20) + 8192) = 0x4242;
	ok(rf_as_unmap(t->as, KT_DATA_VA + 4096, 4096) == 0, "unmap 4 KiB inside a 2 MiB page");
	KT_LOAD(t, load);
	r->rdi = KT_DATA_VA + 8192;
	if (kt_switch(t, &ev))
		ok(ev.type == RF_EVENT_SYSCALL && r->rax == 0x4242, "the rest of the huge page still maps");
	KT_LOAD(t, load);
	r->rdi = KT_DATA_VA + 4096;
	if (kt_switch(t, &ev))
		ok(ev.type == RF_EVENT_PAGE_FAULT && !ev.present, "the hole faults");
	ok(rf_as_map(t->as, KT_DATA_VA, RF_HUGE_SIZE, t->mem, 2u << 20, RF_PROT_READ | RF_PROT_WRITE, RF_MAP_HUGE) == 0,
	   "map the 2 MiB page back whole");
}

/* ---- running vCPUs on other threads ---- */

struct watcher {
	struct kt *t;
	rf_context *c;
	unsigned idx;
	int rc;
	struct rf_event ev;
};

static void *watch_thread(void *arg)
{
	struct watcher *w = arg;
	struct rf_regs *r = rf_context_regs(w->c);
	memset(r, 0, sizeof *r);
	r->rip = KT_CODE_VA;
	r->rsp = KT_STACK_TOP - 4096 * (w->idx + 1);
	r->rflags = 0x202;
	r->rdi = WATCH_VA;
	r->rsi = KT_DATA_VA + 64 * w->idx;   /* laps counter */
	r->rbx = 0x1111;                     /* spin while the page reads 0x1111 */
	w->rc = rf_switch(w->c, w->t->as, &w->ev);
	return NULL;
}

static bool wait_laps(struct kt *t, unsigned n)
{
	/* Polls the guest's own lap counters: each watcher is in guest code once its counter moves. */
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		unsigned running = 0;
		for (unsigned i = 0; i < n; i++)
			running += __atomic_load_n(at(t, (2u << 20) + 64 * i), __ATOMIC_RELAXED) > 1000;
		if (running == n)
			return true;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > WATCHDOG_S)
			return false;
		sched_yield();
	}
}

static void run_watchers(struct kt *t, unsigned n, bool unmap)
{
	struct watcher w[4];
	pthread_t th[4];
	*at(t, PAGE_A_OFF) = 0x1111;
	*at(t, PAGE_B_OFF) = 0x2222;
	memset(at(t, 2u << 20), 0, 64 * n);
	rf_as_map(t->as, WATCH_VA, 4096, t->mem, PAGE_A_OFF, RF_PROT_READ, 0);
	KT_LOAD(t, watch);
	for (unsigned i = 0; i < n; i++) {
		w[i] = (struct watcher){ .t = t, .idx = i };
		rf_context_create(t->p, &w[i].c);
		pthread_create(&th[i], NULL, watch_thread, &w[i]);
	}
	bool spinning = wait_laps(t, n);
	ok(spinning, "%u vCPUs spin in guest code on the page", n);
	if (unmap)
		ok(rf_as_unmap(t->as, WATCH_VA, 4096) == 0, "unmap while they run");
	else
		ok(rf_as_map(t->as, WATCH_VA, 4096, t->mem, PAGE_B_OFF, RF_PROT_READ, 0) == 0, "remap while they run");
	for (unsigned i = 0; i < n; i++) {
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += WATCHDOG_S;
		if (!ok(pthread_timedjoin_np(th[i], NULL, &dl) == 0, "vCPU %u left the spin (watchdog %d s)", i, WATCHDOG_S)) {
			printf("Bail out! a vCPU kept its stale translation\n");
			exit(1);
		}
		if (unmap)
			ok(w[i].rc == 0 && w[i].ev.type == RF_EVENT_PAGE_FAULT && w[i].ev.fault_addr == WATCH_VA,
			   "vCPU %u faulted on the unmapped page at once", i);
		else
			ok(w[i].rc == 0 && w[i].ev.type == RF_EVENT_SYSCALL && rf_context_regs(w[i].c)->rax == 0x2222,
			   "vCPU %u saw the new page", i);
		rf_context_destroy(w[i].c);
	}
	rf_as_unmap(t->as, WATCH_VA, 4096);
}

int main(void)
{
	/* With the MMU the probe found, then with the shadow-MMU path forced (on EPT/NPT hosts that is
	 * the only way the table touches run beside vCPUs of other threads). */
	static const enum rf_mmu modes[] = { RF_MMU_AUTO, RF_MMU_SHADOW };
	for (unsigned i = 0; i < 2; i++) {
		struct kt t;
		struct rf_platform_options o = { .max_vcpus = 4, .mmu = modes[i] };
		kt_init(&t, &o);
		struct rf_platform_info info;
		rf_platform_info(t.p, &info);
		printf("# %s: MMU %s\n", i ? "shadow path forced" : "probed MMU", info.mmu == RF_MMU_SHADOW ? "shadow" : "direct");
		test_unmap_protect(&t);
		test_bad_arguments(&t);
		test_memory_fd_sealed(&t);
		test_isolation(&t);
		test_huge(&t);
		run_watchers(&t, 1, false);
		run_watchers(&t, 2, false);
		run_watchers(&t, 2, true);
		kt_fini(&t);
	}
	return tap_done();
}
