/* SPDX-License-Identifier: MIT */
/* Time from the host clocks (there is no vDSO in the guest: every clock read is a syscall), and
 * sleeps that a signal interrupts as it would natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/time.h>
#include <time.h>

#include "runtime.h"

uint64_t rt_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct rt_mem *mem(struct rt_thread *t) { return &t->proc->mem; }

static bool clock_ok(uint64_t id)
{
	/* The system clocks; CPU-time clocks of other processes (negative ids) do not exist here. */
	return id <= CLOCK_BOOTTIME || id == CLOCK_TAI;
}

static long sleep_for(struct rt_thread *t, clockid_t clk, const struct timespec *req, bool abs, uint64_t rem_va)
{
	if (req->tv_sec < 0 || req->tv_nsec < 0 || req->tv_nsec >= 1000000000)
		return -EINVAL;
	struct timespec now;
	clock_gettime(clk, &now);
	int64_t ns = (int64_t)req->tv_sec * 1000000000 + req->tv_nsec;
	if (abs)
		ns -= (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	if (ns <= 0)
		return 0;
	uint64_t start = rt_now_ns();
	if (waker_wait(t, NULL, 0, ns) != -EINTR)
		return 0;
	if (!abs && rem_va) {
		uint64_t spent = rt_now_ns() - start, left = spent < (uint64_t)ns ? (uint64_t)ns - spent : 0;
		struct timespec rem = { (time_t)(left / 1000000000u), (long)(left % 1000000000u) };
		if (mem_copy_out(mem(t), rem_va, &rem, sizeof rem) < 0)
			return -EFAULT;
	}
	return -EINTR;
}

long sys_nanosleep(struct rt_thread *t, const uint64_t a[6])
{
	struct timespec req;
	if (mem_copy_in(mem(t), &req, a[0], sizeof req) < 0)
		return -EFAULT;
	return sleep_for(t, CLOCK_MONOTONIC, &req, false, a[1]);
}

long sys_clock_nanosleep(struct rt_thread *t, const uint64_t a[6])
{
	if (!clock_ok(a[0]) || a[0] == CLOCK_PROCESS_CPUTIME_ID || a[0] == CLOCK_THREAD_CPUTIME_ID)
		return -EINVAL;
	struct timespec req;
	if (mem_copy_in(mem(t), &req, a[2], sizeof req) < 0)
		return -EFAULT;
	return sleep_for(t, (clockid_t)a[0], &req, a[1] & TIMER_ABSTIME, a[3]);
}

long sys_clock_gettime(struct rt_thread *t, const uint64_t a[6])
{
	if (!clock_ok(a[0]))
		return -EINVAL;
	struct timespec ts;
	if (clock_gettime((clockid_t)a[0], &ts) < 0)
		return -errno;
	return mem_copy_out(mem(t), a[1], &ts, sizeof ts);
}

long sys_clock_getres(struct rt_thread *t, const uint64_t a[6])
{
	if (!clock_ok(a[0]))
		return -EINVAL;
	struct timespec ts;
	if (clock_getres((clockid_t)a[0], &ts) < 0)
		return -errno;
	return a[1] ? mem_copy_out(mem(t), a[1], &ts, sizeof ts) : 0;
}

long sys_gettimeofday(struct rt_thread *t, const uint64_t a[6])
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	if (a[0] && mem_copy_out(mem(t), a[0], &tv, sizeof tv) < 0)
		return -EFAULT;
	if (a[1]) {
		struct { int minuteswest, dsttime; } tz = { 0, 0 };
		if (mem_copy_out(mem(t), a[1], &tz, sizeof tz) < 0)
			return -EFAULT;
	}
	return 0;
}

long sys_time(struct rt_thread *t, const uint64_t a[6])
{
	int64_t now = (int64_t)time(NULL);
	if (a[0] && mem_copy_out(mem(t), a[0], &now, sizeof now) < 0)
		return -EFAULT;
	return (long)now;
}
