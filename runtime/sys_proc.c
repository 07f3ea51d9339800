/* SPDX-License-Identifier: MIT */
/* The process itself: exit, thread-pointer setup, identity (one process, the runner's ids), limits,
 * uname/sysinfo, randomness, and the single-threaded answers to futex and wait4. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/times.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define ARCH_GET_GS 0x1004

static struct rt_mem *mem(struct rt_thread *t) { return &t->proc->mem; }

long sys_exit_group(struct rt_thread *t, const uint64_t a[6])
{
	t->proc->exited = true;
	t->proc->status = (int)(a[0] & 0xff);
	return RT_NORETURN;
}

/* With one thread, the thread's exit is the process's. */
long sys_exit(struct rt_thread *t, const uint64_t a[6]) { return sys_exit_group(t, a); }

static bool canonical(uint64_t v) { return v < RF_USER_END; }

long sys_arch_prctl(struct rt_thread *t, const uint64_t a[6])
{
	struct rf_regs *r = rf_context_regs(t->c);
	switch ((int)a[0]) {
	case ARCH_SET_FS:
		if (!canonical(a[1]))
			return -EPERM;
		r->fs_base = a[1];
		return 0;
	case ARCH_SET_GS:
		if (!canonical(a[1]))
			return -EPERM;
		r->gs_base = a[1];
		return 0;
	case ARCH_GET_FS:
		return mem_copy_out(mem(t), a[1], &r->fs_base, 8);
	case ARCH_GET_GS:
		return mem_copy_out(mem(t), a[1], &r->gs_base, 8);
	default:
		return -EINVAL;
	}
}

long sys_set_tid_address(struct rt_thread *t, const uint64_t a[6])
{
	t->tid_address = a[0];
	return t->proc->pid;
}

long sys_set_robust_list(struct rt_thread *t, const uint64_t a[6])
{
	(void)t;
	return a[1] != 24 ? -EINVAL : 0;   /* nothing to clean up: no other thread waits on our locks */
}

long sys_getpid(struct rt_thread *t, const uint64_t a[6]) { (void)a; return t->proc->pid; }
long sys_gettid(struct rt_thread *t, const uint64_t a[6]) { (void)a; return t->proc->pid; }
long sys_getppid(struct rt_thread *t, const uint64_t a[6]) { (void)a; return t->proc->ppid; }
long sys_getpgrp(struct rt_thread *t, const uint64_t a[6]) { (void)a; (void)t; return getpgrp(); }
long sys_getsid(struct rt_thread *t, const uint64_t a[6]) { (void)a; (void)t; return getsid(0); }
long sys_setpgid(struct rt_thread *t, const uint64_t a[6]) { (void)a; (void)t; return -EPERM; }

/* The runner's ids: files the program creates below --rw are the runner's anyway. */
long sys_getuid(struct rt_thread *t, const uint64_t a[6])
{
	(void)t;
	(void)a;
	return (long)getuid();
}

long sys_getgid(struct rt_thread *t, const uint64_t a[6])
{
	(void)t;
	(void)a;
	return (long)getgid();
}

long sys_setid(struct rt_thread *t, const uint64_t a[6])
{
	(void)t;
	(void)a;
	return -EPERM;
}

long sys_getgroups(struct rt_thread *t, const uint64_t a[6])
{
	(void)t;
	(void)a;
	return 0;
}

long sys_uname(struct rt_thread *t, const uint64_t a[6])
{
	struct utsname u;
	if (uname(&u) < 0)
		return -errno;
	/* The host's kernel and machine (what a libc checks), not its name. */
	strcpy(u.nodename, "ringfence");
	memset(u.domainname, 0, sizeof u.domainname);
	strcpy(u.domainname, "(none)");
	return mem_copy_out(mem(t), a[0], &u, sizeof u);
}

long sys_sysinfo(struct rt_thread *t, const uint64_t a[6])
{
	struct sysinfo si;
	if (sysinfo(&si) < 0)
		return -errno;
	/* Memory is the program's guest memory, not the host's. */
	const struct rt_mem *m = mem(t);
	si.mem_unit = RT_PAGE;
	si.totalram = m->npages;
	si.freeram = m->npages - m->used;
	si.sharedram = si.bufferram = si.totalswap = si.freeswap = si.totalhigh = si.freehigh = 0;
	si.procs = 1;
	return mem_copy_out(mem(t), a[0], &si, sizeof si);
}

static void limit_of(struct rt_thread *t, int res, struct rlimit *rl)
{
	rl->rlim_cur = rl->rlim_max = RLIM_INFINITY;
	if (res == RLIMIT_STACK)
		rl->rlim_cur = RT_STACK_SIZE;
	else if (res == RLIMIT_NOFILE)
		rl->rlim_cur = rl->rlim_max = RT_MAX_FDS;
	else if (res == RLIMIT_AS || res == RLIMIT_DATA)
		rl->rlim_cur = rl->rlim_max = mem(t)->npages * RT_PAGE;
}

long sys_prlimit64(struct rt_thread *t, const uint64_t a[6])
{
	if ((int)a[0] != 0 && (int)a[0] != t->proc->pid)
		return -ESRCH;
	if (a[1] >= RLIM_NLIMITS)
		return -EINVAL;
	struct rlimit old;
	limit_of(t, (int)a[1], &old);
	if (a[2]) {
		/* Limits are the runtime's; lowering one would be kept by Linux, we refuse honestly. */
		struct rlimit nv;
		if (mem_copy_in(mem(t), &nv, a[2], sizeof nv) < 0)
			return -EFAULT;
		if (nv.rlim_cur != old.rlim_cur || nv.rlim_max != old.rlim_max)
			return -EPERM;
	}
	return a[3] ? mem_copy_out(mem(t), a[3], &old, sizeof old) : 0;
}

long sys_getrlimit(struct rt_thread *t, const uint64_t a[6])
{
	uint64_t b[6] = { 0, a[0], 0, a[1] };
	return sys_prlimit64(t, b);
}

long sys_setrlimit(struct rt_thread *t, const uint64_t a[6])
{
	uint64_t b[6] = { 0, a[0], a[1], 0 };
	return sys_prlimit64(t, b);
}

long sys_getrandom(struct rt_thread *t, const uint64_t a[6])
{
	if (a[2] & ~(uint64_t)(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE))
		return -EINVAL;
	unsigned char buf[256];
	size_t len = a[1] < sizeof buf ? (size_t)a[1] : sizeof buf;   /* short reads are allowed */
	if (getrandom(buf, len, 0) != (ssize_t)len)
		return -EAGAIN;
	return mem_copy_out(mem(t), a[0], buf, len) < 0 ? -EFAULT : (long)len;
}

long sys_prctl(struct rt_thread *t, const uint64_t a[6])
{
	switch ((int)a[0]) {
	case PR_SET_NAME: {
		char name[16] = { 0 };
		long n = mem_str_in(mem(t), name, a[1], sizeof name);
		if (n == -EFAULT)
			return -EFAULT;
		name[15] = 0;
		memcpy(t->proc->comm, name, sizeof name);
		return 0;
	}
	case PR_GET_NAME:
		return mem_copy_out(mem(t), a[1], t->proc->comm, sizeof t->proc->comm);
	case PR_GET_DUMPABLE:
		return 0;
	case PR_SET_DUMPABLE: case PR_SET_PDEATHSIG: case PR_SET_NO_NEW_PRIVS:
		return 0;   /* already as good as it gets: nothing to dump, no parent, no privileges */
	default:
		return -EINVAL;
	}
}

long sys_sched_yield(struct rt_thread *t, const uint64_t a[6])
{
	(void)t;
	(void)a;
	return 0;
}

long sys_sched_getaffinity(struct rt_thread *t, const uint64_t a[6])
{
	/* One CPU: the program has one vCPU at a time. */
	if (a[1] < 8 || a[1] % 8)
		return -EINVAL;
	uint64_t set = 1;
	return mem_copy_out(mem(t), a[2], &set, sizeof set) < 0 ? -EFAULT : 8;
}

long sys_getcpu(struct rt_thread *t, const uint64_t a[6])
{
	unsigned zero = 0;
	if (a[0] && mem_copy_out(mem(t), a[0], &zero, sizeof zero) < 0)
		return -EFAULT;
	if (a[1] && mem_copy_out(mem(t), a[1], &zero, sizeof zero) < 0)
		return -EFAULT;
	return 0;
}

long sys_getrusage(struct rt_thread *t, const uint64_t a[6])
{
	struct rusage ru;
	if ((int)a[0] != RUSAGE_SELF && (int)a[0] != RUSAGE_CHILDREN && (int)a[0] != RUSAGE_THREAD)
		return -EINVAL;
	if (getrusage((int)a[0] == RUSAGE_CHILDREN ? RUSAGE_CHILDREN : RUSAGE_SELF, &ru) < 0)
		return -errno;
	if ((int)a[0] == RUSAGE_CHILDREN)
		memset(&ru, 0, sizeof ru);   /* no children */
	return mem_copy_out(mem(t), a[1], &ru, sizeof ru);
}

long sys_times(struct rt_thread *t, const uint64_t a[6])
{
	struct tms tm;
	clock_t now = times(&tm);
	tm.tms_cutime = tm.tms_cstime = 0;
	if (a[0] && mem_copy_out(mem(t), a[0], &tm, sizeof tm) < 0)
		return -EFAULT;
	return (long)now;
}

long sys_futex(struct rt_thread *t, const uint64_t a[6])
{
	int op = (int)a[1] & FUTEX_CMD_MASK;
	uint32_t val;
	switch (op) {
	case FUTEX_WAKE:
	case FUTEX_WAKE_BITSET:
		return 0;   /* nobody else to wake */
	case FUTEX_WAIT:
	case FUTEX_WAIT_BITSET:
		if (mem_copy_in(mem(t), &val, a[0], sizeof val) < 0)
			return -EFAULT;
		if (val != (uint32_t)a[2])
			return -EAGAIN;
		/* With no other thread to change it, only a signal or the timeout ends the wait. */
		if (a[3]) {
			struct timespec ts;
			if (mem_copy_in(mem(t), &ts, a[3], sizeof ts) < 0)
				return -EFAULT;
			int64_t ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
			if (op == FUTEX_WAIT_BITSET) {
				struct timespec now;
				clock_gettime((int)a[1] & FUTEX_CLOCK_REALTIME ? CLOCK_REALTIME : CLOCK_MONOTONIC, &now);
				ns -= (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
			}
			if (ns > 0 && waker_wait(t, NULL, 0, ns) == -EINTR)
				return -EINTR;
			return -ETIMEDOUT;
		}
		while (waker_wait(t, NULL, 0, -1) != -EINTR)
			;
		return -EINTR;
	default:
		return -ENOSYS;
	}
}

long sys_wait4(struct rt_thread *t, const uint64_t a[6])
{
	(void)t;
	(void)a;
	return -ECHILD;
}

long sys_enosys(struct rt_thread *t, const uint64_t a[6])
{
	(void)t;
	(void)a;
	return -ENOSYS;
}
