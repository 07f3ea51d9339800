/* SPDX-License-Identifier: MIT */
/* Native-versus-sandboxed runs for the acceptance tests: spawning with a deadline, capturing both
 * streams, comparing and explaining the difference, the KVM skip, fixture copies. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compare.h"
#include "tap.h"

#define RUN_DEADLINE 60   /* seconds per run; RINGFENCE_TEST_DEADLINE overrides */

static char *ringfence_path;
static time_t budget_end;
static char *temps[8];
static int ntemps;

void cmp_init(const char *ringfence, int budget_seconds)
{
	/* Resolved: the runs happen in other working directories. */
	ringfence_path = realpath(ringfence, NULL);
	if (!ringfence_path) {
		printf("Bail out! %s: %s\n", ringfence, strerror(errno));
		exit(1);
	}
	budget_end = budget_seconds ? time(NULL) + budget_seconds : 0;
	signal(SIGPIPE, SIG_IGN);   /* a child that closes its stdin early must not kill the test */
}

static void child(const struct cmp_spec *spec, bool sandboxed, int out, int err)
{
	static const int reset[] = { SIGPIPE, SIGALRM, SIGUSR1, SIGUSR2, SIGSEGV, SIGFPE, SIGINT, SIGTERM };
	for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++)
		signal(reset[i], SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	struct rlimit nocore = { 0, 0 };
	setrlimit(RLIMIT_CORE, &nocore);   /* the programs that fault on purpose leave no core files */
	int in = open(spec->stdin_path ? spec->stdin_path : "/dev/null", O_RDONLY);
	if (in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(122);
	if (spec->cwd && chdir(spec->cwd) < 0)
		_exit(123);
	const char *argv[64];
	int n = 0;
	if (sandboxed) {
		argv[n++] = ringfence_path;
		argv[n++] = "run";
		if (spec->rw) {
			argv[n++] = "--rw";
			argv[n++] = spec->rw;
		}
		argv[n++] = "--";
	}
	for (int i = 0; spec->argv[i] && n < 63; i++)
		argv[n++] = spec->argv[i];
	argv[n] = NULL;
	execv(argv[0], (char *const *)argv);
	dprintf(err, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(124);
}

/* Reads what is there into *buf (growing it, or capped at cap bytes with the rest dropped). */
static void drain(int *fd, unsigned char **buf, size_t *len, size_t *size, size_t cap)
{
	unsigned char scratch[65536];
	ssize_t n = read(*fd, scratch, sizeof scratch);
	if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
		close(*fd);
		*fd = -1;
		return;
	}
	if (n < 0)
		return;
	size_t take = (size_t)n;
	if (cap && *len + take > cap)
		take = cap - *len;
	if (*len + take + 1 > *size) {
		size_t want = *size ? *size : 65536;
		while (want < *len + take + 1)
			want *= 2;
		unsigned char *grown = realloc(*buf, want);
		if (!grown) {
			printf("Bail out! out of memory capturing output\n");
			exit(1);
		}
		*buf = grown;
		*size = want;
	}
	memcpy(*buf + *len, scratch, take);
	*len += take;
	(*buf)[*len] = 0;
}

static int run_deadline(int asked)
{
	const char *e = getenv("RINGFENCE_TEST_DEADLINE");
	int d = asked ? asked : e && atoi(e) > 0 ? atoi(e) : RUN_DEADLINE;
	if (budget_end) {
		long left = (long)(budget_end - time(NULL));
		if (left < d)
			d = left > 0 ? (int)left : 0;
	}
	return d;
}

void cmp_run(struct cmp_result *res, const struct cmp_spec *spec, bool sandboxed)
{
	memset(res, 0, sizeof *res);
	size_t outsize = 0, errsize = 0;
	unsigned char *err = NULL;
	int deadline = run_deadline(spec->deadline);
	if (deadline <= 0) {
		res->status = CMP_NOT_RUN;
		res->err = strdup("not run: the test's time budget is spent");
		res->errlen = strlen(res->err);
		return;
	}
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		printf("Bail out! pipe: %s\n", strerror(errno));
		exit(1);
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		printf("Bail out! fork: %s\n", strerror(errno));
		exit(1);
	}
	if (pid == 0)
		child(spec, sandboxed, po[1], pe[1]);
	close(po[1]);
	close(pe[1]);
	int fds[2] = { po[0], pe[0] };
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	bool late = false;
	while (fds[0] >= 0 || fds[1] >= 0) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		long ms_left = (long)deadline * 1000 - ((now.tv_sec - start.tv_sec) * 1000 +
		                                        (now.tv_nsec - start.tv_nsec) / 1000000);
		if (ms_left <= 0) {
			late = true;
			break;
		}
		struct pollfd p[2] = { { fds[0], POLLIN, 0 }, { fds[1], POLLIN, 0 } };
		if (poll(p, 2, ms_left > 1000 ? 1000 : (int)ms_left) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			drain(&fds[0], &res->out, &res->outlen, &outsize, 0);
		if (p[1].revents)
			drain(&fds[1], &err, &res->errlen, &errsize, CMP_ERR_MAX);
	}
	if (late)
		kill(pid, SIGKILL);
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (late) {
		res->status = CMP_TIMED_OUT;
		res->deadline = deadline;
	}
	else if (WIFEXITED(st))
		res->status = WEXITSTATUS(st);
	else
		res->status = sandboxed ? CMP_RUNNER_DIED + WTERMSIG(st) : 128 + WTERMSIG(st);
	res->err = err ? (char *)err : strdup("");
	if (!res->out)
		res->out = (unsigned char *)strdup("");
}

void cmp_free(struct cmp_result *res)
{
	free(res->out);
	free(res->err);
	memset(res, 0, sizeof *res);
}

const char *cmp_describe(const struct cmp_result *res, char *buf, size_t size)
{
	int status = res->status;
	if (status == CMP_TIMED_OUT)
		snprintf(buf, size, "killed at the %d s deadline", res->deadline);
	else if (status == CMP_NOT_RUN)
		snprintf(buf, size, "not run");
	else if (status > CMP_RUNNER_DIED)
		snprintf(buf, size, "the runner itself was killed by %s", sigabbrev_np(status - CMP_RUNNER_DIED) ?: "?");
	else if (status >= 125 && status <= 127 && !strstr(res->err, "ringfence: "))
		snprintf(buf, size, "exit %d", status);   /* the program's own, a shell's 126 or 127 */
	else if (status == 125)
		snprintf(buf, size, "exit 125 (from ringfence: platform failure)");
	else if (status == 126)
		snprintf(buf, size, "exit 126 (from ringfence: unsupported syscall)");
	else if (status == 127)
		snprintf(buf, size, "exit 127 (from ringfence: cannot load)");
	else if (status > 128 && status < 128 + 65)
		snprintf(buf, size, "exit %d (128 + SIG%s)", status, sigabbrev_np(status - 128) ?: "?");
	else
		snprintf(buf, size, "exit %d", status);
	return buf;
}

/* One line of s starting at off, escaped, at most 160 characters. */
static void show_line(const char *label, const unsigned char *s, size_t len, size_t off)
{
	printf("#     %s \"", label);
	int shown = 0;
	for (size_t i = off; i < len && s[i] != '\n' && shown < 160; i++, shown++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\')
			putchar(s[i]);
		else
			printf("\\x%02x", s[i]);
	}
	printf(off >= len ? "\" (end of output)\n" : "\"\n");
}

void cmp_show(const char *who, const struct cmp_result *res)
{
	const char *streams[2] = { (const char *)res->out, res->err };
	size_t lens[2] = { res->outlen, res->errlen };
	const char *names[2] = { "stdout", "stderr" };
	for (int k = 0; k < 2; k++) {
		int lines = 0;
		size_t off = 0;
		printf("#   %s %s (%zu bytes)%s\n", who, names[k], lens[k], lens[k] ? ":" : "");
		while (off < lens[k] && lines < 12) {
			show_line("|", (const unsigned char *)streams[k], lens[k], off);
			const char *nl = memchr(streams[k] + off, '\n', lens[k] - off);
			off = nl ? (size_t)(nl - streams[k]) + 1 : lens[k];
			lines++;
		}
		if (off < lens[k])
			printf("#     | ...\n");
	}
}

bool cmp_same(const struct cmp_result *native, const struct cmp_result *sandboxed)
{
	return native->status == sandboxed->status && native->outlen == sandboxed->outlen &&
	       memcmp(native->out, sandboxed->out, native->outlen) == 0;
}

void cmp_explain(const struct cmp_result *native, const struct cmp_result *sandboxed)
{
	char a[96], b[96];
	bool same_status = native->status == sandboxed->status;
	bool same_out = native->outlen == sandboxed->outlen &&
	                memcmp(native->out, sandboxed->out, native->outlen) == 0;
	printf("#   status: native %s, sandboxed %s%s\n", cmp_describe(native, a, sizeof a),
	       cmp_describe(sandboxed, b, sizeof b), same_status ? "" : "  <- differ");
	if (!same_out) {
		size_t i = 0, line = 1, bol = 0;
		size_t n = native->outlen < sandboxed->outlen ? native->outlen : sandboxed->outlen;
		for (; i < n && native->out[i] == sandboxed->out[i]; i++)
			if (native->out[i] == '\n') {
				line++;
				bol = i + 1;
			}
		printf("#   stdout differs at byte %zu (line %zu); native %zu bytes, sandboxed %zu bytes\n", i, line,
		       native->outlen, sandboxed->outlen);
		/* Deep into a long line, start a little before the difference. */
		size_t from = i - bol > 100 ? i - 60 : bol;
		if (from != bol)
			printf("#   (lines shown from byte %zu of line %zu)\n", from - bol, line);
		show_line("native:   ", native->out, native->outlen, from);
		show_line("sandboxed:", sandboxed->out, sandboxed->outlen, from);
	}
	cmp_show("sandboxed", sandboxed);
}

void cmp_require_kvm(const char *const *probe_argv)
{
	char why[512];
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, sizeof why, "no KVM: cannot open /dev/kvm: %s", strerror(errno));
		tap_skip_all(why);
	}
	close(fd);
	struct cmp_result r;
	struct cmp_spec spec = { .argv = probe_argv };
	cmp_run(&r, &spec, true);
	if (r.status == 125) {
		char *nl = strchr(r.err, '\n');
		if (nl)
			*nl = 0;
		snprintf(why, sizeof why, "no KVM: ringfence run exits 125: %s", r.err);
		cmp_free(&r);
		tap_skip_all(why);
	}
	cmp_free(&r);
}

static int copy_file(const char *src, const char *dst)
{
	char buf[65536];
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, r = 0;
	if (in < 0)
		return -errno;
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0)
		r = -errno;
	ssize_t n;
	while (r == 0 && (n = read(in, buf, sizeof buf)) != 0) {
		if (n < 0 || write(out, buf, (size_t)n) != n)
			r = n < 0 ? -errno : -EIO;
	}
	close(in);
	if (out >= 0)
		close(out);
	return r;
}

int cmp_copy_tree(const char *src, const char *dst, long mtime)
{
	struct stat st;
	int r = 0;
	if (lstat(src, &st) < 0)
		return -errno;
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlink(src, target, sizeof target - 1);
		if (n < 0)
			return -errno;
		target[n] = 0;
		if (symlink(target, dst) < 0)
			return -errno;
	} else if (S_ISDIR(st.st_mode)) {
		if (mkdir(dst, 0755) < 0 || chmod(dst, 0755) < 0)
			return -errno;
		DIR *d = opendir(src);
		if (!d)
			return -errno;
		struct dirent *e;
		while (r == 0 && (e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			char s[4096], t[4096];
			snprintf(s, sizeof s, "%s/%s", src, e->d_name);
			snprintf(t, sizeof t, "%s/%s", dst, e->d_name);
			r = cmp_copy_tree(s, t, mtime);
		}
		closedir(d);
	} else if (S_ISREG(st.st_mode)) {
		r = copy_file(src, dst);
		if (r == 0 && chmod(dst, (st.st_mode & 0100) ? 0755 : 0644) < 0)
			r = -errno;
	} else {
		return -EINVAL;
	}
	struct timespec times[2] = { { mtime, 0 }, { mtime, 0 } };
	if (r == 0 && utimensat(AT_FDCWD, dst, times, AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	return r;
}

const char *cmp_tempdir(void)
{
	const char *tmp = getenv("TMPDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/ringfence-cmp-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (ntemps == (int)(sizeof temps / sizeof temps[0]) || !mkdtemp(path)) {
		printf("Bail out! cannot make a temporary directory %s: %s\n", path, strerror(errno));
		exit(1);
	}
	/* The sandbox sees the same path: a resolved one, so getcwd() and realpath() agree. */
	char *real = realpath(path, NULL);
	temps[ntemps++] = real;
	return real;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void cmp_remove_tree(const char *path)
{
	nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

void cmp_cleanup(void)
{
	for (int i = 0; i < ntemps; i++) {
		cmp_remove_tree(temps[i]);
		free(temps[i]);
	}
	ntemps = 0;
}
