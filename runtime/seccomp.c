/* SPDX-License-Identifier: MIT */
/* The runtime's syscall filter: once the program is loaded and the waker runs, ringfence may make
 * only the host calls below (what serving a program's syscalls and tearing down needs) plus the
 * platform's own (rf_seccomp_allow); anything else kills the whole process with SIGSYS. Each entry
 * says which part of the runtime needs it. Whatever happens before (parsing options, opening the
 * root and the program, reading mountinfo, creating the platform, starting the waker) is not here. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime.h"

static const int plain[] = {
	/* ---- files (files.c, sys_fd.c, sys_path.c, path.c) ---- */
	SCMP_SYS(openat2),          /* every lookup below the root: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS */
	SCMP_SYS(openat),           /* creating a file in a checked directory (O_NOFOLLOW); reopening a
	                             * checked descriptor through /proc/self/fd for writing */
	SCMP_SYS(read),             /* the waker's timerfd, signalfd and eventfds */
	SCMP_SYS(write),            /* write; stderr lines (rt_fail, --trace, --stats); waking the waker */
	SCMP_SYS(readv),            /* read and readv go straight into guest pages as an iovec */
	SCMP_SYS(writev),           /* write and writev likewise */
	SCMP_SYS(preadv),           /* pread64 and preadv; file contents copied into a private mapping */
	SCMP_SYS(pwritev),          /* pwrite64 and pwritev */
	SCMP_SYS(lseek),            /* lseek */
	SCMP_SYS(close),            /* close, close_range, dup2 over an open descriptor, teardown */
	SCMP_SYS(fcntl),            /* F_GETFL/F_SETFL for fcntl, F_DUPFD_CLOEXEC for dup and reopening */
	SCMP_SYS(newfstatat),       /* the stat family, and the checks of an opened object's type and
	                             * device: glibc's fstat is fstatat(fd, "", AT_EMPTY_PATH) */
	SCMP_SYS(fstat),            /* ... which a C library before glibc 2.33 makes as fstat */
	SCMP_SYS(statx),            /* statx on a checked descriptor */
	SCMP_SYS(fstatfs),          /* statfs/fstatfs; refusing the host's /proc, /sys and /dev by type */
	SCMP_SYS(readlink),         /* path_of_fd: /proc/self/fd/N, where a checked descriptor really is */
	SCMP_SYS(readlinkat),       /* readlink(at) of a symlink below the root */
	SCMP_SYS(getdents64),       /* getdents64 */
	SCMP_SYS(faccessat2),       /* access and faccessat(2) on a checked descriptor */
	SCMP_SYS(pipe2),            /* pipe and pipe2 */
	SCMP_SYS(ftruncate),        /* ftruncate and truncate */
	SCMP_SYS(fsync),            /* fsync and fdatasync */
	SCMP_SYS(fallocate),        /* mem.c: punching freed guest pages out of the memory's memfd */
	/* ---- writes below --rw directories (sys_path.c) ---- */
	SCMP_SYS(mkdirat),          /* mkdir(at) */
	SCMP_SYS(unlinkat),         /* unlink(at), rmdir */
	SCMP_SYS(renameat2),        /* rename(at)(2) */
	SCMP_SYS(symlinkat),        /* symlink(at) */
	SCMP_SYS(fchmod),           /* fchmod */
	SCMP_SYS(chmod),            /* chmod(at) through /proc/self/fd of the checked object */
	SCMP_SYS(utimensat),        /* utimensat and futimens on a checked descriptor */
	/* ---- waiting: sleeps, poll, blocking reads (waker.c, sys_time.c) ---- */
	SCMP_SYS(ppoll),            /* waker_wait: every wait the program makes, with the waker's eventfd */
	SCMP_SYS(poll),             /* the waker thread's loop */
	SCMP_SYS(timerfd_settime),  /* alarm and setitimer(ITIMER_REAL) */
	SCMP_SYS(timerfd_gettime),  /* getitimer, and the old value of setitimer */
	/* ---- time, identity, limits (sys_time.c, sys_proc.c) ---- */
	SCMP_SYS(clock_gettime),    /* rt_now_ns, clock_gettime, time, gettimeofday (when not in the vDSO) */
	SCMP_SYS(clock_getres),     /* clock_getres */
	SCMP_SYS(gettimeofday),     /* gettimeofday (when not in the vDSO) */
	SCMP_SYS(getrandom),        /* getrandom, /dev/urandom and /dev/random */
	SCMP_SYS(uname),            /* uname: the host kernel's release */
	SCMP_SYS(sysinfo),          /* sysinfo: uptime and load */
	SCMP_SYS(getrusage),        /* getrusage */
	SCMP_SYS(times),            /* times */
	SCMP_SYS(getuid),           /* the ids a program sees are the runner's */
	SCMP_SYS(geteuid),
	SCMP_SYS(getgid),
	SCMP_SYS(getegid),
	SCMP_SYS(getpgrp),          /* getpgrp */
	SCMP_SYS(getsid),           /* getsid */
	/* ---- the waker thread and its end (waker.c) ---- */
	SCMP_SYS(set_robust_list),  /* the waker's start in the C library, which may run after the load */
	SCMP_SYS(rseq),             /* ... likewise (restartable sequences registration) */
	SCMP_SYS(rt_sigprocmask),   /* waker_stop: the forwarded signals unblocked again */
	SCMP_SYS(futex),            /* pthread_join, and the C library's locks (stdio, malloc) */
	SCMP_SYS(exit),             /* the waker thread returns */
	SCMP_SYS(madvise),          /* ... and the C library frees its stack */
	/* ---- memory of the runtime itself (malloc) ---- */
	SCMP_SYS(brk),
	SCMP_SYS(munmap),
	SCMP_SYS(mremap),
	/* ---- the end ---- */
	SCMP_SYS(exit_group),       /* ringfence exits with the program's status */
};

/* The only ioctls the runtime makes: the read-only terminal questions sys_ioctl passes on. */
static const unsigned long ioctls[] = { TCGETS, TIOCGWINSZ, TIOCGPGRP, FIONREAD };

static int add(scmp_filter_ctx f, int nr, unsigned n, const struct scmp_arg_cmp *cmp)
{
	int r = seccomp_rule_add_array(f, SCMP_ACT_ALLOW, nr, n, cmp);
	if (r < 0) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
		rt_fail(0, "seccomp: cannot allow %s: %s", name ? name : "a syscall", strerror(-r));
		free(name);
	}
	return r;
}

static int build(scmp_filter_ctx f)
{
	int r;
	for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
		if ((r = add(f, plain[i], 0, NULL)) < 0)
			return r;
	for (size_t i = 0; i < sizeof ioctls / sizeof ioctls[0]; i++) {
		struct scmp_arg_cmp req = SCMP_A1_64(SCMP_CMP_MASKED_EQ, 0xffffffffu, (uint32_t)ioctls[i]);
		if ((r = add(f, SCMP_SYS(ioctl), 1, &req)) < 0)
			return r;
	}
	/* malloc's own mappings, and nothing executable (the platform's rules allow the same). */
	struct scmp_arg_cmp noexec = SCMP_A2_64(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	if ((r = add(f, SCMP_SYS(mmap), 1, &noexec)) < 0 || (r = add(f, SCMP_SYS(mprotect), 1, &noexec)) < 0)
		return r;
	if ((r = rf_seccomp_allow(f)) < 0)
		rt_fail(0, "%s", rf_last_error());
	return r;
}

int rt_seccomp_install(void)
{
	/* Every thread (the waker too) is covered: SCMP_ACT_KILL would end only the calling thread. */
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!f)
		return rt_fail(RT_EXIT_PLATFORM, "seccomp: cannot make a filter");
	int r = seccomp_attr_set(f, SCMP_FLTATR_CTL_TSYNC, 1);
	if (r == 0)
		r = build(f);
	if (r == 0 && (r = seccomp_load(f)) < 0)
		rt_fail(0, "seccomp: cannot load the filter: %s", strerror(-r));
	seccomp_release(f);
	if (r < 0)
		return rt_fail(RT_EXIT_PLATFORM, "seccomp: no syscall filter (--no-seccomp runs without one)");
	/* Test-only: a syscall the filter forbids, so a test sees the whole process end with SIGSYS. */
	const char *forbidden = getenv("RINGFENCE_TEST_FORBIDDEN_SYSCALL");
	if (forbidden && !strcmp(forbidden, "1"))
		(void)!syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
	return 0;
}
