/* SPDX-License-Identifier: MIT */
/* The ptrace runner of `ringfence bench --programs` (cmd/bench_sysemu.c) runs the bench programs
 * with the same exit status and output as a native run, serving every one of their syscalls.
 * usage: test_sysemu GETPPID DEVNULL COMPUTE (the built bench programs) */
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"
#include "tap.h"

extern char **environ;

static char *getppid_prog, *devnull_prog, *compute_prog;

/* What fd holds from its start, as a string (at most len - 1 bytes); then empties it. */
static void take(int fd, char *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0)
		buf[0] = 0;
}

static int run_native(char *const argv[], int out_fd)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
	int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_getppid(int out_fd, int err_fd)
{
	struct bench_sysemu_stats st;
	char *argv[] = { getppid_prog, "1000", NULL };
	int status = bench_sysemu_run(argv, out_fd, err_fd, &st);
	if (status == -EPERM)
		tap_skip_all("PTRACE_TRACEME refused (seccomp, Yama or a tracer already attached)");
	ok_eq(status, 0, "getppid 1000: exit status 0 (every answer the same)");
	ok_eq(st.syscalls, 1001, "getppid 1000: 1000 getppid and the exit_group served");
	ok_eq(st.unsupported, 0, "getppid 1000: nothing answered -ENOSYS");
}

static void test_devnull(int out_fd, int err_fd)
{
	struct bench_sysemu_stats st;
	char out[64];
	char *argv[] = { devnull_prog, "500", NULL };
	ok_eq(bench_sysemu_run(argv, out_fd, err_fd, &st), 0, "devnull 500: exit status 0 (open and full writes)");
	ok_eq(st.syscalls, 502, "devnull 500: openat, 500 writes and the exit_group served");
	take(out_fd, out, sizeof out);
	ok(out[0] == 0, "devnull 500: nothing reached stdout");
}

static void test_compute(int out_fd, int err_fd)
{
	struct bench_sysemu_stats st;
	char native[64], traced[64];
	char *argv[] = { compute_prog, "2", NULL };
	ok_eq(run_native(argv, out_fd), 0, "compute 2 natively: exit status 0");
	take(out_fd, native, sizeof native);
	ok_eq(bench_sysemu_run(argv, out_fd, err_fd, &st), 0, "compute 2 traced: exit status 0");
	take(out_fd, traced, sizeof traced);
	ok(native[0] == '0' && !strcmp(native, traced), "compute 2: the traced checksum is the native one (%.18s)",
	   native);
	ok_eq(st.syscalls, 2, "compute 2: one write and the exit_group served");
}

static void test_statuses(int out_fd, int err_fd)
{
	struct bench_sysemu_stats st;
	char *bad_count[] = { getppid_prog, "x", NULL };
	ok_eq(bench_sysemu_run(bad_count, out_fd, err_fd, &st), 2, "getppid x: the program's own exit status 2");
	char *missing[] = { "/nonexistent/bench-program", NULL };
	ok_eq(bench_sysemu_run(missing, out_fd, err_fd, &st), 127, "a program that cannot be executed: 127");
	long hwm;
	char *argv[] = { devnull_prog, "10", NULL };
	ok_eq(bench_traced_hwm(argv, out_fd, err_fd, &hwm), 0, "traced to its exit: exit status 0");
	ok(hwm > 0 && hwm < 65536, "VmHWM at the exit stop is read and small (%ld KiB)", hwm);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		printf("Bail out! usage: test_sysemu GETPPID DEVNULL COMPUTE\n");
		return 1;
	}
	getppid_prog = argv[1];
	devnull_prog = argv[2];
	compute_prog = argv[3];
	int out_fd = memfd_create("sysemu-stdout", MFD_CLOEXEC), err_fd = memfd_create("sysemu-stderr", MFD_CLOEXEC);
	if (out_fd < 0 || err_fd < 0) {
		printf("Bail out! memfd_create: %s\n", strerror(errno));
		return 1;
	}
	test_getppid(out_fd, err_fd);
	test_devnull(out_fd, err_fd);
	test_compute(out_fd, err_fd);
	test_statuses(out_fd, err_fd);
	return tap_done();
}
