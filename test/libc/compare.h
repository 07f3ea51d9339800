/* SPDX-License-Identifier: MIT */
/* Runs a program natively and under `ringfence run`, and compares the two runs: the contract shared
 * by the libc and busybox acceptance tests. */
#ifndef RINGFENCE_TEST_COMPARE_H
#define RINGFENCE_TEST_COMPARE_H

#include <stdbool.h>
#include <stddef.h>

/* Status of a run that did not end by itself or whose runner died: never a real exit status. */
#define CMP_TIMED_OUT    1000   /* killed at the deadline */
#define CMP_RUNNER_DIED  2000   /* + signal: the process the test started (ringfence) was killed */
#define CMP_NOT_RUN      3000   /* fork/exec failed, or the test's time budget was spent */

struct cmp_result {
	int status;               /* exit status, 128 + N for a native death by signal N, or CMP_* */
	unsigned char *out;       /* all of stdout, malloc'd, NUL after the last byte */
	size_t outlen;
	char *err;                /* stderr, at most CMP_ERR_MAX bytes kept, NUL-terminated */
	size_t errlen;
	int deadline;             /* for CMP_TIMED_OUT: the seconds it had */
};
#define CMP_ERR_MAX 8192

struct cmp_spec {
	const char *const *argv;  /* the program and its arguments, argv[0] is the program's path */
	const char *stdin_path;   /* file to read stdin from; NULL: /dev/null */
	const char *cwd;          /* directory to run in; NULL: the test's own */
	const char *rw;           /* directory the sandbox may write below (--rw); NULL: none */
	int deadline;             /* seconds; 0: the default (60, or RINGFENCE_TEST_DEADLINE) */
};

/* Path of the ringfence executable, and the test's time budget in seconds (0: none). */
void cmp_init(const char *ringfence, int budget_seconds);

/* One run of spec; sandboxed: under `ringfence run [--rw DIR] --`. Always fills res. */
void cmp_run(struct cmp_result *res, const struct cmp_spec *spec, bool sandboxed);
void cmp_free(struct cmp_result *res);

/* Same stdout bytes and the same status? */
bool cmp_same(const struct cmp_result *native, const struct cmp_result *sandboxed);
/* TAP comments on how they differ: both statuses, where stdout parts, the runner's output. */
void cmp_explain(const struct cmp_result *native, const struct cmp_result *sandboxed);

/* "exit 3", "exit 139 (128 + SIGSEGV)", "killed at the 60 s deadline", ... into buf. */
const char *cmp_describe(const struct cmp_result *res, char *buf, size_t size);

/* Prints the first lines of a run's stdout and stderr as TAP comments. */
void cmp_show(const char *who, const struct cmp_result *res);

/* Skips the whole test (TAP plan 1..0) when KVM is unusable: /dev/kvm missing, or ringfence run
 * exiting 125 on probe_argv. RINGFENCE_REQUIRE_KVM=1 turns that into a failure. */
void cmp_require_kvm(const char *const *probe_argv);

/* Copies the file or directory tree src to dst (which must not exist), giving every copy the
 * modification time mtime: fixtures whose listing does not depend on the checkout. 0 or -errno. */
int cmp_copy_tree(const char *src, const char *dst, long mtime);

/* A fresh directory below $TMPDIR (or /tmp), removed by cmp_cleanup(). */
const char *cmp_tempdir(void);
void cmp_remove_tree(const char *path);
void cmp_cleanup(void);

#endif
