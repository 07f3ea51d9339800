/* SPDX-License-Identifier: MIT */
/* Acceptance program: SIGALRM from alarm() and from setitimer(ITIMER_REAL), delivered while the
 * program spins without syscalls and while it sleeps in pause(); a periodic timer. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define GIVE_UP_MS 10000   /* a spin that outlasts this reports the signal as lost */

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Spins on the flag; the clock is read only every few million iterations, so the signal almost
 * always lands in user code rather than in a syscall. */
static void spin(const char *what, long start, long at_least_ms)
{
	unsigned long n = 0;
	while (!alarms) {
		if (++n % (1ul << 22) == 0 && now_ms() - start > GIVE_UP_MS)
			break;
	}
	long took = now_ms() - start;
	printf("%s: delivered while spinning: %s, after >= %ld ms: %s\n", what, alarms ? "yes" : "no", at_least_ms,
	       alarms && took >= at_least_ms ? "yes" : "no");
}

static void paused(const char *what, long start, long at_least_ms)
{
	int r = pause();
	int e = errno;
	long took = now_ms() - start;
	printf("%s: pause() returns %d %s, handler ran: %s, after >= %ld ms: %s\n", what, r,
	       r < 0 && e == EINTR ? "EINTR" : "?", alarms ? "yes" : "no", at_least_ms, took >= at_least_ms ? "yes" : "no");
}

static void arm(long ms, long interval_ms)
{
	struct itimerval it = { { interval_ms / 1000, interval_ms % 1000 * 1000 }, { ms / 1000, ms % 1000 * 1000 } };
	if (setitimer(ITIMER_REAL, &it, NULL) < 0)
		printf("setitimer: %s\n", strerror(errno));
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sigaction sa = { .sa_handler = on_alarm };
	sigaction(SIGALRM, &sa, NULL);

	unsigned before = alarm(5), remaining = alarm(0);
	printf("alarm(5) returns %u, then alarm(0) returns 4 or 5: %s\n", before, remaining == 4 || remaining == 5 ? "yes" : "no");

	alarms = 0;
	long t = now_ms();
	alarm(1);
	spin("alarm(1)", t, 900);

	alarms = 0;
	t = now_ms();
	alarm(1);
	paused("alarm(1)", t, 900);

	alarms = 0;
	t = now_ms();
	arm(30, 0);
	spin("setitimer 30 ms", t, 25);

	alarms = 0;
	t = now_ms();
	arm(30, 0);
	paused("setitimer 30 ms", t, 25);

	struct itimerval left;
	arm(5000, 0);
	getitimer(ITIMER_REAL, &left);
	printf("getitimer on a 5 s timer: between 4 and 5 s left: %s\n",
	       left.it_value.tv_sec == 4 || (left.it_value.tv_sec == 5 && left.it_value.tv_usec == 0) ? "yes" : "no");
	arm(0, 0);
	getitimer(ITIMER_REAL, &left);
	printf("disarmed: %s\n", left.it_value.tv_sec == 0 && left.it_value.tv_usec == 0 ? "yes" : "no");

	/* Periodic: five ticks of 10 ms, each one waited for in pause(). */
	alarms = 0;
	t = now_ms();
	arm(10, 10);
	while (alarms < 5 && now_ms() - t < GIVE_UP_MS)
		pause();
	arm(0, 0);
	printf("periodic 10 ms timer: at least 5 ticks: %s, in >= 45 ms: %s\n", alarms >= 5 ? "yes" : "no",
	       now_ms() - t >= 45 ? "yes" : "no");

	/* sigsuspend: wait with SIGALRM unblocked only while waiting. */
	sigset_t block, old, wait_mask;
	sigemptyset(&block);
	sigaddset(&block, SIGALRM);
	sigprocmask(SIG_BLOCK, &block, &old);
	alarms = 0;
	arm(20, 0);
	wait_mask = old;
	sigdelset(&wait_mask, SIGALRM);
	int r = sigsuspend(&wait_mask);
	printf("sigsuspend returns %d %s, handler ran: %s\n", r, r < 0 && errno == EINTR ? "EINTR" : "?", alarms ? "yes" : "no");
	sigprocmask(SIG_SETMASK, &old, NULL);
	return 0;
}
