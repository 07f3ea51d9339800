/* SPDX-License-Identifier: MIT */
/* The kick watchdog thread. It waits on a condition variable with a deadline (CLOCK_MONOTONIC), so
 * it wakes exactly when a switch has run too long or when the driver disarms it; no polling. */
#include <errno.h>

#include "watchdog.h"

static void after_ms(struct timespec *t, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_sec += ms / 1000;
	t->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

static void *watch(void *arg)
{
	struct watchdog *w = arg;
	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		if (!w->armed) {
			w->idle = true;
			pthread_cond_wait(&w->cv, &w->mu);
			w->idle = false;
			continue;
		}
		uint64_t seq = w->arm_seq;
		const struct timespec *until = w->kicked ? &w->hang_at : &w->kick_at;
		int r = pthread_cond_timedwait(&w->cv, &w->mu, until);
		if (r != ETIMEDOUT || !w->armed || w->arm_seq != seq)
			continue;
		if (!w->kicked) {
			/* Under the lock: the driver cannot disarm and destroy c meanwhile. */
			rf_kick(w->c);
			w->kicked = true;
			after_ms(&w->hang_at, w->hang_s * 1000);
		} else {
			w->on_hang(w->arg);
		}
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int watchdog_start(struct watchdog *w, unsigned kick_ms, unsigned hang_s, void (*on_hang)(void *), void *arg)
{
	*w = (struct watchdog){ .kick_ms = kick_ms, .hang_s = hang_s, .on_hang = on_hang, .arg = arg };
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	return -pthread_create(&w->thread, NULL, watch, w);
}

void watchdog_arm(struct watchdog *w, rf_context *c)
{
	pthread_mutex_lock(&w->mu);
	bool was_kicked = w->kicked;    /* then the thread may wait for a later hang deadline */
	w->c = c;
	w->armed = true;
	w->kicked = false;
	w->arm_seq++;
	after_ms(&w->kick_at, w->kick_ms);
	/* A thread already in a timed wait wakes at its older deadline, sees a new arm_seq and
	 * waits again: only an idle one (or one waiting for a hang) needs waking, which keeps a switch free of thread wake-ups. */
	if (w->idle || was_kicked)
		pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

bool watchdog_disarm(struct watchdog *w)
{
	pthread_mutex_lock(&w->mu);
	bool kicked = w->kicked;
	w->armed = false;
	w->c = NULL;
	pthread_mutex_unlock(&w->mu);
	return kicked;
}

void watchdog_stop(struct watchdog *w)
{
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
}
