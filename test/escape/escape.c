/* SPDX-License-Identifier: MIT */
/* The escape guest program: `escape root TMP PID`, `escape host TMP PID SELF` (see escape.h), and
 * `escape mark PATH`, which only tries to create PATH (an execve that reached the host would), and
 * `escape toppage`, which runs a syscall at the very end of the user half. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "escape.h"

long escape_slurp(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	long len = read(fd, buf, n - 1);
	int e = errno;
	close(fd);
	if (len < 0)
		return -e;
	buf[len] = 0;
	return len;
}

void escape_reads(const char *path, const char *want, const char *what)
{
	char buf[256];
	long n = escape_slurp(path, buf, sizeof buf);
	if (!guest_ok(n >= 0 && !strcmp(buf, want), "%s: %s reads the fixture's file", what, path))
		printf("#   got %s\n", n < 0 ? guest_errname((int)-n) : buf);
}

void escape_unreadable(const char *path, int want, const char *forbidden, const char *what)
{
	char buf[256];
	long n = escape_slurp(path, buf, sizeof buf);
	if (n >= 0) {
		bool leaked = forbidden && strstr(buf, forbidden);
		guest_ok(false, "%s: open(%s) fails (it opened%s)", what, path,
		         leaked ? " and HOLDS THE HOST'S BYTES" : "");
		return;
	}
	if (want && -n != want)
		guest_ok(false, "%s: open(%s) fails with %s (got %s)", what, path, guest_errname(want),
		         guest_errname((int)-n));
	else
		guest_ok(true, "%s: open(%s) fails with %s", what, path, guest_errname((int)-n));
}

void escape_no_leaked_fds(void)
{
	int open_fds = 0, first = -1;
	for (int fd = 3; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) {
			open_fds++;
			if (first < 0)
				first = fd;
		}
	if (!guest_ok(open_fds == 0, "no descriptor above 2 is open at start"))
		printf("#   %d open, the first is %d\n", open_fds, first);
	FAILS(EBADF, "write to the driver's leaked host fd", write(LEAKED_FD, "GUEST\n", 6));
	FAILS(EBADF, "fstat of the driver's leaked host fd", fcntl(LEAKED_FD, F_GETFL));
	for (int fd = 0; fd < 3; fd++) {
		char what[64];
		snprintf(what, sizeof what, "KVM_GET_API_VERSION on fd %d", fd);
		FAILS(0, what, ioctl(fd, KVM_GET_API_VERSION, 0));
	}
	FAILS(0, "TIOCSTI on fd 0 (typing into the host's terminal)", ioctl(0, TIOCSTI, "x"));
}

void escape_processes(pid_t pid, const char *sock)
{
	char what[128];
	snprintf(what, sizeof what, "kill(%d, 0) does not reach the driver (a host process)", (int)pid);
	FAILS(0, what, kill(pid, 0));
	FAILS(0, "tgkill on the driver", syscall(SYS_tgkill, pid, pid, 0));
	FAILS(0, "pidfd_open on the driver", syscall(SYS_pidfd_open, pid, 0));
	struct { unsigned long cur, max; } lim;
	FAILS(0, "prlimit64 reads the driver's limits", syscall(SYS_prlimit64, pid, RLIMIT_NOFILE, NULL, &lim));
	char buf[16];
	struct iovec local = { buf, sizeof buf }, remote = { (void *)0x400000, sizeof buf };
	FAILS(0, "process_vm_readv from the driver", syscall(SYS_process_vm_readv, pid, &local, 1, &remote, 1, 0));
	FAILS(0, "ptrace(PTRACE_ATTACH) to the driver", ptrace(PTRACE_ATTACH, pid, NULL, NULL));
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s < 0) {
		guest_fails(s, errno, 0, "socket(AF_UNIX) (no sockets at all)");
	} else if (sock) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
		FAILS(0, "connect to the driver's unix socket", connect(s, (struct sockaddr *)&a, sizeof a));
		close(s);
	} else {
		close(s);
	}
	FAILS(0, "socket(AF_INET)", socket(AF_INET, SOCK_STREAM, 0));
	FAILS(0, "socket(AF_NETLINK)", socket(AF_NETLINK, SOCK_RAW, 0));
	FAILS(0, "io_uring_setup (would bypass the syscall path)", syscall(SYS_io_uring_setup, 1, buf));
	FAILS(0, "bpf", syscall(SYS_bpf, 0, NULL, 0));
	FAILS(0, "perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
	FAILS(0, "unshare(CLONE_NEWUSER)", syscall(SYS_unshare, 0x10000000));
	FAILS(0, "init_module", syscall(SYS_init_module, NULL, 0, ""));
}

/* Linux never maps the last user page: a syscall in its last two bytes would return to the
 * non-canonical 0x800000000000, the SYSRET/IRET trap that has broken kernels (CVE-2012-0217). Here
 * the mapping must be refused or, if made, the program must die of an ordinary SIGSEGV. */
static int top_page(void)
{
	unsigned char *top = (unsigned char *)0x7ffffffff000ul;
	void *m = mmap(top, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (m != top) {
		printf("# top page: mmap refused: %s\n", m == MAP_FAILED ? guest_errname(errno) : "placed elsewhere");
		return 0;
	}
	printf("# top page: mapped; running a syscall in its last two bytes\n");
	fflush(stdout);
	top[4094] = 0x0f;    /* syscall */
	top[4095] = 0x05;
	__asm__ volatile("jmp *%1" : : "a"((long)SYS_getpid), "r"(top + 4094) : "memory");
	return 3;
}

static int mark(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	printf("# mark: creating %s: %s\n", path, fd < 0 ? guest_errname(errno) : "created");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "mark"))
		return mark(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "toppage"))
		return top_page();
	if (argc == 4 && !strcmp(argv[1], "root")) {
		escape_no_leaked_fds();
		escape_root(argv[2]);
		escape_processes((pid_t)atoi(argv[3]), NULL);
	} else if (argc == 5 && !strcmp(argv[1], "host")) {
		escape_no_leaked_fds();
		char sock[4096];
		snprintf(sock, sizeof sock, "%s/sock", argv[2]);
		escape_processes((pid_t)atoi(argv[3]), sock);
		escape_host(argv[2], (pid_t)atoi(argv[3]), argv[4]);   /* ends with the execve attempt */
	} else {
		printf("Bail out! usage: escape root TMP PID | host TMP PID SELF | mark PATH\n");
		return 2;
	}
	printf("# escape: %d checks, %d failed\n", guest_count, guest_failed);
	return guest_failed ? 1 : 0;
}
