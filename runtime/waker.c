/* SPDX-License-Identifier: MIT */
/* The waker: one host thread that turns timers (alarm, setitimer) and signals sent to ringfence
 * (SIGINT, SIGTERM, SIGHUP, SIGQUIT) into guest signals. It marks them raised, kicks the context
 * out of the guest (rf_kick) and wakes a runtime sleep; the runner thread delivers them. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

struct rt_waker {
	pthread_t thread;
	int timer, sigs, wake, stop;
	_Atomic uint64_t raised;
	rf_context *c;
	sigset_t forwarded, old_mask;
};

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

static void raise_async(struct rt_waker *w, int sig)
{
	atomic_fetch_or(&w->raised, sigbit(sig));
	uint64_t one = 1;
	(void)!write(w->wake, &one, sizeof one);
	rf_kick(w->c);
}

static void *waker_main(void *arg)
{
	struct rt_waker *w = arg;
	for (;;) {
		struct pollfd p[3] = { { w->timer, POLLIN, 0 }, { w->sigs, POLLIN, 0 }, { w->stop, POLLIN, 0 } };
		if (poll(p, 3, -1) < 0)
			continue;
		if (p[2].revents)
			return NULL;
		uint64_t n;
		if (p[0].revents && read(w->timer, &n, sizeof n) == sizeof n)
			raise_async(w, SIGALRM);
		struct signalfd_siginfo si;
		if (p[1].revents && read(w->sigs, &si, sizeof si) == sizeof si)
			raise_async(w, (int)si.ssi_signo);
	}
}

int waker_start(struct rt_proc *proc, struct rt_thread *t)
{
	struct rt_waker *w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	w->c = t->c;
	sigemptyset(&w->forwarded);
	for (unsigned i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
		sigaddset(&w->forwarded, forwarded[i]);
	/* Blocked here before the thread starts, so both threads have them blocked and only the
	 * signalfd sees them. */
	pthread_sigmask(SIG_BLOCK, &w->forwarded, &w->old_mask);
	w->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	w->sigs = signalfd(-1, &w->forwarded, SFD_CLOEXEC);
	w->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->stop = eventfd(0, EFD_CLOEXEC);
	proc->waker = w;
	if (w->timer < 0 || w->sigs < 0 || w->wake < 0 || w->stop < 0 ||
	    pthread_create(&w->thread, NULL, waker_main, w) != 0) {
		waker_stop(proc);
		return errno ? -errno : -ENOMEM;
	}
	return 0;
}

void waker_stop(struct rt_proc *proc)
{
	struct rt_waker *w = proc->waker;
	if (!w)
		return;
	if (w->thread) {
		uint64_t one = 1;
		(void)!write(w->stop, &one, sizeof one);
		pthread_join(w->thread, NULL);
	}
	int fds[] = { w->timer, w->sigs, w->wake, w->stop };
	for (unsigned i = 0; i < 4; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	pthread_sigmask(SIG_SETMASK, &w->old_mask, NULL);
	free(w);
	proc->waker = NULL;
}

uint64_t waker_take(struct rt_proc *proc)
{
	return proc->waker ? atomic_exchange(&proc->waker->raised, 0) : 0;
}

int waker_wait(struct rt_thread *t, struct pollfd *fds, int n, int64_t timeout_ns)
{
	struct pollfd p[1 + RT_MAX_FDS];
	if (n < 0 || n > RT_MAX_FDS)
		return -EINVAL;
	struct rt_waker *w = t->proc->waker;
	uint64_t deadline = timeout_ns < 0 ? UINT64_MAX : rt_now_ns() + (uint64_t)timeout_ns;
	for (;;) {
		signal_collect(t);
		if (signal_interrupts(t))
			return -EINTR;
		uint64_t now = rt_now_ns();
		if (now >= deadline)
			return 0;
		p[0] = (struct pollfd){ w->wake, POLLIN, 0 };
		for (int i = 0; i < n; i++)
			p[1 + i] = fds[i];
		struct timespec ts, *tsp = NULL;
		if (deadline != UINT64_MAX) {
			uint64_t left = deadline - now;
			ts = (struct timespec){ (time_t)(left / 1000000000u), (long)(left % 1000000000u) };
			tsp = &ts;
		}
		int r = ppoll(p, (nfds_t)n + 1, tsp, NULL);
		if (r < 0 && errno != EINTR)
			return -errno;
		uint64_t drained;
		if (r > 0 && p[0].revents) {
			(void)!read(w->wake, &drained, sizeof drained);
			r--;
		}
		if (r > 0) {
			for (int i = 0; i < n; i++)
				fds[i].revents = p[1 + i].revents;
			return r;
		}
	}
}

int waker_itimer(struct rt_proc *proc, uint64_t value, uint64_t interval, uint64_t *old_value,
                 uint64_t *old_interval)
{
	struct rt_waker *w = proc->waker;
	struct itimerspec nv = {
		.it_value = { (time_t)(value / 1000000000u), (long)(value % 1000000000u) },
		.it_interval = { (time_t)(interval / 1000000000u), (long)(interval % 1000000000u) },
	}, ov;
	if (timerfd_gettime(w->timer, &ov) < 0)
		return -errno;
	if (old_value)
		*old_value = (uint64_t)ov.it_value.tv_sec * 1000000000u + (uint64_t)ov.it_value.tv_nsec;
	if (old_interval)
		*old_interval = (uint64_t)ov.it_interval.tv_sec * 1000000000u + (uint64_t)ov.it_interval.tv_nsec;
	if (value == UINT64_MAX)
		return 0;   /* a read only */
	return timerfd_settime(w->timer, 0, &nv, NULL) < 0 ? -errno : 0;
}
