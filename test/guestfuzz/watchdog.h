/* SPDX-License-Identifier: MIT */
/* The kick watchdog: a second thread that kicks a switch running too long, and declares a hang
 * when even the kick does not bring it back. */
#ifndef GUESTFUZZ_WATCHDOG_H
#define GUESTFUZZ_WATCHDOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "ringfence.h"

struct watchdog {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	rf_context *c;              /* the context being switched while armed */
	bool armed, kicked, stop, idle;
	uint64_t arm_seq;
	struct timespec kick_at, hang_at;
	unsigned kick_ms, hang_s;
	void (*on_hang)(void *arg); /* called on the watchdog thread; must not return */
	void *arg;
};

int watchdog_start(struct watchdog *w, unsigned kick_ms, unsigned hang_s, void (*on_hang)(void *), void *arg);
void watchdog_arm(struct watchdog *w, rf_context *c);
/* Ends the watch over one switch; true if the watchdog kicked c during it. */
bool watchdog_disarm(struct watchdog *w);
void watchdog_stop(struct watchdog *w);

#endif
