/* SPDX-License-Identifier: MIT */
/* Signal syscalls: actions and masks, the alternate stack, kill to itself, waiting (pause,
 * sigsuspend) and the ITIMER_REAL timer (alarm, setitimer) kept by the waker. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/time.h>

#include "runtime.h"

#define UNBLOCKABLE (sigbit(SIGKILL) | sigbit(SIGSTOP))

static struct rt_mem *mem(struct rt_thread *t) { return &t->proc->mem; }

long sys_rt_sigaction(struct rt_thread *t, const uint64_t a[6])
{
	int sig = (int)a[0];
	if (a[3] != 8 || sig < 1 || sig > RT_NSIG)
		return -EINVAL;
	struct rt_sigaction nv;
	if (a[1]) {
		if (sig == SIGKILL || sig == SIGSTOP)
			return -EINVAL;
		if (mem_copy_in(mem(t), &nv, a[1], sizeof nv) < 0)
			return -EFAULT;
	}
	if (a[2] && mem_copy_out(mem(t), a[2], &t->proc->act[sig], sizeof nv) < 0)
		return -EFAULT;
	if (a[1]) {
		nv.mask &= ~UNBLOCKABLE;
		t->proc->act[sig] = nv;
		/* A pending signal that is now ignored goes away, as on Linux. */
		if (nv.handler == (uint64_t)(uintptr_t)SIG_IGN ||
		    (nv.handler == (uint64_t)(uintptr_t)SIG_DFL &&
		     (sig == SIGCHLD || sig == SIGCONT || sig == SIGURG || sig == SIGWINCH)))
			t->pending &= ~sigbit(sig);
	}
	return 0;
}

long sys_rt_sigprocmask(struct rt_thread *t, const uint64_t a[6])
{
	if (a[3] != 8)
		return -EINVAL;
	uint64_t set = 0, old = t->mask;
	if (a[1]) {
		if (mem_copy_in(mem(t), &set, a[1], sizeof set) < 0)
			return -EFAULT;
		switch ((int)a[0]) {
		case SIG_BLOCK: t->mask |= set; break;
		case SIG_UNBLOCK: t->mask &= ~set; break;
		case SIG_SETMASK: t->mask = set; break;
		default: return -EINVAL;
		}
		t->mask &= ~UNBLOCKABLE;
	}
	if (a[2] && mem_copy_out(mem(t), a[2], &old, sizeof old) < 0)
		return -EFAULT;
	return 0;
}

long sys_rt_sigpending(struct rt_thread *t, const uint64_t a[6])
{
	if (a[1] > 8)
		return -EINVAL;
	signal_collect(t);
	uint64_t p = t->pending & t->mask;
	return mem_copy_out(mem(t), a[0], &p, a[1]);
}

long sys_rt_sigsuspend(struct rt_thread *t, const uint64_t a[6])
{
	uint64_t set;
	if (a[1] != 8)
		return -EINVAL;
	if (mem_copy_in(mem(t), &set, a[0], sizeof set) < 0)
		return -EFAULT;
	t->saved_mask = t->mask;
	t->has_saved_mask = true;
	t->mask = set & ~UNBLOCKABLE;
	while (waker_wait(t, NULL, 0, -1) != -EINTR)
		;
	return -EINTR;
}

long sys_pause(struct rt_thread *t, const uint64_t a[6])
{
	(void)a;
	while (waker_wait(t, NULL, 0, -1) != -EINTR)
		;
	return -EINTR;
}

long sys_sigaltstack(struct rt_thread *t, const uint64_t a[6])
{
	struct { uint64_t sp; int32_t flags, pad; uint64_t size; } ss, old = {
		t->altstack_sp, t->altstack_size ? t->altstack_flags : SS_DISABLE, 0, t->altstack_size };
	uint64_t rsp = rf_context_regs(t->c)->rsp;
	bool on = t->altstack_size && rsp - t->altstack_sp < t->altstack_size;
	if (on)
		old.flags = SS_ONSTACK;
	if (a[0]) {
		if (mem_copy_in(mem(t), &ss, a[0], sizeof ss) < 0)
			return -EFAULT;
		if (on)
			return -EPERM;
		if (ss.flags & ~(SS_DISABLE | (1 << 31) /* SS_AUTODISARM */))
			return -EINVAL;
		if (ss.flags & SS_DISABLE) {
			t->altstack_sp = t->altstack_size = 0;
		} else {
			if (ss.size < 2048 /* MINSIGSTKSZ */)
				return -ENOMEM;
			t->altstack_sp = ss.sp;
			t->altstack_size = ss.size;
		}
		t->altstack_flags = 0;
	}
	if (a[1] && mem_copy_out(mem(t), a[1], &old, sizeof old) < 0)
		return -EFAULT;
	return 0;
}

/* kill and friends reach only this process: there is no other. */
static long send(struct rt_thread *t, int sig, int code)
{
	if (sig < 0 || sig > RT_NSIG)
		return -EINVAL;
	if (sig)
		signal_raise(t, sig, code, 0, t->proc->pid);
	return 0;
}

long sys_kill(struct rt_thread *t, const uint64_t a[6])
{
	int pid = (int)a[0];
	if (pid != t->proc->pid && pid != 0 && pid != -1 && pid != -t->proc->pid)
		return -ESRCH;
	return send(t, (int)a[1], SI_USER);
}

long sys_tkill(struct rt_thread *t, const uint64_t a[6])
{
	return (int)a[0] == t->proc->pid ? send(t, (int)a[1], SI_TKILL) : (int)a[0] <= 0 ? -EINVAL : -ESRCH;
}

long sys_tgkill(struct rt_thread *t, const uint64_t a[6])
{
	if ((int)a[0] <= 0 || (int)a[1] <= 0)
		return -EINVAL;
	return (int)a[0] == t->proc->pid && (int)a[1] == t->proc->pid ? send(t, (int)a[2], SI_TKILL) : -ESRCH;
}

long sys_alarm(struct rt_thread *t, const uint64_t a[6])
{
	uint64_t old;
	unsigned secs = (unsigned)a[0];
	int e = waker_itimer(t->proc, (uint64_t)secs * 1000000000u, 0, &old, NULL);
	if (e < 0)
		return e;
	/* Remaining whole seconds, rounded up as Linux does (never 0 for a live timer). */
	return (long)((old + 999999999u) / 1000000000u);
}

static uint64_t tv_ns(const struct timeval *tv) { return (uint64_t)tv->tv_sec * 1000000000u + (uint64_t)tv->tv_usec * 1000u; }
static struct timeval ns_tv(uint64_t ns) { return (struct timeval){ (time_t)(ns / 1000000000u), (suseconds_t)(ns % 1000000000u / 1000u) }; }

long sys_setitimer(struct rt_thread *t, const uint64_t a[6])
{
	if ((int)a[0] != ITIMER_REAL)
		return -EINVAL;   /* ITIMER_VIRTUAL/PROF: not served (they need CPU-time accounting) */
	struct itimerval nv = { 0 }, ov;
	if (a[1] && mem_copy_in(mem(t), &nv, a[1], sizeof nv) < 0)
		return -EFAULT;
	if (nv.it_value.tv_sec < 0 || nv.it_value.tv_usec < 0 || nv.it_value.tv_usec >= 1000000 ||
	    nv.it_interval.tv_sec < 0 || nv.it_interval.tv_usec < 0 || nv.it_interval.tv_usec >= 1000000)
		return -EINVAL;
	uint64_t ovv, ovi;
	int e = waker_itimer(t->proc, a[1] ? tv_ns(&nv.it_value) : UINT64_MAX, tv_ns(&nv.it_interval), &ovv, &ovi);
	if (e < 0)
		return e;
	ov.it_value = ns_tv(ovv);
	ov.it_interval = ns_tv(ovi);
	return a[2] ? mem_copy_out(mem(t), a[2], &ov, sizeof ov) : 0;
}

long sys_getitimer(struct rt_thread *t, const uint64_t a[6])
{
	if ((int)a[0] != ITIMER_REAL)
		return -EINVAL;
	uint64_t v, i;
	int e = waker_itimer(t->proc, UINT64_MAX, 0, &v, &i);
	if (e < 0)
		return e;
	struct itimerval ov = { ns_tv(i), ns_tv(v) };
	return mem_copy_out(mem(t), a[1], &ov, sizeof ov);
}
