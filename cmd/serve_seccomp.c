/* SPDX-License-Identifier: MIT */
/* serve's syscall filter: after start-up (platform created, socket bound) the server may make only
 * the calls below, which serving connections needs, plus the platform's own (rf_seccomp_allow);
 * anything else kills the whole process (every thread: TSYNC) with SIGSYS. */
#define _GNU_SOURCE
#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "proto.h"

static const int allowed[] = {
	/* ---- connections (server.c, frame.c) ---- */
	SCMP_SYS(accept4),          /* a new client on the listening socket */
	SCMP_SYS(read),             /* frames from a client; draining the watcher's eventfd */
	SCMP_SYS(recvmsg),          /* (the client side's frame reader; kept for symmetry) */
	SCMP_SYS(sendmsg),          /* every reply, with a memfd attached to memory_create's */
	SCMP_SYS(sendto),           /* send(): the rest of a partly written reply */
	SCMP_SYS(write),            /* replies on a pipe pair; waking the watcher; stderr lines */
	SCMP_SYS(writev),           /* a reply on a pipe pair, prefix and body at once */
	SCMP_SYS(getsockopt),       /* is a new connection a socket (descriptors can be passed) */
	SCMP_SYS(getsockname),      /* ... and a Unix one */
	SCMP_SYS(poll),             /* the watcher (the listening socket, hang-ups); waiting awake for a request */
	SCMP_SYS(close),            /* a connection's end */
	SCMP_SYS(unlink),           /* removing the socket file at shutdown */
	/* ---- threads: one per connection (server.c) ---- */
	SCMP_SYS(clone),            /* pthread_create (glibc 2.36 uses clone3 first, then clone) */
	SCMP_SYS(clone3),
	SCMP_SYS(set_robust_list),  /* a new thread's start */
	SCMP_SYS(rseq),             /* a new thread's start (glibc registers rseq) */
	SCMP_SYS(madvise),          /* glibc frees an exited thread's stack */
	SCMP_SYS(futex),            /* locks, and joining */
	SCMP_SYS(exit),             /* a connection thread ends */
	SCMP_SYS(getpid),           /* raise() */
	SCMP_SYS(rt_sigaction),     /* glibc's first pthread_create installs its cancellation handler */
	SCMP_SYS(rt_sigprocmask),   /* pthread_create blocks signals around clone */
	/* ---- memory: malloc for frames and replies (mmap and mprotect come from rf_seccomp_allow,
	 * which allows them only without PROT_EXEC) ---- */
	SCMP_SYS(brk),
	SCMP_SYS(munmap),
	SCMP_SYS(mremap),
	/* ---- the end ---- */
	SCMP_SYS(exit_group),
};

int serve_seccomp(struct server *s)
{
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!f)
		return -ENOMEM;
	int e = seccomp_attr_set(f, SCMP_FLTATR_CTL_TSYNC, 1);
	for (size_t i = 0; e == 0 && i < sizeof allowed / sizeof allowed[0]; i++)
		e = seccomp_rule_add(f, SCMP_ACT_ALLOW, allowed[i], 0);
	if (e == 0)
		e = rf_seccomp_allow(f);
	if (e == 0)
		e = seccomp_load(f);
	seccomp_release(f);
	if (e < 0)
		return e;
	if (s->test_hook)
		s->test_hook();
	return 0;
}
