/* SPDX-License-Identifier: MIT */
/* ringfence bench --programs: whole static programs timed natively, under `ringfence run` and under a
 * PTRACE_SYSEMU runner in one run, quoted as ratios to floors measured in the same run. */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cmd.h"
#include "ringfence.h"
#include "vcpu.h"

#define DEFAULT_RUNS   5
#define MAX_RUNS       1000
#define COUNT          100000          /* syscalls in a syscall-heavy program's loop */
#define COUNT_ARG      "100000"
#define COMPUTE_TARGET 1.1             /* compute under ringfence run / native, at most */
#define FLOOR_WARMUP   50
#define FLOOR_BATCH    200             /* round trips per floor sample: far above one clock read */
#define FLOOR_SAMPLES  21              /* per round */
#define OUT_MAX        256             /* output kept from a run: enough for a checksum or a message */

enum runner { R_NATIVE, R_RUN, R_PTRACE, R_COUNT };
static const char *const runner_name[R_COUNT] = { "native", "run", "ptrace" };
static const char *const runner_how[R_COUNT] = { "natively", "under ringfence run", "under the ptrace runner" };

enum { P_GETPPID, P_DEVNULL, P_COMPUTE, P_HELLO, P_COUNT };

struct prog {
	const char *name;
	const char *file;                /* under the programs' directory */
	bool in_test;                    /* test/progs, not bench/progs */
	bool per_syscall;                /* its loop is COUNT syscalls: (run - native) / COUNT is a figure */
	const char *expect_out;          /* NULL: the same bytes as its native run */
	const char *what;
};

static const struct prog progs[P_COUNT] = {
	[P_GETPPID] = { "getppid", "getppid", false, true, "", "10^5 raw getppid" },
	[P_DEVNULL] = { "devnull", "devnull", false, true, "", "openat /dev/null, 10^5 16-byte writes to it" },
	[P_COMPUTE] = { "compute", "compute", false, false, NULL, "CPU-bound, syscall-free loop, checksum at the end" },
	[P_HELLO] = { "hello", "hello", true, false, "hello, world\n", "test/progs hello: one write" },
};

/* One program under one runner. */
struct cell {
	uint64_t *ns;                    /* wall time per timed run, spawn to reap */
	unsigned n;
	bool failed;
	long maxrss;                     /* wait4's ru_maxrss in KiB, largest seen */
	double median, min;
};

struct pbench {
	const struct bench_programs_opts *o;
	char self[PATH_MAX];
	char path[P_COUNT][PATH_MAX];
	int out_fd, err_fd;              /* memfds: the program's stdout and stderr */
	char native_out[P_COUNT][OUT_MAX];
	struct cell cell[P_COUNT][R_COUNT];
	long hwm[P_COUNT];               /* VmHWM of `ringfence run PROG` at its exit, KiB; <0: not read */
	rf_platform *p;
	struct rf_platform_info info;
	struct cell floor;               /* ring3_fault, ns per round trip */
};

/* ---- options ---- */

static int parse_runs(const char *val, unsigned *runs)
{
	char *end;
	errno = 0;
	unsigned long n = strtoul(val, &end, 10);
	if (errno || end == val || *end || val[0] == '-' || n < 1 || n > MAX_RUNS) {
		fprintf(stderr, "ringfence bench: --program-runs wants 1..%d, not '%s'\n", MAX_RUNS, val);
		return 2;
	}
	*runs = (unsigned)n;
	return 0;
}

int bench_programs_options(int *argc, char **argv, struct bench_programs_opts *o)
{
	*o = (struct bench_programs_opts){ .runs = DEFAULT_RUNS };
	int kept = 0;
	for (int i = 0; i < *argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--programs")) {
			o->only = true;
		} else if (!strcmp(a, "--progs-dir") || !strcmp(a, "--program-runs")) {
			if (i + 1 >= *argc) {
				fprintf(stderr, "ringfence bench: %s wants a value\n", a);
				return 2;
			}
			if (!strcmp(a, "--progs-dir"))
				o->dir = argv[++i];
			else if (parse_runs(argv[++i], &o->runs))
				return 2;
		} else if (!strncmp(a, "--progs-dir=", 12)) {
			o->dir = a + 12;
		} else if (!strncmp(a, "--program-runs=", 15)) {
			if (parse_runs(a + 15, &o->runs))
				return 2;
		} else {
			argv[kept++] = argv[i];
		}
	}
	*argc = kept;
	return 0;
}

/* ---- running one program ---- */

/* The bench programs sit at build/bench/progs and hello at build/test/progs; this executable is
 * build/cmd/ringfence. --progs-dir replaces the first; hello is taken from it too if it is there. */
static int find_programs(struct pbench *b)
{
	ssize_t n = readlink("/proc/self/exe", b->self, sizeof b->self - 1);
	if (n < 0)
		return -errno;
	b->self[n] = 0;
	char build[PATH_MAX];
	snprintf(build, sizeof build, "%s", b->self);
	char *root = dirname(dirname(build));
	for (int i = 0; i < P_COUNT; i++) {
		const struct prog *pr = &progs[i];
		int len = b->o->dir ? snprintf(b->path[i], PATH_MAX, "%s/%s", b->o->dir, pr->file)
		                    : snprintf(b->path[i], PATH_MAX, "%s/%s/%s", root, pr->in_test ? "test/progs" : "bench/progs",
		                               pr->file);
		if (len >= PATH_MAX)
			return -ENAMETOOLONG;
		if (pr->in_test && b->o->dir && access(b->path[i], X_OK) < 0)
			snprintf(b->path[i], PATH_MAX, "%s/test/progs/%s", root, pr->file);
	}
	return 0;
}

static void fill_argv(const struct pbench *b, int prog, enum runner r, char **argv)
{
	int k = 0;
	if (r == R_RUN) {
		argv[k++] = (char *)b->self;
		argv[k++] = "run";
	}
	argv[k++] = (char *)b->path[prog];
	if (progs[prog].per_syscall)
		argv[k++] = COUNT_ARG;
	argv[k] = NULL;
}

/* Empties both capture files; the child's fds 1 and 2 share their offsets. */
static void reset_capture(const struct pbench *b)
{
	for (int fd = b->out_fd; fd >= 0; fd = fd == b->out_fd ? b->err_fd : -1)
		if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0)
			perror("ringfence bench: capture file");
}

/* Runs prog under runner once: *ns gets the wall time from spawn to reap. Shell status or -errno. */
static int run_once(struct pbench *b, int prog, enum runner r, uint64_t *ns, long *maxrss)
{
	char *argv[5];
	fill_argv(b, prog, r, argv);
	reset_capture(b);
	*maxrss = 0;
	uint64_t t0 = bench_now_ns();
	struct bench_sysemu_stats st;
	int status = r == R_PTRACE ? bench_sysemu_run(argv, b->out_fd, b->err_fd, &st)
	                           : bench_spawn_run(argv, b->out_fd, b->err_fd, maxrss);
	*ns = bench_now_ns() - t0;
	return status;
}

/* Checks a run's outcome; prints why and marks the cell failed if it is not a clean one. */
static bool check_run(struct pbench *b, int prog, enum runner r, int status)
{
	char out[OUT_MAX] = "", err[OUT_MAX] = "";
	if (pread(b->out_fd, out, OUT_MAX - 1, 0) < 0 || pread(b->err_fd, err, OUT_MAX - 1, 0) < 0)
		perror("ringfence bench: capture file");
	const char *want = progs[prog].expect_out ? progs[prog].expect_out : r == R_NATIVE ? NULL : b->native_out[prog];
	if (status == 0 && r == R_NATIVE)
		snprintf(b->native_out[prog], OUT_MAX, "%s", out);
	if (status == 0 && (!want || !strcmp(out, want)))
		return true;
	err[strcspn(err, "\n")] = 0;
	out[strcspn(out, "\n")] = 0;
	if (status < 0)
		fprintf(stderr, "ringfence bench: %s %s: %s\n", progs[prog].name, runner_how[r],
		        status == -EPERM ? "PTRACE_TRACEME refused (seccomp, Yama or a tracer already attached)"
		                         : strerror(-status));
	else if (status)
		fprintf(stderr, "ringfence bench: %s %s: exit status %d%s%s\n", progs[prog].name, runner_how[r], status,
		        err[0] ? ": " : "", err);
	else
		fprintf(stderr, "ringfence bench: %s %s: printed '%s', not what %s\n", progs[prog].name, runner_how[r],
		        out, progs[prog].expect_out ? "it should" : "it printed natively");
	b->cell[prog][r].failed = true;
	return false;
}

/* ---- measuring ---- */

static int floor_samples(struct pbench *b, unsigned n)
{
	if (!b->p || b->floor.failed)
		return 0;
	int r = vcpu_floor_fault(b->p, RF_VEC_DE, FLOOR_WARMUP, FLOOR_BATCH, b->floor.ns + b->floor.n, n);
	if (r < 0) {
		fprintf(stderr, "ringfence bench: ring3_fault: %s\n", rf_last_error());
		b->floor.failed = true;
		return 1;
	}
	b->floor.n += n;
	return 0;
}

/* One untimed run of every program under every runner: warms the page cache, records the native
 * output, and rules out a runner that cannot run a program before any time is spent timing it. */
static void warm_up(struct pbench *b)
{
	for (int i = 0; i < P_COUNT; i++)
		for (int r = 0; r < R_COUNT; r++) {
			uint64_t ns;
			long rss;
			check_run(b, i, r, run_once(b, i, r, &ns, &rss));
		}
}

/* Rounds visit every program and runner in turn, as `ringfence bench` does, so a noisy neighbour
 * lands on all of them alike. */
static int timed_rounds(struct pbench *b)
{
	int any = 0;
	for (unsigned round = 0; round < b->o->runs; round++) {
		any |= floor_samples(b, FLOOR_SAMPLES);
		for (int i = 0; i < P_COUNT; i++)
			for (int r = 0; r < R_COUNT; r++) {
				struct cell *c = &b->cell[i][r];
				if (c->failed)
					continue;
				long rss;
				int status = run_once(b, i, r, &c->ns[c->n], &rss);
				if (!check_run(b, i, r, status))
					continue;
				c->n++;
				if (rss > c->maxrss)
					c->maxrss = rss;
			}
	}
	return any;
}

static void peak_rss(struct pbench *b)
{
	for (int i = 0; i < P_COUNT; i++) {
		b->hwm[i] = -ENODATA;
		if (b->cell[i][R_RUN].failed)
			continue;
		char *argv[5];
		fill_argv(b, i, R_RUN, argv);
		reset_capture(b);
		int status = bench_traced_hwm(argv, b->out_fd, b->err_fd, &b->hwm[i]);
		if (status != 0)
			b->hwm[i] = status < 0 ? status : -ECHILD;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static void summarize(struct cell *c, unsigned batch)
{
	if (c->failed || !c->n) {
		c->failed = true;
		return;
	}
	qsort(c->ns, c->n, sizeof *c->ns, cmp_u64);
	unsigned n = c->n;
	c->median = (n % 2 ? (double)c->ns[n / 2] : ((double)c->ns[n / 2 - 1] + (double)c->ns[n / 2]) / 2) / batch;
	c->min = (double)c->ns[0] / batch;
}

/* ---- output ---- */

struct fig {
	char name[48];
	double median, min;              /* ns */
	char floor[48];
	double floor_median;             /* <= 0: no floor */
	unsigned samples;
	const char *what;
	int verdict;                     /* the compute target: 1 pass, 0 FAIL, -1 none */
};

static void fmt_ns(double ns, char *buf, size_t len)
{
	if (ns >= 1e6 || ns <= -1e6)
		snprintf(buf, len, "%.3f ms", ns / 1e6);
	else
		snprintf(buf, len, "%.3f us", ns / 1e3);
}

/* A figure with no floor of its own is a floor: quoted against itself, as `ringfence bench` does. */
static void print_fig(const struct pbench *b, struct fig *f, bool json)
{
	if (f->floor_median <= 0) {
		snprintf(f->floor, sizeof f->floor, "%s", f->name);
		f->floor_median = f->median;
	}
	if (json) {
		printf("{\"name\":\"%s\",\"median_ns\":%.1f,\"min_ns\":%.1f,\"floor\":\"%s\",\"ratio\":%.3f,", f->name,
		       f->median, f->min, f->floor, f->median / f->floor_median);
		if (f->verdict >= 0)
			printf("\"target\":%.2f,\"pass\":%s,", COMPUTE_TARGET, f->verdict ? "true" : "false");
		printf("\"samples\":%u,\"host\":\"%s\",\"mmu\":\"%s\",\"syscall\":\"%s\"}\n", f->samples,
		       b->p ? cmd_host_name(&b->info) : "unknown", b->p ? cmd_mmu_name(b->info.mmu) : "unknown",
		       b->p ? cmd_syscall_name(b->info.syscall_mode) : "unknown");
		return;
	}
	char med[32], min[32];
	fmt_ns(f->median, med, sizeof med);
	fmt_ns(f->min, min, sizeof min);
	printf("%-26s %12s %12s  %-26s %8.3f  %s", f->name, med, min, f->floor, f->median / f->floor_median, f->what);
	if (f->verdict >= 0)
		printf("; target <= %.1f x native: %s", COMPUTE_TARGET, f->verdict ? "pass" : "FAIL");
	printf("\n");
}

static void print_failed(const char *name, bool json)
{
	if (!json)
		printf("%-26s %12s\n", name, "failed");
}

static void print_prog(const struct pbench *b, int i, bool json)
{
	const struct cell *nat = &b->cell[i][R_NATIVE];
	for (int r = 0; r < R_COUNT; r++) {
		const struct cell *c = &b->cell[i][r];
		struct fig f = { .median = c->median, .min = c->min, .samples = c->n, .what = "", .verdict = -1 };
		snprintf(f.name, sizeof f.name, "%s_%s", progs[i].name, runner_name[r]);
		if (c->failed) {
			print_failed(f.name, json);
			continue;
		}
		if (r == R_NATIVE) {
			f.what = progs[i].what;
		} else if (!nat->failed) {
			snprintf(f.floor, sizeof f.floor, "%s_native", progs[i].name);
			f.floor_median = nat->median;
			f.what = r == R_PTRACE ? "every syscall stopped and served by the tracer"
			         : i == P_HELLO ? "start-up: platform create, probes, load, run, exit"
			         : "wall time, spawn to reap";
		}
		if (i == P_COMPUTE && r == R_RUN && !nat->failed)
			f.verdict = c->median <= COMPUTE_TARGET * nat->median;
		print_fig(b, &f, json);
	}
	if (!progs[i].per_syscall)
		return;
	for (int r = R_RUN; r < R_COUNT; r++) {
		const struct cell *c = &b->cell[i][r];
		struct fig f = { .floor = "ring3_fault", .samples = c->n, .verdict = -1 };
		snprintf(f.name, sizeof f.name, "%s_%s_per_syscall", progs[i].name, runner_name[r]);
		if (c->failed || nat->failed) {
			print_failed(f.name, json);
			continue;
		}
		f.median = (c->median - nat->median) / COUNT;
		f.min = (c->min - nat->min) / COUNT;
		f.floor_median = b->floor.failed ? 0 : b->floor.median;
		f.what = "(wall - native wall) / 10^5";
		print_fig(b, &f, json);
	}
}

static void print_rss(const struct pbench *b, bool json)
{
	for (int i = 0; i < P_COUNT; i++) {
		const struct cell *c = &b->cell[i][R_RUN];
		if (c->failed)
			continue;
		if (json) {
			printf("{\"name\":\"%s_run_peak_rss\",\"vmhwm_kib\":%ld,\"ru_maxrss_kib\":%ld,\"host\":\"%s\"}\n",
			       progs[i].name, b->hwm[i], c->maxrss, b->p ? cmd_host_name(&b->info) : "unknown");
			continue;
		}
		if (b->hwm[i] >= 0)
			printf("%-26s %9ld KiB  VmHWM at exit (wait4's ru_maxrss %ld KiB also counts the bench's own)\n",
			       progs[i].name, b->hwm[i], c->maxrss);
		else
			printf("%-26s VmHWM unread (%s); wait4 ru_maxrss %ld KiB\n", progs[i].name,
			       b->hwm[i] == -ECHILD ? "the traced run failed" : strerror((int)-b->hwm[i]), c->maxrss);
	}
}

static void print_all(const struct pbench *b, bool json)
{
	if (!json) {
		printf("\nringfence bench --programs on %s: MMU %s, SYSCALL %s; %u timed runs per figure, median and min\n"
		       "ringfence: %s\nprograms: %s, %s\n\n", b->p ? cmd_host_name(&b->info) : "unknown (no platform)",
		       b->p ? cmd_mmu_name(b->info.mmu) : "-", b->p ? cmd_syscall_name(b->info.syscall_mode) : "-",
		       b->o->runs, b->self, b->path[0], b->path[P_HELLO]);
		printf("%-26s %12s %12s  %-26s %8s  %s\n", "figure", "median", "min", "floor", "ratio", "what");
	}
	struct fig fl = { .name = "ring3_fault", .median = b->floor.median, .min = b->floor.min, .samples = b->floor.n,
	                  .what = "floor: ring-3 #DE -> `out` -> host -> iretq, per round trip", .verdict = -1 };
	if (b->floor.failed)
		print_failed(fl.name, json);
	else
		print_fig(b, &fl, json);
	for (int i = 0; i < P_COUNT; i++)
		print_prog(b, i, json);
	if (!json)
		printf("\npeak RSS of `ringfence run PROGRAM`:\n");
	print_rss(b, json);
}

/* ---- driver ---- */

static int setup(struct pbench *b)
{
	int r = find_programs(b);
	if (r < 0)
		return r;
	if ((b->out_fd = memfd_create("bench-stdout", MFD_CLOEXEC)) < 0 ||
	    (b->err_fd = memfd_create("bench-stderr", MFD_CLOEXEC)) < 0)
		return -errno;
	unsigned n = b->o->runs;
	if (!(b->floor.ns = calloc((size_t)n * FLOOR_SAMPLES, sizeof *b->floor.ns)))
		return -ENOMEM;
	for (int i = 0; i < P_COUNT; i++)
		for (int k = 0; k < R_COUNT; k++)
			if (!(b->cell[i][k].ns = calloc(n, sizeof(uint64_t))))
				return -ENOMEM;
	/* The floor's platform; without one every program figure is still measured. */
	if (rf_platform_create(NULL, &b->p) < 0) {
		fprintf(stderr, "ringfence bench: ring3_fault: %s\n", rf_last_error());
		b->p = NULL;
		b->floor.failed = true;
	} else {
		rf_platform_info(b->p, &b->info);
	}
	return 0;
}

static void teardown(struct pbench *b)
{
	if (b->p && rf_platform_destroy(b->p) < 0)
		fprintf(stderr, "ringfence bench: %s\n", rf_last_error());
	for (int i = 0; i < P_COUNT; i++)
		for (int k = 0; k < R_COUNT; k++)
			free(b->cell[i][k].ns);
	free(b->floor.ns);
	if (b->out_fd >= 0)
		close(b->out_fd);
	if (b->err_fd >= 0)
		close(b->err_fd);
}

int bench_programs(const struct bench_programs_opts *o, bool json)
{
	struct pbench *b = calloc(1, sizeof *b);
	if (!b) {
		fprintf(stderr, "ringfence bench: %s\n", strerror(ENOMEM));
		return 1;
	}
	b->o = o;
	b->out_fd = b->err_fd = -1;
	int r = setup(b);
	if (r < 0) {
		fprintf(stderr, "ringfence bench: programs: %s\n", strerror(-r));
		teardown(b);
		free(b);
		return 1;
	}
	fflush(stdout);   /* the children's output goes to the capture files, but the bench's own is buffered */
	warm_up(b);
	int any = timed_rounds(b);
	peak_rss(b);
	summarize(&b->floor, FLOOR_BATCH);
	for (int i = 0; i < P_COUNT; i++)
		for (int k = 0; k < R_COUNT; k++) {
			summarize(&b->cell[i][k], 1);
			any |= b->cell[i][k].failed;
		}
	print_all(b, json);
	teardown(b);
	free(b);
	return any;
}
