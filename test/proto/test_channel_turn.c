/* SPDX-License-Identifier: MIT */
/* The switch channel's turn word between two processes, without KVM: a child maps the page from its
 * memfd and answers each message with its number plus one, for thousands of round trips in three
 * phases: both sides always asleep on the word (every hand-over is a futex wake), both awake
 * (spinning), and a random mix with random pauses on both sides to shuffle the interleavings. A
 * lost wake-up would not hang (each sleep also ends at the check interval) but is counted (`late`)
 * and fails the test; so do a wrong answer and a child that does not end when the page is closed.
 *
 *   test_channel_turn */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto.h"
#include "tap.h"

#define ROUNDS 6000   /* per phase */

/* What each message carries: its number, and how the child waits for the next one. */
struct msg {
	uint64_t seq;
	uint64_t cap_ns;     /* the child's spin cap for its next wait */
	uint32_t pause_ns;   /* the child busy-waits this long before answering */
};

/* What the child leaves in the page once it is closed. */
struct report {
	uint64_t answered, slept, late, bad;
};

static pid_t child_pid;

static void pause_for(uint32_t ns)
{
	uint64_t end = spin_now_ns() + ns;
	while (spin_now_ns() < end)
		;
}

static bool parent_gone(void *arg)
{
	(void)arg;
	return getppid() == 1;
}

static void child(int fd)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	struct channel_page *pg;
	if (channel_map(fd, &pg) < 0)   /* a mapping of its own, as a client process has */
		_exit(2);
	struct spin sp = { 0 };
	struct report rep = { 0 };
	uint64_t cap = 0;
	while (channel_wait(pg, CHANNEL_SERVER, &sp, cap, parent_gone, NULL) == 0) {
		struct msg m;
		if (pg->len != sizeof m) {
			rep.bad++;
			m.seq = 0, m.cap_ns = 0, m.pause_ns = 0;
		} else
			memcpy(&m, pg->data, sizeof m);
		pause_for(m.pause_ns);
		m.seq++;
		memcpy(pg->data, &m, sizeof m);
		pg->len = sizeof m;
		cap = m.cap_ns;
		rep.answered++;
		channel_give(pg, CHANNEL_CLIENT, &sp);
	}
	rep.slept = sp.slept;
	rep.late = sp.late;
	memcpy(pg->data, &rep, sizeof rep);
	pg->len = sizeof rep;
	_exit(0);
}

static bool child_gone(void *arg)
{
	(void)arg;
	return waitpid(child_pid, NULL, WNOHANG) != 0;
}

/* A small generator of our own: the run is the same every time. */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

struct phase {
	const char *name;
	uint64_t answered_wrong, slept, late;
};

/* ROUNDS round trips; caps and pauses from mode: 0 asleep, 1 awake, 2 mixed. */
static void run_phase(struct channel_page *pg, uint64_t *seq, int mode, struct phase *ph)
{
	struct spin sp = { 0 };
	for (unsigned i = 0; i < ROUNDS; i++) {
		uint64_t mine = mode == 1 ? CHANNEL_SPIN_CAP_NS : 0;
		struct msg m = { .seq = ++*seq, .cap_ns = mode == 1 ? CHANNEL_SPIN_CAP_NS : 0 };
		if (mode == 2) {
			uint64_t r = rnd();
			mine = r & 1 ? CHANNEL_SPIN_CAP_NS : 0;
			m.cap_ns = r & 2 ? CHANNEL_SPIN_CAP_NS : 0;
			m.pause_ns = (uint32_t)(r >> 32) % 20000;
			pause_for((uint32_t)(r >> 16) % 20000);
		}
		memcpy(pg->data, &m, sizeof m);
		pg->len = sizeof m;
		channel_give(pg, CHANNEL_SERVER, &sp);
		if (channel_wait(pg, CHANNEL_CLIENT, &sp, mine, child_gone, NULL) < 0) {
			ph->answered_wrong += ROUNDS - i;
			break;
		}
		struct msg back;
		memcpy(&back, pg->data, sizeof back);
		ph->answered_wrong += pg->len != sizeof back || back.seq != *seq + 1;
		*seq = back.seq;
	}
	ph->slept = sp.slept;
	ph->late = sp.late;
}

int main(void)
{
	int fd;
	struct channel_page *pg;
	int e = channel_create(&fd, &pg);
	if (e < 0) {
		printf("Bail out! channel_create: %s\n", strerror(-e));
		return 1;
	}
	child_pid = fork();
	if (child_pid < 0) {
		printf("Bail out! fork: %s\n", strerror(errno));
		return 1;
	}
	if (child_pid == 0)
		child(fd);
	struct phase ph[3] = { { .name = "both asleep" }, { .name = "both awake" }, { .name = "mixed" } };
	uint64_t seq = 0;
	for (int mode = 0; mode < 3; mode++) {
		run_phase(pg, &seq, mode, &ph[mode]);
		ok(ph[mode].answered_wrong == 0, "%s: %d round trips, every answer its message's number plus one (%llu wrong)",
		   ph[mode].name, ROUNDS, (unsigned long long)ph[mode].answered_wrong);
		ok(ph[mode].late == 0, "%s: no wait outlasted its hand-over (a lost wake-up; %llu, %llu waits slept)",
		   ph[mode].name, (unsigned long long)ph[mode].late, (unsigned long long)ph[mode].slept);
	}
	/* An answer can come before the first look (more so on a loaded machine, where either side may
	 * be preempted between its hand-over and its wait): the futex path must still have run often. */
	ok(ph[0].slept >= ROUNDS / 10, "both asleep: the futex path ran (%llu of our %d waits slept)",
	   (unsigned long long)ph[0].slept, ROUNDS);

	/* Closing the page ends the child's wait; it leaves its own counts there. */
	channel_give(pg, CHANNEL_CLOSED, NULL);
	int status = 0;
	pid_t w = waitpid(child_pid, &status, 0);
	ok(w == child_pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child ends at the closed word (0x%x)",
	   status);
	struct report rep;
	memcpy(&rep, pg->data, sizeof rep);
	ok(rep.answered == 3ull * ROUNDS && rep.bad == 0, "the child answered %llu messages, %llu malformed",
	   (unsigned long long)rep.answered, (unsigned long long)rep.bad);
	ok(rep.late == 0 && rep.slept >= ROUNDS / 10, "the child: %llu waits slept, none outlasted its hand-over (%llu)",
	   (unsigned long long)rep.slept, (unsigned long long)rep.late);
	channel_unmap(pg);
	close(fd);
	return tap_done();
}
