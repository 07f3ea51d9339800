/* SPDX-License-Identifier: MIT */
/* Acceptance program: clock_gettime, gettimeofday, time, nanosleep, clock_nanosleep. Prints only
 * facts that hold on any run ("advanced by >= 10 ms: yes"), never the times themselves. */
#include <errno.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static long long ns(struct timespec t)
{
	return t.tv_sec * 1000000000ll + t.tv_nsec;
}

static long long mono(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return ns(t);
}

static const char *yes(int c)
{
	return c ? "yes" : "no";
}

int main(void)
{
	struct timespec rt, res;
	struct timeval tv;
	clock_gettime(CLOCK_REALTIME, &rt);
	gettimeofday(&tv, NULL);
	time_t now = time(NULL);
	long long tv_ns = tv.tv_sec * 1000000000ll + tv.tv_usec * 1000ll;
	printf("realtime is after 2020: %s\n", yes(rt.tv_sec > 1577836800));
	printf("gettimeofday within 1 s of CLOCK_REALTIME: %s\n", yes(tv_ns - ns(rt) < 1000000000ll && ns(rt) - tv_ns < 1000000000ll));
	printf("time() within 1 s of it: %s\n", yes(now - rt.tv_sec <= 1 && rt.tv_sec - now <= 1));
	printf("time(&t) stores what it returns: %s\n", yes(time(&now) == now));
	printf("tv_nsec in range: %s, tv_usec in range: %s\n", yes(rt.tv_nsec >= 0 && rt.tv_nsec < 1000000000),
	       yes(tv.tv_usec >= 0 && tv.tv_usec < 1000000));
	printf("CLOCK_MONOTONIC resolution <= 1 ms: %s\n",
	       yes(clock_getres(CLOCK_MONOTONIC, &res) == 0 && res.tv_sec == 0 && res.tv_nsec <= 1000000));

	long long a = mono(), b = a;
	int back = 0;
	for (int i = 0; i < 10000; i++) {
		long long c = mono();
		back |= c < b;
		b = c;
	}
	printf("monotonic never goes back over 10000 reads: %s\n", yes(!back));

	struct timespec ten = { 0, 10000000 }, rem = { 1, 1 };
	a = mono();
	int r = nanosleep(&ten, &rem);
	printf("nanosleep 10 ms returns %d, monotonic advanced by >= 10 ms: %s, < 5 s: %s\n", r,
	       yes(mono() - a >= 10000000), yes(mono() - a < 5000000000ll));

	a = mono();
	r = clock_nanosleep(CLOCK_MONOTONIC, 0, &ten, NULL);
	printf("clock_nanosleep relative 10 ms returns %d, advanced by >= 10 ms: %s\n", r, yes(mono() - a >= 10000000));

	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	long long target = ns(until) + 20000000;
	until.tv_sec = (time_t)(target / 1000000000);
	until.tv_nsec = (long)(target % 1000000000);
	r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
	printf("clock_nanosleep absolute +20 ms returns %d, now past the deadline: %s\n", r, yes(mono() >= target));

	clock_gettime(CLOCK_REALTIME, &rt);
	a = ns(rt);
	r = clock_nanosleep(CLOCK_REALTIME, 0, &ten, NULL);
	clock_gettime(CLOCK_REALTIME, &rt);
	printf("clock_nanosleep on CLOCK_REALTIME returns %d, realtime advanced by >= 9 ms: %s\n", r,
	       yes(ns(rt) - a >= 9000000));

	struct timespec bad = { 0, 1000000000 };
	r = nanosleep(&bad, NULL);
	printf("nanosleep with tv_nsec = 1e9: %d %s\n", r, r < 0 && errno == EINVAL ? "EINVAL" : "?");
	struct timespec zero = { 0, 0 };
	printf("nanosleep of 0: %d\n", nanosleep(&zero, NULL));
	struct timespec cpu;
	printf("CLOCK_PROCESS_CPUTIME_ID reads: %s\n", yes(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu) == 0));
	return 0;
}
