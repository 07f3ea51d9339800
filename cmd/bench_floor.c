/* SPDX-License-Identifier: MIT */
/* Host-side floors for ringfence bench: a native syscall and a ptrace PTRACE_SYSEMU round trip. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"

uint64_t bench_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

typedef int (*trip_fn)(void *arg);

static int sample(trip_fn trip, void *arg, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	int r;
	for (unsigned i = 0; i < warmup; i++)
		if ((r = trip(arg)) < 0)
			return r;
	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = bench_now_ns();
		for (unsigned j = 0; j < batch; j++)
			if ((r = trip(arg)) < 0)
				return r;
		ns[i] = bench_now_ns() - t0;
	}
	return 0;
}

static int native_trip(void *arg)
{
	(void)arg;
	/* Raw syscall, not getppid(): libc must not be able to answer from a cache. */
	return syscall(SYS_getppid) < 0 ? -errno : 0;
}

int bench_floor_native(unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	return sample(native_trip, NULL, warmup, batch, ns, n);
}

struct tracee {
	pid_t pid;
	unsigned long long answer;   /* what the emulated getppid returns: the tracer is the parent */
};

/* -ESRCH: the child is gone (and reaped), which only happens if it could not be traced or died. */
static int wait_stop(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFSTOPPED(*status) ? 0 : -ESRCH;
}

/* One round trip as a ptrace sandbox does it: resume to the next syscall entry without running
 * it, read the registers, write the result, and (in the next round trip) resume again. */
static int ptrace_trip(void *arg)
{
	struct tracee *t = arg;
	struct user_regs_struct regs;
	int status;
	if (ptrace(PTRACE_SYSEMU, t->pid, 0, 0) < 0)
		return -errno;
	int r = wait_stop(t->pid, &status);
	if (r < 0)
		return r;
	if (WSTOPSIG(status) != SIGTRAP)
		return -EPROTO;
	if (ptrace(PTRACE_GETREGS, t->pid, 0, &regs) < 0)
		return -errno;
	if (regs.orig_rax != SYS_getppid)
		return -EPROTO;
	regs.rax = t->answer;
	return ptrace(PTRACE_SETREGS, t->pid, 0, &regs) < 0 ? -errno : 0;
}

/* The child: only async-signal-safe calls after fork, and nothing but getppid once traced. */
static _Noreturn void tracee_main(void)
{
	if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
		_exit(127);
	raise(SIGSTOP);
	for (;;)
		syscall(SYS_getppid);
}

static int trace(unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	struct tracee t = { .answer = (unsigned long long)getpid() };
	t.pid = fork();
	if (t.pid < 0)
		return -errno;
	if (t.pid == 0)
		tracee_main();
	int status, r = wait_stop(t.pid, &status);
	if (r == -ESRCH)
		return WIFEXITED(status) && WEXITSTATUS(status) == 127 ? -EPERM : -ESRCH;
	if (r == 0 && WSTOPSIG(status) != SIGSTOP)
		r = -EPROTO;
	/* EXITKILL: if this process dies mid-benchmark, the spinning child must not outlive it. */
	if (r == 0 && ptrace(PTRACE_SETOPTIONS, t.pid, 0, PTRACE_O_EXITKILL) < 0)
		r = -errno;
	if (r == 0)
		r = sample(ptrace_trip, &t, warmup, batch, ns, n);
	if (r == -ESRCH)
		return r;   /* already reaped: its pid may belong to someone else now */
	kill(t.pid, SIGKILL);
	while (waitpid(t.pid, &status, 0) < 0 && errno == EINTR)
		;
	return r;
}

int bench_floor_ptrace(unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	/* Tracer and tracee on one CPU, as ptrace sandboxes pin them (gVisor's ptrace platform binds
	 * its stub threads to the tracer's CPU): each stop is then a direct switch, not a cross-CPU
	 * wake-up, which is the cheapest ptrace round trip and so the honest floor. Unpinned if the
	 * affinity cannot be set; the tracee inherits the mask at fork. */
	cpu_set_t saved, one;
	bool pinned = false;
	int cpu = sched_getcpu();
	if (cpu >= 0 && sched_getaffinity(0, sizeof saved, &saved) == 0) {
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		pinned = sched_setaffinity(0, sizeof one, &one) == 0;
	}
	int r = trace(warmup, batch, ns, n);
	if (pinned)
		sched_setaffinity(0, sizeof saved, &saved);
	return r;
}
