/* SPDX-License-Identifier: MIT */
/* How ringfence bench runs a whole program as a child: a ptrace sandbox in miniature (every syscall
 * stopped by PTRACE_SYSEMU and served by the tracer), a traced run that reads the peak RSS at exit,
 * and a plain spawn for the native and `ringfence run` figures. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <spawn.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"

#define WRITE_CHUNK 65536   /* per emulated write to stdout/stderr: short writes are legal */
#define FAKE_FD_BASE 3      /* openat("/dev/null") answers FAKE_FD_BASE, FAKE_FD_BASE + 1, ... */
#define FAKE_FD_MAX 1024

extern char **environ;

struct tracee {
	pid_t pid;
	int out_fd, err_fd;              /* where the program's writes to 1 and 2 go, in this process */
	int next_fd;                     /* fake fds below this one are /dev/null */
	struct bench_sysemu_stats *stats;
};

static int wait_pid(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/* The shell's view of a finished process: its exit code, or 128 + the signal that killed it. */
static int shell_status(int status)
{
	return WIFSIGNALED(status) ? RUN_EXIT_SIGNAL + WTERMSIG(status) : WEXITSTATUS(status);
}

static void kill_reap(pid_t pid)
{
	int status;
	kill(pid, SIGKILL);
	wait_pid(pid, &status);
}

/* Forks a child that asks to be traced and executes argv[0] with stdout and stderr on out_fd and
 * err_fd (-1: this process's own). Returns once the child is stopped after its execve, with
 * `options` set, or a shell status (exec failed: 127) as a positive number, or -errno. */
static int spawn_traced(char *const argv[], int out_fd, int err_fd, long options, pid_t *pid)
{
	*pid = fork();
	if (*pid < 0)
		return -errno;
	if (*pid == 0) {
		/* Only async-signal-safe calls after fork. */
		if ((out_fd >= 0 && dup2(out_fd, STDOUT_FILENO) < 0) || (err_fd >= 0 && dup2(err_fd, STDERR_FILENO) < 0) ||
		    ptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
			_exit(RUN_EXIT_UNSUPPORTED);
		execv(argv[0], argv);
		_exit(RUN_EXIT_NOLOAD);
	}
	int status, r = wait_pid(*pid, &status);
	if (r < 0) {
		kill_reap(*pid);
		return r;
	}
	if (!WIFSTOPPED(status))
		return shell_status(status) == RUN_EXIT_UNSUPPORTED ? -EPERM : shell_status(status);
	/* The stop that follows a traced execve. EXITKILL: if the bench dies, the program must not
	 * outlive it. */
	if (WSTOPSIG(status) != SIGTRAP) {
		kill_reap(*pid);
		return -EPROTO;
	}
	if (ptrace(PTRACE_SETOPTIONS, *pid, 0, PTRACE_O_EXITKILL | options) < 0) {
		r = -errno;
		kill_reap(*pid);
		return r;
	}
	return 0;
}

/* Copies len bytes at the tracee's address va into buf; -EFAULT unless all of them could be read. */
static int peek(pid_t pid, void *buf, size_t len, unsigned long long va)
{
	struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)va, len };
	ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	return got == (ssize_t)len ? 0 : -EFAULT;
}

static long serve_write(struct tracee *t, int fd, unsigned long long va, unsigned long long len)
{
	if (fd >= FAKE_FD_BASE && fd < t->next_fd)
		return (long)len;
	if (fd != STDOUT_FILENO && fd != STDERR_FILENO)
		return -EBADF;
	static char buf[WRITE_CHUNK];
	size_t n = len < sizeof buf ? len : sizeof buf;
	if (n && peek(t->pid, buf, n, va) < 0)
		return -EFAULT;
	int host_fd = fd == STDOUT_FILENO ? t->out_fd : t->err_fd;
	ssize_t w = write(host_fd >= 0 ? host_fd : fd, buf, n);
	return w < 0 ? -errno : w;
}

static long serve_openat(struct tracee *t, unsigned long long path_va)
{
	static const char devnull[] = "/dev/null";
	char path[sizeof devnull];
	if (peek(t->pid, path, sizeof path, path_va) < 0)
		return -EFAULT;
	if (memcmp(path, devnull, sizeof devnull))
		return -EACCES;
	return t->next_fd < FAKE_FD_MAX ? t->next_fd++ : -EMFILE;
}

/* One syscall stop: the answer goes to rax; *exited gets the status of exit or exit_group. */
static long serve(struct tracee *t, const struct user_regs_struct *regs, int *exited)
{
	switch (regs->orig_rax) {
	case SYS_getppid:
		return getpid();   /* the tracer is the program's parent */
	case SYS_write:
		return serve_write(t, (int)regs->rdi, regs->rsi, regs->rdx);
	case SYS_openat:
		return serve_openat(t, regs->rsi);
	case SYS_exit:
	case SYS_exit_group:
		*exited = (int)(regs->rdi & 0xff);
		return 0;
	default:
		t->stats->unsupported++;
		return -ENOSYS;
	}
}

/* Resumes the tracee to its next syscall entry (delivering sig) and serves that syscall. 1: keep
 * going, 0: the program has finished with *status (shell style), <0: -errno. */
static int step(struct tracee *t, int *sig, int *status)
{
	struct user_regs_struct regs;
	int ws, r;
	if (ptrace(PTRACE_SYSEMU, t->pid, 0, *sig) < 0)
		return -errno;
	*sig = 0;
	if ((r = wait_pid(t->pid, &ws)) < 0)
		return r;
	if (!WIFSTOPPED(ws)) {
		*status = shell_status(ws);
		return 0;
	}
	if (WSTOPSIG(ws) != (SIGTRAP | 0x80)) {
		*sig = WSTOPSIG(ws);   /* a signal of its own (a fault, say): delivered at the resume */
		return 1;
	}
	if (ptrace(PTRACE_GETREGS, t->pid, 0, &regs) < 0)
		return -errno;
	t->stats->syscalls++;
	int exited = -1;
	regs.rax = (unsigned long long)serve(t, &regs, &exited);
	if (exited >= 0) {
		kill_reap(t->pid);
		*status = exited;
		return 0;
	}
	return ptrace(PTRACE_SETREGS, t->pid, 0, &regs) < 0 ? -errno : 1;
}

/* Tracer and tracee on this CPU, as bench_floor_ptrace() measures the floor: a stop is then a
 * direct switch rather than a cross-CPU wake-up. Unpinned if the affinity cannot be set. */
static bool pin_here(cpu_set_t *saved)
{
	cpu_set_t one;
	int cpu = sched_getcpu();
	if (cpu < 0 || sched_getaffinity(0, sizeof *saved, saved) < 0)
		return false;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	return sched_setaffinity(0, sizeof one, &one) == 0;
}

int bench_sysemu_run(char *const argv[], int out_fd, int err_fd, struct bench_sysemu_stats *stats)
{
	cpu_set_t saved;
	bool pinned = pin_here(&saved);
	struct tracee t = { .out_fd = out_fd, .err_fd = err_fd, .next_fd = FAKE_FD_BASE, .stats = stats };
	*stats = (struct bench_sysemu_stats){ 0 };
	int r = spawn_traced(argv, out_fd, err_fd, PTRACE_O_TRACESYSGOOD, &t.pid);
	if (r == 0) {
		int sig = 0, status = 0;
		while ((r = step(&t, &sig, &status)) > 0)
			;
		if (r == 0)
			r = status;
		else
			kill_reap(t.pid);
	}
	if (pinned)
		sched_setaffinity(0, sizeof saved, &saved);
	return r;
}

/* VmHWM of a live process in KiB, or -errno. */
static long read_hwm(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	long kib = -ENODATA;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Why not wait4's ru_maxrss: a child's maxrss also counts the memory its parent had at the fork
 * (the copied mm's high-water mark survives the execve), so it would measure the bench. VmHWM read
 * at the exit stop is the mm the program's execve created, and only that. */
int bench_traced_hwm(char *const argv[], int out_fd, int err_fd, long *hwm_kib)
{
	pid_t pid;
	*hwm_kib = -ENODATA;
	int r = spawn_traced(argv, out_fd, err_fd, PTRACE_O_TRACEEXIT, &pid);
	if (r != 0)
		return r;
	int sig = 0, ws;
	for (;;) {
		if (ptrace(PTRACE_CONT, pid, 0, sig) < 0) {
			r = -errno;
			break;
		}
		sig = 0;
		if ((r = wait_pid(pid, &ws)) < 0)
			break;
		if (!WIFSTOPPED(ws))
			return shell_status(ws);
		if (ws >> 16 == PTRACE_EVENT_EXIT)
			*hwm_kib = read_hwm(pid);
		else if (ws >> 16 == 0)
			sig = WSTOPSIG(ws);   /* the program's own signal, delivered at the resume */
	}
	kill_reap(pid);
	return r;
}

int bench_spawn_run(char *const argv[], int out_fd, int err_fd, long *maxrss)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int r = posix_spawn_file_actions_init(&fa);
	if (r)
		return -r;
	if ((out_fd < 0 || !(r = posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO))) &&
	    (err_fd < 0 || !(r = posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO))))
		r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r)
		return -r;
	int status;
	struct rusage ru;
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR)
			return -errno;
	*maxrss = ru.ru_maxrss;
	return shell_status(status);
}
