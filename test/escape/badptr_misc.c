/* SPDX-License-Identifier: MIT */
/* Bad pointers and hostile values for time, identity and signal calls, and syscall numbers no
 * runtime serves. */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "badptr.h"

static void times(void)
{
	unsigned char *g = badptr_good;
	FOR_BAD(1, '=', "clock_gettime.%s", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, p));
	CASE('=', "clock_gettime.clock_1000", syscall(SYS_clock_gettime, 1000, g));
	CASE('=', "clock_gettime.clock_-1", syscall(SYS_clock_gettime, -1, g));
	FOR_BAD(1, '=', "clock_getres.%s", syscall(SYS_clock_getres, CLOCK_MONOTONIC, p));
	CASE('=', "clock_getres.null", syscall(SYS_clock_getres, CLOCK_MONOTONIC, NULL));
	FOR_BAD(1, '=', "gettimeofday.tv.%s", syscall(SYS_gettimeofday, p, NULL));
	FOR_BAD(1, '=', "gettimeofday.tz.%s", syscall(SYS_gettimeofday, g, p));
	CASE('=', "gettimeofday.null_null", syscall(SYS_gettimeofday, NULL, NULL));
	FOR_BAD(0, '=', "nanosleep.req.%s", syscall(SYS_nanosleep, p, NULL));
	struct timespec *ts = (struct timespec *)g;
	static const struct { const char *name; long sec, nsec; } bad_ts[] = {
		{ "nanosleep.nsec_-1", 0, -1 }, { "nanosleep.sec_-1", -1, 0 },
		{ "nanosleep.nsec_1e9", 0, 1000000000 }, { "nanosleep.nsec_max", 0, 0x7fffffffffffffffl },
	};
	for (unsigned i = 0; i < sizeof bad_ts / sizeof bad_ts[0]; i++) {
		*ts = (struct timespec){ bad_ts[i].sec, bad_ts[i].nsec };
		CASE('=', bad_ts[i].name, syscall(SYS_nanosleep, ts, NULL));
	}
	*ts = (struct timespec){ 0, 1 };
	FOR_BAD(1, '=', "nanosleep.rem_unused.%s", syscall(SYS_nanosleep, ts, p));
	FOR_BAD(0, '=', "clock_nanosleep.req.%s", syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, p, NULL));
	CASE('=', "clock_nanosleep.clock_1000", syscall(SYS_clock_nanosleep, 1000, 0, ts, NULL));
}

static void identity(void)
{
	FOR_BAD(1, '=', "uname.%s", syscall(SYS_uname, p));
	FOR_BAD(1, '=', "sysinfo.%s", syscall(SYS_sysinfo, p));
}

static void signals(void)
{
	unsigned char *g = badptr_good;
	memset(g, 0, 64);                 /* an empty mask, SIG_DFL */
	FOR_BAD(0, '=', "rt_sigaction.act.%s", syscall(SYS_rt_sigaction, SIGUSR1, p, NULL, 8));
	FOR_BAD(1, '=', "rt_sigaction.old.%s", syscall(SYS_rt_sigaction, SIGUSR1, NULL, p, 8));
	CASE('=', "rt_sigaction.setsize_4", syscall(SYS_rt_sigaction, SIGUSR1, g, NULL, 4));
	CASE('=', "rt_sigaction.setsize_16", syscall(SYS_rt_sigaction, SIGUSR1, g, NULL, 16));
	CASE('=', "rt_sigaction.signal_0", syscall(SYS_rt_sigaction, 0, g, NULL, 8));
	CASE('=', "rt_sigaction.signal_65", syscall(SYS_rt_sigaction, 65, g, NULL, 8));
	CASE('=', "rt_sigaction.signal_-1", syscall(SYS_rt_sigaction, -1, g, NULL, 8));
	CASE('=', "rt_sigaction.signal_high_bits", syscall(SYS_rt_sigaction, (1l << 32) | SIGUSR1, NULL, g + 64, 8));
	CASE('=', "rt_sigaction.sigkill_set", syscall(SYS_rt_sigaction, SIGKILL, g, NULL, 8));
	CASE('=', "rt_sigaction.sigkill_query", syscall(SYS_rt_sigaction, SIGKILL, NULL, g + 64, 8));
	FOR_BAD(0, '=', "rt_sigprocmask.set.%s", syscall(SYS_rt_sigprocmask, SIG_BLOCK, p, NULL, 8));
	FOR_BAD(1, '=', "rt_sigprocmask.old.%s", syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, p, 8));
	CASE('=', "rt_sigprocmask.how_99", syscall(SYS_rt_sigprocmask, 99, g, NULL, 8));
	CASE('=', "rt_sigprocmask.setsize_4", syscall(SYS_rt_sigprocmask, SIG_BLOCK, g, NULL, 4));
	CASE('=', "rt_sigprocmask.empty_block", syscall(SYS_rt_sigprocmask, SIG_BLOCK, g, NULL, 8));
}

static void numbers(void)
{
	static const struct { const char *name; long nr; char cls; } nrs[] = {
		{ "syscall.400_unassigned", 400, '=' }, { "syscall.423_unassigned", 423, '=' },
		{ "syscall.1000", 1000, '=' }, { "syscall.2^31-1", 0x7fffffff, '=' },
		{ "syscall.-1", -1, '=' }, { "syscall.2^32-1", 0xffffffffl, '=' },
		{ "syscall.2^63", (long)(1ul << 63), '=' },
		{ "syscall.x32_getpid", 0x40000000l | SYS_getpid, '=' },
		{ "syscall.high_bits_getpid", (1l << 32) | SYS_getpid, 's' },
	};
	for (unsigned i = 0; i < sizeof nrs / sizeof nrs[0]; i++)
		CASE(nrs[i].cls, nrs[i].name, syscall(nrs[i].nr, 0, 0, 0, 0, 0, 0));
}

void badptr_misc(void)
{
	times();
	identity();
	signals();
	numbers();
}
