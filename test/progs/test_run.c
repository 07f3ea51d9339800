/* SPDX-License-Identifier: MIT */
/* `ringfence run` end to end: runs the ringfence binary on each guest program and checks its exact
 * stdout, stderr and exit status.
 *
 *   test_run kvm  RINGFENCE PROGRAM...     the programs on KVM (skips without /dev/kvm)
 *   test_run load RINGFENCE TEXTFILE DYNEXE load failures, which need no KVM */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "runtime.h"
#include "tap.h"

#define OUT_MAX  65536
#define DEADLINE 300   /* seconds per run: a nested VM under TCG is slow, a hang is not */

struct result {
	int status;            /* exit status; 1000 + signal if ringfence itself was killed */
	char out[OUT_MAX], err[OUT_MAX];
	size_t outlen, errlen;
};

static const char *ringfence;
static bool empty_env;   /* run ringfence (and so the program) with no environment at all */
extern char **environ;
static char *const *programs;
static int nprograms;

static const char *prog(const char *name)
{
	for (int i = 0; i < nprograms; i++) {
		const char *slash = strrchr(programs[i], '/');
		if (!strcmp(slash ? slash + 1 : programs[i], name))
			return programs[i];
	}
	printf("Bail out! program %s not among the arguments\n", name);
	exit(1);
}

static void drain(int *fd, char *buf, size_t *len)
{
	char scratch[4096];
	size_t room = OUT_MAX - 1 - *len;
	ssize_t n = read(*fd, room ? buf + *len : scratch, room ? room : sizeof scratch);
	if (n > 0 && room) {
		*len += (size_t)n;
		buf[*len] = 0;
	} else if (n == 0 || (n < 0 && errno != EINTR)) {
		close(*fd);
		*fd = -1;
	}
}

/* Runs `ringfence run args...`; with broken_stdout the program's stdout is a pipe nobody reads. */
static void run_opts(struct result *res, bool broken_stdout, const char *const args[])
{
	memset(res, 0, sizeof *res);
	const char *argv[32] = { ringfence, "run" };
	int n = 2;
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		printf("Bail out! pipe: %s\n", strerror(errno));
		exit(1);
	}
	if (broken_stdout)
		close(po[0]);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		signal(SIGPIPE, SIG_DFL);
		char *none[] = { NULL };
		execve(ringfence, (char *const *)argv, empty_env ? none : environ);
		_exit(99);
	}
	close(po[1]);
	close(pe[1]);
	int fds[2] = { broken_stdout ? -1 : po[0], pe[0] };
	time_t end = time(NULL) + DEADLINE;
	while ((fds[0] >= 0 || fds[1] >= 0) && time(NULL) < end) {
		struct pollfd p[2] = { { fds[0], POLLIN, 0 }, { fds[1], POLLIN, 0 } };
		if (poll(p, 2, 1000) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			drain(&fds[0], res->out, &res->outlen);
		if (p[1].revents)
			drain(&fds[1], res->err, &res->errlen);
	}
	if (fds[0] >= 0 || fds[1] >= 0) {
		printf("# %s %s did not finish in %d s: killed\n", argv[2], args[0] ? args[0] : "", DEADLINE);
		kill(pid, SIGKILL);
		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0)
				close(fds[i]);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	res->status = WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
}

#define RUN(res, ...) run_opts((res), false, (const char *const[]){ __VA_ARGS__, NULL })

static void show(const char *what, const char *s)
{
	printf("#   %s: \"", what);
	for (; *s; s++)
		if (*s == '\n')
			printf("\\n");
		else
			putchar(*s);
	printf("\"\n");
}

/* Exact stdout, stderr matching a pattern (fnmatch: `*` for what the test cannot know), status. */
static void expect(const struct result *res, const char *name, int status, const char *out, const char *err_pattern)
{
	bool good_out = strlen(res->out) == res->outlen && !strcmp(res->out, out);
	bool good_err = strlen(res->err) == res->errlen && fnmatch(err_pattern, res->err, 0) == 0;
	if (!ok(res->status == status && good_out && good_err, "%s: exit %d", name, status)) {
		printf("#   status %d, want %d\n", res->status, status);
		show("stdout", res->out);
		show("want  ", out);
		show("stderr", res->err);
		show("want  ", err_pattern);
	}
}

static const char *strsignal_abbrev(int sig)
{
	static char buf[16];
	snprintf(buf, sizeof buf, "SIG%s", sigabbrev_np(sig));
	return buf;
}

static uint64_t entry_of(const char *path)
{
	FILE *f = fopen(path, "rb");
	static unsigned char buf[1 << 20];
	size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
	if (f)
		fclose(f);
	struct elf_info e;
	char why[256];
	if (elf_parse(buf, n, &e, why, sizeof why) < 0) {
		printf("Bail out! %s: %s\n", path, why);
		exit(1);
	}
	return e.entry;
}

/* hello with its last segment (the read-only data) moved or grown: what the parser accepts but the
 * loader must still refuse, or place. Written to a temporary file, which is returned. */
static const char *crafted(const char *hello, uint64_t vaddr, uint64_t memsz)
{
	static char path[256];
	static unsigned char buf[1 << 16];
	FILE *f = fopen(hello, "rb");
	size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
	if (f)
		fclose(f);
	Elf64_Ehdr eh;
	memcpy(&eh, buf, sizeof eh);
	Elf64_Phdr ph;
	int last = -1;
	for (int i = 0; i < eh.e_phnum; i++) {
		memcpy(&ph, buf + eh.e_phoff + (size_t)i * sizeof ph, sizeof ph);
		if (ph.p_type == PT_LOAD)
			last = i;
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(path, sizeof path, "%s/ringfence-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	int fd = mkstemp(path);
	if (n == 0 || last < 0 || fd < 0) {
		printf("Bail out! cannot craft from %s into %s\n", hello, path);
		exit(1);
	}
	unsigned char *at = buf + eh.e_phoff + (size_t)last * sizeof ph;
	memcpy(&ph, at, sizeof ph);
	if (vaddr)
		ph.p_vaddr = vaddr;
	if (memsz)
		ph.p_memsz = memsz;
	memcpy(at, &ph, sizeof ph);
	if (write(fd, buf, n) != (ssize_t)n) {
		printf("Bail out! writing %s: %s\n", path, strerror(errno));
		exit(1);
	}
	close(fd);
	return path;
}

static void test_crafted(void)
{
	struct result *r = malloc(sizeof *r);
	char want[1024];
	const char *p = crafted(prog("hello"), 0x7ffffffff000, 0);
	RUN(r, p);
	snprintf(want, sizeof want, "ringfence: %s: segment at 0x7ffffffff000..0x7ffffffff00d reaches the "
	         "stack area (0x%llx and up)\n", p, RT_MMAP_TOP);
	expect(r, "a segment where the stack goes", RUN_EXIT_NOLOAD, "", want);
	unlink(p);

	p = crafted(prog("hello"), 0, 5ull << 30);
	RUN(r, p);
	snprintf(want, sizeof want, "ringfence: %s: segment at 0x* needs 5120 MiB, more than the guest memory "
	         "has left (--memory)\n", p);
	expect(r, "5 GiB of zero-fill: more than the default guest memory", RUN_EXIT_NOLOAD, "", want);
	unlink(p);

	p = crafted(prog("hello"), 0, 1ull << 30);
	RUN(r, "--memory", "2G", p);
	expect(r, "1 GiB of zero-fill is placed and mapped", 0, "hello, world\n", "");
	unlink(p);
	free(r);
}

static void test_programs(void)
{
	struct result *r = malloc(sizeof *r);
	char want[1024];
	const char *p;

	p = prog("hello");
	RUN(r, p);
	expect(r, "hello", 0, "hello, world\n", "");
	RUN(r, p, "with", "arguments");
	expect(r, "hello with arguments", 0, "hello, world\n", "");
	run_opts(r, true, (const char *const[]){ p, NULL });
	expect(r, "hello into a closed pipe dies of SIGPIPE, quietly", 128 + SIGPIPE, "", "");

	p = prog("exitcode");
	RUN(r, p);
	expect(r, "exit_group(0x12a) is status 42", 42, "", "");

	p = prog("fault");
	RUN(r, p);
	snprintf(want, sizeof want, "ringfence: %s: killed by SIGSEGV: #PF at 0x%llx (write to 0x0, not mapped)\n", p,
	         (unsigned long long)entry_of(p));
	expect(r, "write to 0 is a page fault: SIGSEGV", 128 + SIGSEGV, "", want);

	p = prog("ud");
	RUN(r, p);
	snprintf(want, sizeof want, "ringfence: %s: killed by SIGILL: #UD at 0x%llx\n", p, (unsigned long long)entry_of(p));
	expect(r, "ud2 is an invalid opcode: SIGILL", 128 + SIGILL, "", want);

	p = prog("badsys");
	RUN(r, p);
	expect(r, "an unknown syscall gets ENOSYS", ENOSYS, "", "");

	/* The program gets ringfence's environment: here none, which stack checks. */
	empty_env = true;
	p = prog("stack");
	RUN(r, p);
	snprintf(want, sizeof want, "%s\n", p);
	expect(r, "initial stack without arguments", 0, want, "");
	RUN(r, p, "one", "two words", "", "--three");
	snprintf(want, sizeof want, "%s\none\ntwo words\n\n--three\n", p);
	expect(r, "initial stack with four arguments", 0, want, "");
	empty_env = false;

	p = prog("efault");
	RUN(r, p);
	expect(r, "write: EFAULT and EBADF for bad buffers, up to a hole, spans two segments and the stack", 0,
	       "ABCD\nok\n", "123\nerr\n");

	p = prog("trap");
	unsigned long long entry = entry_of(p);
	static const struct { const char *mode, *what; int status; const char *err; } traps[] = {
		{ "b", "bss is zero and writable", 0, "" },
		{ "w", "write own code", 128 + SIGSEGV, "#PF at 0x* (write to 0x%llx, not permitted)\n" },
		{ "r", "write read-only data", 128 + SIGSEGV, "#PF at 0x* (write to 0x*, not permitted)\n" },
		{ "x", "run data", 128 + SIGSEGV, "#PF at 0x* (exec at 0x*, not permitted)\n" },
		{ "s", "run the stack", 128 + SIGSEGV, "#PF at 0x7ffff* (exec at 0x7ffff*, not permitted)\n" },
		{ "u", "read above the stack", 128 + SIGSEGV, "#PF at 0x* (read from 0x7ffffffff000, not mapped)\n" },
		{ "k", "read the shim", 128 + SIGSEGV, "#PF at 0x* (read from 0xffffffffc0000000, not *)\n" },
		{ "c", "non-canonical read", 128 + SIGSEGV, "#GP at 0x*\n" },
		{ "g", "cli", 128 + SIGSEGV, "#GP at 0x*\n" },
		{ "d", "divide by zero", 128 + SIGFPE, "#DE at 0x*\n" },
		{ "i", "int3", 128 + SIGTRAP, "#BP at 0x*\n" },
	};
	for (size_t i = 0; i < sizeof traps / sizeof traps[0]; i++) {
		char name[128], tail[256];
		RUN(r, p, traps[i].mode);
		snprintf(tail, sizeof tail, traps[i].err, entry);
		if (traps[i].err[0])
			snprintf(want, sizeof want, "ringfence: %s: killed by %s: %s", p, strsignal_abbrev(traps[i].status - 128), tail);
		else
			want[0] = 0;
		snprintf(name, sizeof name, "trap %s: %s", traps[i].mode, traps[i].what);
		expect(r, name, traps[i].status, "", want);
	}
	free(r);
}

static void test_load(const char *textfile, const char *dynexe)
{
	struct result *r = malloc(sizeof *r);
	char want[1024];

	run_opts(r, false, (const char *const[]){ NULL });
	expect(r, "no program: usage", 2, "", "usage: ringfence run *PROGRAM*");
	RUN(r, "/nonexistent/program");
	expect(r, "missing file", RUN_EXIT_NOLOAD, "", "ringfence: /nonexistent/program: No such file or directory\n");
	RUN(r, "/");
	expect(r, "directory", RUN_EXIT_NOLOAD, "", "ringfence: /: not a regular file\n");
	RUN(r, textfile);
	snprintf(want, sizeof want, "ringfence: %s: not an ELF file (bad magic)\n", textfile);
	expect(r, "text file", RUN_EXIT_NOLOAD, "", want);
	RUN(r, "/dev/null");
	expect(r, "device", RUN_EXIT_NOLOAD, "", "ringfence: /dev/null: not a regular file\n");
	/* PIE or not, a host program is dynamically linked: refused for its PT_INTERP. */
	RUN(r, dynexe);
	snprintf(want, sizeof want, "ringfence: %s: dynamically linked (has PT_INTERP): *\n", dynexe);
	expect(r, "dynamically linked host program", RUN_EXIT_NOLOAD, "", want);
	free(r);
}

/* --trace (to stderr and to a file) and --stats say what the program did. */
static void test_observing(void)
{
	struct result *r = malloc(sizeof *r);
	const char *p = prog("hello");
	RUN(r, "--trace", p);
	expect(r, "--trace: one line per syscall with its result", 0, "hello, world\n",
	       "write(1, 0x*, 13) = 13\nexit(0) = ?\n");
	char file[] = "/tmp/ringfence-trace-XXXXXX", opt[64];
	int fd = mkstemp(file);
	snprintf(opt, sizeof opt, "--trace=%s", file);
	RUN(r, opt, prog("badsys"));
	char got[512] = "";
	ssize_t n = fd >= 0 ? pread(fd, got, sizeof got - 1, 0) : -1;
	got[n > 0 ? n : 0] = 0;
	if (!ok(r->status == ENOSYS && fnmatch("syscall_999(*) = -1 ENOSYS (Function not implemented)\nexit_group(38) = ?\n",
	                                     got, 0) == 0, "--trace=FILE: an unknown syscall and its ENOSYS"))
		show("trace", got);
	if (fd >= 0) {
		close(fd);
		unlink(file);
	}
	RUN(r, "--stats", p);
	expect(r, "--stats: counts, times and the platform's counters", 0, "hello, world\n",
	       "ringfence: stats: 2 syscalls, 0 faults, 0 signals delivered, 2 switches\n"
	       "ringfence: stats: time in the guest * ms, in the host * ms; guest memory peak * KiB\n"
	       "ringfence: stats:   write              1\n"
	       "ringfence: stats:   exit               1\n"
	       "ringfence: stats: platform: * vCPUs, *\n*vcpu 0: exits io *");
	free(r);
}

/* SIGTERM and SIGINT sent to ringfence reach the program, whose default action ends it (143, 130). */
static void test_forwarded(int sig)
{
	const char *p = prog("waitsig");
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		printf("Bail out! pipe: %s\n", strerror(errno));
		exit(1);
	}
	pid_t pid = fork();
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		execl(ringfence, ringfence, "run", p, (char *)NULL);
		_exit(99);
	}
	close(po[1]);
	close(pe[1]);
	/* The program says "ready" from inside the guest: only then is the signal sent. */
	char out[64] = "";
	size_t got = 0;
	struct pollfd pf = { po[0], POLLIN, 0 };
	while (got < 6 && poll(&pf, 1, DEADLINE * 1000) > 0) {
		ssize_t n = read(po[0], out + got, sizeof out - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	kill(pid, sig);
	char err[512] = "";
	size_t elen = 0;
	for (ssize_t n; elen < sizeof err - 1 && (n = read(pe[0], err + elen, sizeof err - 1 - elen)) > 0;)
		elen += (size_t)n;
	int st;
	waitpid(pid, &st, 0);
	close(po[0]);
	close(pe[0]);
	char want[256];
	snprintf(want, sizeof want, "ringfence: %s: killed by SIG%s at rip 0x*\n", p, sigabbrev_np(sig));
	int status = WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
	if (!ok(!strcmp(out, "ready\n") && status == 128 + sig && fnmatch(want, err, 0) == 0,
	        "SIG%s sent to ringfence ends the paused program: exit %d", sigabbrev_np(sig), 128 + sig)) {
		printf("#   status %d\n", status);
		show("stdout", out);
		show("stderr", err);
	}
}

/* The syscall filter: a forbidden syscall (the test-only hook, right after the filter is loaded)
 * kills the whole of ringfence with SIGSYS; --no-seccomp says it on stderr and runs unfiltered. */
static void test_seccomp(void)
{
	struct result *r = malloc(sizeof *r);
	struct rlimit core, none = { 0, 0 };
	getrlimit(RLIMIT_CORE, &core);
	setrlimit(RLIMIT_CORE, &none);   /* no core file from the SIGSYS */
	setenv("RINGFENCE_TEST_FORBIDDEN_SYSCALL", "1", 1);
	RUN(r, prog("hello"));
	expect(r, "a forbidden syscall after the filter is loaded: ringfence dies of SIGSYS", 1000 + SIGSYS, "", "");
	RUN(r, "--no-seccomp", prog("hello"));
	expect(r, "--no-seccomp: no filter, and one line on stderr says so", 0, "hello, world\n",
	       "ringfence: --no-seccomp: running without a syscall filter (debugging only)\n");
	unsetenv("RINGFENCE_TEST_FORBIDDEN_SYSCALL");
	setrlimit(RLIMIT_CORE, &core);
	free(r);
}

int main(int argc, char **argv)
{
	if (argc < 3 || (strcmp(argv[1], "kvm") && strcmp(argv[1], "load"))) {
		printf("Bail out! usage: %s kvm|load RINGFENCE ARGS...\n", argv[0]);
		return 1;
	}
	ringfence = argv[2];
	programs = argv + 3;
	nprograms = argc - 3;
	if (!strcmp(argv[1], "load")) {
		if (argc != 5) {
			printf("Bail out! load wants RINGFENCE TEXTFILE DYNEXE\n");
			return 1;
		}
		test_load(argv[3], argv[4]);
		return tap_done();
	}
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		tap_skip_all("cannot open /dev/kvm");
	close(fd);
	test_programs();
	test_crafted();
	test_observing();
	test_forwarded(SIGTERM);
	test_forwarded(SIGINT);
	test_seccomp();
	return tap_done();
}
