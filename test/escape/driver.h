/* SPDX-License-Identifier: MIT */
/* What the drivers of test/escape share: running `ringfence run` (or a program natively) with its
 * output captured and a deadline, KVM detection, temporary trees and host-side snapshots.
 * Header-only (static inline), so TAP numbering stays in the test's own unit, as in kvmtest.h. */
#ifndef ESCAPE_DRIVER_H
#define ESCAPE_DRIVER_H

#include <stdbool.h>
#include <stddef.h>

#include "tap.h"


#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DRIVER_DEADLINE 300       /* seconds per run: a nested VM under TCG is slow, a hang is not */
#define DRIVER_OUT_MAX  (4u << 20)
#define DRIVER_LEAK_FD  7         /* escape.h: LEAKED_FD */

struct drive_result {
	int status;               /* exit status; 1000 + signal if the process itself was killed */
	bool timed_out;
	char *out, *err;          /* NUL-terminated, owned */
	size_t outlen, errlen;
};

static inline void driver_bail(const char *what, const char *arg)
{
	printf("Bail out! %s %s: %s\n", what, arg ? arg : "", strerror(errno));
	exit(1);
}

static inline void driver_drain(int *fd, char **buf, size_t *len)
{
	char scratch[65536];
	ssize_t n = read(*fd, scratch, sizeof scratch);
	if (n > 0) {
		size_t keep = *len + (size_t)n > DRIVER_OUT_MAX ? DRIVER_OUT_MAX - *len : (size_t)n;
		memcpy(*buf + *len, scratch, keep);
		*len += keep;
		(*buf)[*len] = 0;
	} else if (n == 0 || errno != EINTR) {
		close(*fd);
		*fd = -1;
	}
}

/* Runs argv (argv[0] is the executable) with stdin /dev/null; leak_fd >= 0 is handed to it as
 * DRIVER_LEAK_FD. Output is captured, up to DRIVER_OUT_MAX each; after `deadline` seconds the
 * process is killed. */
static inline void drive(struct drive_result *res, const char *const argv[], int leak_fd, int deadline)
{
	memset(res, 0, sizeof *res);
	res->out = calloc(1, DRIVER_OUT_MAX + 1);
	res->err = calloc(1, DRIVER_OUT_MAX + 1);
	int po[2], pe[2];
	if (!res->out || !res->err || pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0)
		driver_bail("pipe", NULL);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		driver_bail("fork", NULL);
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		dup2(null, 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		if (leak_fd >= 0)
			dup2(leak_fd, DRIVER_LEAK_FD);   /* dup2 clears close-on-exec */
		signal(SIGPIPE, SIG_DFL);
		execv(argv[0], (char *const *)argv);
		_exit(99);
	}
	close(po[1]);
	close(pe[1]);
	int fds[2] = { po[0], pe[0] };
	time_t end = time(NULL) + deadline;
	while ((fds[0] >= 0 || fds[1] >= 0) && time(NULL) < end) {
		struct pollfd p[2] = { { fds[0], POLLIN, 0 }, { fds[1], POLLIN, 0 } };
		if (poll(p, 2, 1000) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			driver_drain(&fds[0], &res->out, &res->outlen);
		if (p[1].revents)
			driver_drain(&fds[1], &res->err, &res->errlen);
	}
	if (fds[0] >= 0 || fds[1] >= 0) {
		printf("# %s did not finish in %d s: killed\n", argv[0], deadline);
		res->timed_out = true;
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

static inline void drive_free(struct drive_result *res)
{
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
}

static inline void driver_show_text(const char *what, const char *s, size_t max_lines)
{
	size_t lines = 0;
	while (*s && lines < max_lines) {
		const char *nl = strchr(s, '\n');
		int n = nl ? (int)(nl - s) : (int)strlen(s);
		printf("#   %s| %.*s\n", what, n, s);
		s += n + (nl != NULL);
		lines++;
	}
	if (*s)
		printf("#   %s| ...\n", what);
}

static inline void drive_show(const struct drive_result *res)
{
	printf("#   exit status %d%s\n", res->status, res->timed_out ? " (timed out)" : "");
	driver_show_text("stdout", res->out, 20);
	driver_show_text("stderr", res->err, 20);
}

/* Passes a guest's TAP lines through as this test's own (renumbered, prefixed); comments pass as
 * comments, anything else is shown. Returns how many checks it passed through. */
static inline int drive_passthrough(const struct drive_result *res, const char *prefix)
{
	int n = 0;
	const char *s = res->out;
	while (*s) {
		const char *nl = strchr(s, '\n');
		int len = nl ? (int)(nl - s) : (int)strlen(s);
		bool pass = !strncmp(s, "ok ", 3), fail = !strncmp(s, "not ok ", 7);
		if (pass || fail) {
			const char *desc = memchr(s, '-', (size_t)len);
			int dlen = desc ? len - (int)(desc + 2 - s) : 0;
			ok(pass, "%s: %.*s", prefix, dlen > 0 ? dlen : 0, desc ? desc + 2 : "");
			n++;
		} else if (s[0] == '#') {
			printf("%.*s\n", len, s);
		} else if (len) {
			printf("# %s| %.*s\n", prefix, len, s);
		}
		s += len + (nl != NULL);
	}
	return n;
}

/* The run ended with the program's own exit status, not 125..127 or a signal. */
static inline bool drive_ended_normally(const struct drive_result *res, const char *what)
{
	bool normal = !res->timed_out && res->status < 125;
	if (!ok(normal, "%s: the program ran to its own exit", what))
		drive_show(res);
	return normal;
}

/* Skips the whole test (or fails it with RINGFENCE_REQUIRE_KVM=1) when /dev/kvm cannot be used. */
static inline void driver_need_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		char why[128];
		snprintf(why, sizeof why, "cannot open /dev/kvm: %s", strerror(errno));
		tap_skip_all(why);
	}
	close(fd);
}

static inline char *driver_mkdtemp(const char *tag)
{
	const char *tmp = getenv("TMPDIR");
	char *path = malloc(4096);
	snprintf(path, 4096, "%s/ringfence-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
	if (!mkdtemp(path))
		driver_bail("mkdtemp", path);
	/* The guest sees paths as given; a TMPDIR with symlinks in it would blur what it may reach. */
	char *real = realpath(path, NULL);
	free(path);
	return real;
}

static inline int driver_rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static inline void driver_rmtree(const char *dir)
{
	nftw(dir, driver_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void driver_write(const char *path, const char *content, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, content, len) != (ssize_t)len)
		driver_bail("write", path);
	close(fd);
}

static inline void driver_mkdir(const char *path)
{
	if (mkdir(path, 0755) < 0)
		driver_bail("mkdir", path);
}

static inline void driver_symlink(const char *target, const char *path)
{
	if (symlink(target, path) < 0)
		driver_bail("symlink", path);
}

static inline char *driver_slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	ssize_t n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	if (len)
		*len = n > 0 ? (size_t)n : 0;
	return buf;
}

/* ---- snapshots: every entry below a directory, as sorted text lines ---- */
static __attribute__((unused)) struct {
	char **lines;
	size_t n, cap;
	const char *root, *skip;
} driver_snap;

static inline int driver_snap_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)type;
	const char *skip = driver_snap.skip;
	size_t sl = skip ? strlen(skip) : 0;
	if (skip && !strncmp(path, skip, sl) && (path[sl] == 0 || path[sl] == '/'))
		return 0;
	if (ftw->level == 0)
		return 0;   /* the top directory's own times change when the guest fails to write in it */
	char detail[512] = "";
	if (S_ISLNK(st->st_mode)) {
		ssize_t n = readlink(path, detail, sizeof detail - 1);
		detail[n > 0 ? n : 0] = 0;
	} else if (S_ISREG(st->st_mode)) {
		size_t len = 0;
		char *c = driver_slurp(path, &len);
		uint64_t h = 1469598103934665603ull;      /* FNV-1a of the content */
		for (size_t i = 0; c && i < len; i++)
			h = (h ^ (unsigned char)c[i]) * 1099511628211ull;
		snprintf(detail, sizeof detail, "fnv %016llx", (unsigned long long)h);
		free(c);
	}
	char *line;
	if (asprintf(&line, "%s type %o mode %o size %lld links %lu mtime %lld.%09ld %s",
	             path + strlen(driver_snap.root), (unsigned)(st->st_mode & S_IFMT), (unsigned)(st->st_mode & 07777),
	             (long long)st->st_size, (unsigned long)st->st_nlink, (long long)st->st_mtim.tv_sec,
	             st->st_mtim.tv_nsec, detail) < 0)
		driver_bail("asprintf", NULL);
	if (driver_snap.n == driver_snap.cap) {
		driver_snap.cap = driver_snap.cap ? 2 * driver_snap.cap : 64;
		driver_snap.lines = realloc(driver_snap.lines, driver_snap.cap * sizeof *driver_snap.lines);
	}
	driver_snap.lines[driver_snap.n++] = line;
	return 0;
}

static inline int driver_cmp_lines(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static inline char *driver_snapshot(const char *dir, const char *skip)
{
	driver_snap.n = 0;
	driver_snap.root = dir;
	driver_snap.skip = skip;
	if (nftw(dir, driver_snap_one, 16, FTW_PHYS) < 0)
		driver_bail("nftw", dir);
	qsort(driver_snap.lines, driver_snap.n, sizeof *driver_snap.lines, driver_cmp_lines);
	size_t total = 1;
	for (size_t i = 0; i < driver_snap.n; i++)
		total += strlen(driver_snap.lines[i]) + 1;
	char *s = calloc(1, total), *at = s;
	for (size_t i = 0; i < driver_snap.n; i++) {
		at = stpcpy(at, driver_snap.lines[i]);
		*at++ = '\n';
		free(driver_snap.lines[i]);
	}
	free(driver_snap.lines);
	driver_snap.lines = NULL;
	driver_snap.n = driver_snap.cap = 0;
	return s;
}

/* Lines of a that are not in b, as TAP comments. */
static inline void driver_lines_missing(const char *a, const char *b, const char *label)
{
	const char *s = a;
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		char *line = strndup(s, len + 1);     /* with its newline, so it cannot match a prefix */
		if (!strstr(b, line) || (strstr(b, line) != b && strstr(b, line)[-1] != '\n'))
			printf("#   %s %.*s\n", label, (int)len, s);
		free(line);
		s += len + (nl != NULL);
	}
}

static inline void driver_same_snapshot(const char *before, const char *after, const char *what)
{
	if (!ok(!strcmp(before, after), "%s", what)) {
		driver_lines_missing(before, after, "before:");
		driver_lines_missing(after, before, "after: ");
	}
}
#endif
