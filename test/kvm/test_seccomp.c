/* SPDX-License-Identifier: MIT */
/* rf_seccomp_allow on real KVM: with a filter made of its rules alone (plus what this test itself
 * needs: TAP output, its threads, exit), everything after rf_platform_create works: memories,
 * address spaces and contexts made and destroyed, syscall round trips, faults, map/protect/unmap,
 * kicks from another thread, a vCPU created on demand, the FPU image, statistics, the maintenance
 * vCPU (shadow path forced) and rf_platform_destroy. The first platform gets /dev/kvm as an open
 * descriptor (kvm_fd). A syscall outside the filter kills the process with SIGSYS. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kvmtest.h"

GUEST(regs_roundtrip);
GUEST(load);
GUEST(store);
GUEST(spin);

#define SPARE_OFF  (6ull << 20)        /* the fixture memory's spare 2 MiB */
#define SPARE_VA   0x20000000ull
#define LAPS_OFF   (2u << 20)          /* the data area: one lap counter per context */
#define WATCHDOG_S 120

/* What this test needs beyond the platform's list. */
static const int test_own[] = {
	SCMP_SYS(exit_group),   /* the test's end */
	SCMP_SYS(exit),         /* its helper threads end */
	SCMP_SYS(sched_yield),  /* waiting for a guest to spin */
	SCMP_SYS(write),        /* TAP lines */
};

static int load_filter(void)
{
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int r = f ? seccomp_attr_set(f, SCMP_FLTATR_CTL_TSYNC, 1) : -ENOMEM;
	if (r == 0)
		r = rf_seccomp_allow(f);
	for (size_t i = 0; r == 0 && i < sizeof test_own / sizeof test_own[0]; i++)
		r = seccomp_rule_add(f, SCMP_ACT_ALLOW, test_own[i], 0);
	if (r == 0)
		r = seccomp_load(f);
	if (f)
		seccomp_release(f);
	return r;
}

/* In a child: the filter is loaded, and socket() is not in it. */
static void test_forbidden_kills(void)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 });   /* no core file from the SIGSYS */
		if (load_filter() != 0)
			_exit(2);
		syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
		_exit(3);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "a syscall outside the filter kills with SIGSYS (status 0x%x)", st);
}

static volatile uint64_t *laps(struct kt *t, unsigned i)
{
	return (volatile uint64_t *)(t->host + LAPS_OFF + 64 * i);
}

/* Waits for the guest's lap counter to move: it is then running guest code. */
static bool wait_running(struct kt *t, unsigned i)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	while (*laps(t, i) == 0) {
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (b.tv_sec - a.tv_sec > WATCHDOG_S)
			return false;
		sched_yield();
	}
	return true;
}

static void prepare_spin(struct kt *t, rf_context *c, unsigned i)
{
	struct rf_regs *r = rf_context_regs(c);
	memset(r, 0, sizeof *r);
	r->rip = KT_CODE_VA;
	r->rsp = KT_STACK_TOP - 4096 * (i + 1);
	r->rflags = 0x202;
	r->rsi = KT_DATA_VA + 64 * i;
	*laps(t, i) = 0;
}

/* The helper threads exist before the filter is loaded (TSYNC covers them); each waits for its
 * turn, then either runs a spinning context or kicks both spinning contexts. */
struct helpers {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	unsigned started;                /* threads running (glibc's thread start makes syscalls too) */
	struct kt *t;                    /* set under lock: the turn has come */
	rf_context *c2;
	int rc2;
	struct rf_event ev2;
	bool kick_failed;
};

static struct kt *await_turn(struct helpers *h)
{
	pthread_mutex_lock(&h->lock);
	h->started++;
	pthread_cond_broadcast(&h->cv);
	while (!h->t)
		pthread_cond_wait(&h->cv, &h->lock);
	struct kt *t = h->t;
	pthread_mutex_unlock(&h->lock);
	return t;
}

static void *runner_main(void *arg)
{
	struct helpers *h = arg;
	struct kt *t = await_turn(h);
	h->rc2 = rf_switch(h->c2, t->as, &h->ev2);
	return NULL;
}

static void *kicker_main(void *arg)
{
	struct helpers *h = arg;
	struct kt *t = await_turn(h);
	/* Both spin before the kicks: two switches at once, so the second had a vCPU made for it. */
	h->kick_failed = !wait_running(t, 0) || !wait_running(t, 1);
	rf_kick(t->c);
	rf_kick(h->c2);
	return NULL;
}

/* The fixture of kvmtest.h on an existing platform, under the filter. */
static bool setup(struct kt *t, rf_platform *p)
{
	memset(t, 0, sizeof *t);
	t->p = p;
	if (rf_memory_create(p, KT_MEM_SIZE, &t->mem) < 0 || rf_as_create(p, &t->as) < 0 ||
	    rf_context_create(p, &t->c) < 0)
		return ok(0, "memory, address space and context made: %s", rf_last_error());
	t->host = rf_memory_host(t->mem);
	return ok(rf_as_map(t->as, KT_CODE_VA, 1ull << 20, t->mem, 0, RF_PROT_READ | RF_PROT_EXEC, 0) == 0 &&
	          rf_as_map(t->as, KT_DATA_VA, 2ull << 20, t->mem, 2ull << 20, RF_PROT_READ | RF_PROT_WRITE,
	                    RF_MAP_HUGE) == 0 &&
	          rf_as_map(t->as, KT_STACK_VA, 2ull << 20, t->mem, 4ull << 20, RF_PROT_READ | RF_PROT_WRITE, 0) == 0,
	          "memory, address space and context made and mapped");
}

static void test_roundtrip_and_faults(struct kt *t)
{
	struct rf_event ev;
	KT_LOAD(t, regs_roundtrip);
	ok(kt_switch(t, &ev) && ev.type == RF_EVENT_SYSCALL && kt_switch(t, &ev) && ev.type == RF_EVENT_SYSCALL,
	   "two syscall round trips");
	ok(rf_context_fpu(t->c) != NULL, "the FPU image comes home");

	/* The spare 2 MiB: mapped, read, made read-only, written (a protection fault), unmapped. */
	uint64_t *spare = (uint64_t *)(t->host + SPARE_OFF);
	spare[0] = 0x5ec0;
	ok(rf_as_map(t->as, SPARE_VA, 1ull << 20, t->mem, SPARE_OFF, RF_PROT_READ | RF_PROT_WRITE, 0) == 0,
	   "rf_as_map");
	KT_LOAD(t, load);
	rf_context_regs(t->c)->rdi = SPARE_VA;
	ok(kt_switch(t, &ev) && ev.type == RF_EVENT_SYSCALL && rf_context_regs(t->c)->rax == 0x5ec0,
	   "the guest reads the new mapping");
	ok(rf_as_protect(t->as, SPARE_VA, 1ull << 20, RF_PROT_READ) == 0, "rf_as_protect");
	KT_LOAD(t, store);
	rf_context_regs(t->c)->rdi = SPARE_VA;
	ok(kt_switch(t, &ev) && ev.type == RF_EVENT_PAGE_FAULT && ev.present && (ev.access & RF_ACCESS_WRITE),
	   "a write to it is a protection fault");
	ok(rf_as_unmap(t->as, SPARE_VA, 1ull << 20) == 0, "rf_as_unmap");
	KT_LOAD(t, load);
	rf_context_regs(t->c)->rdi = SPARE_VA;
	ok(kt_switch(t, &ev) && ev.type == RF_EVENT_PAGE_FAULT && !ev.present && ev.fault_addr == SPARE_VA,
	   "a read of it is a not-present fault");
}

static void test_kicks(struct kt *t, struct helpers *h, pthread_t runner, pthread_t kicker)
{
	KT_LOAD(t, spin);
	prepare_spin(t, t->c, 0);
	prepare_spin(t, h->c2, 1);
	pthread_mutex_lock(&h->lock);
	h->t = t;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->lock);
	/* The runner spins c2 first, so this switch finds its vCPU busy. */
	if (!wait_running(t, 1)) {
		printf("Bail out! the runner's guest did not start within %d s\n", WATCHDOG_S);
		exit(1);
	}
	struct rf_event ev;
	int rc = rf_switch(t->c, t->as, &ev);
	pthread_join(runner, NULL);
	pthread_join(kicker, NULL);
	ok(!h->kick_failed && rc == 0 && ev.type == RF_EVENT_INTERRUPTED, "a kick from another thread takes back this switch");
	ok(h->rc2 == 0 && h->ev2.type == RF_EVENT_INTERRUPTED, "and the runner thread's");
	struct rf_platform_info info;
	rf_platform_info(t->p, &info);
	struct rf_vcpu_stats s;
	uint64_t requested = 0;
	for (unsigned i = 0; i < info.vcpus_created; i++)
		if (rf_vcpu_stats(t->p, i, &s) == 0)
			requested += s.kicks_requested;
	ok(info.vcpus_created >= 2 && requested >= 2, "rf_vcpu_stats: %u vCPUs, %llu kicks requested",
	   info.vcpus_created, (unsigned long long)requested);
}

static void teardown(struct kt *t, rf_context *c2)
{
	ok(rf_context_destroy(c2) == 0 && rf_context_destroy(t->c) == 0 && rf_as_destroy(t->as) == 0 &&
	   rf_memory_destroy(t->mem) == 0 && rf_platform_destroy(t->p) == 0,
	   "contexts, address space, memory and platform destroyed");
}

static void platform_under_filter(struct kt *t, rf_platform *p, struct helpers *h, pthread_t runner,
                                  pthread_t kicker, const char *what)
{
	printf("# %s\n", what);
	if (!setup(t, p) || rf_context_create(p, &h->c2) < 0) {
		printf("Bail out! %s: %s\n", what, rf_last_error());
		exit(1);
	}
	test_roundtrip_and_faults(t);
	test_kicks(t, h, runner, kicker);
	teardown(t, h->c2);
}

static rf_platform *create(const struct rf_platform_options *o)
{
	rf_platform *p;
	int r = rf_platform_create(o, &p);
	if (r == -ENOENT || r == -EACCES || r == -ENODEV || r == -ENXIO)
		tap_skip_all(rf_last_error());
	if (r < 0) {
		printf("Bail out! rf_platform_create: %s\n", rf_last_error());
		exit(1);
	}
	return p;
}

int main(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		tap_skip_all("cannot open /dev/kvm");
	test_forbidden_kills();
	/* Both platforms exist before the filter: creating one is not in its list. The second forces
	 * the shadow path (the maintenance vCPU runs on every host) and the injecting kick policy. */
	rf_platform *a = create(&(struct rf_platform_options){ .kvm_fd = kvm, .exit_log_fd = 2 });
	close(kvm);   /* the platform keeps its own duplicate */
	rf_platform *b = create(&(struct rf_platform_options){ .mmu = RF_MMU_SHADOW, .kick_policy = RF_KICK_INJECT,
	                                                        .exit_log_fd = 2 });
	static struct helpers h[2];
	pthread_t runner[2], kicker[2];
	for (int i = 0; i < 2; i++) {
		pthread_mutex_init(&h[i].lock, NULL);
		pthread_cond_init(&h[i].cv, NULL);
		pthread_create(&runner[i], NULL, runner_main, &h[i]);
		pthread_create(&kicker[i], NULL, kicker_main, &h[i]);
		pthread_mutex_lock(&h[i].lock);
		while (h[i].started < 2)
			pthread_cond_wait(&h[i].cv, &h[i].lock);
		pthread_mutex_unlock(&h[i].lock);
	}
	int r = load_filter();
	if (!ok(r == 0, "filter of rf_seccomp_allow's rules loaded on every thread")) {
		printf("#   %s\n", strerror(-r));
		return tap_done();
	}
	struct kt t;
	platform_under_filter(&t, a, &h[0], runner[0], kicker[0], "the platform made from an open /dev/kvm");
	platform_under_filter(&t, b, &h[1], runner[1], kicker[1], "shadow path forced, injecting kicks");
	return tap_done();
}
