/* SPDX-License-Identifier: MIT */
/* ringfence bench: the platform's syscall and page-fault round trips as ratios to floors of this run. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "ringfence.h"
#include "vcpu.h"

/* Samples are taken in rounds that visit every figure in turn, so a noisy neighbour that comes
 * and goes (machines are shared) lands on all figures alike instead of skewing one ratio. */
#define ROUNDS         5
#define WARMUP         50       /* round trips before each timed run: NPT, TLB and COW refills */
#define CAL_SAMPLES    21
#define CLOCK_SHARE    100      /* a sample is at least this many times one clock read */
#define MAX_BATCH      10000
#define MAX_ITERATIONS 1000000
#define DEFAULT_ITERATIONS 2000

#define CODE_VA      0x400000ull
#define PF_CODE_OFF  0x10
#define PF_ADDR      0x10000000ull   /* never mapped */

struct bench {
	rf_platform *p;
	rf_platform *p_inject;           /* the same host with RF_KICK_INJECT, for its kick figures */
	struct kick_split split[4];      /* per kick figure, in F_KICK_SPIN.. order */
	rf_memory *mem;
	rf_as *as;
	rf_context *sys, *pf;
	double clock_ns;                 /* one clock_gettime(CLOCK_MONOTONIC) */
	struct bench_proto *proto;       /* bench_proto.c, opened at its first figure */
	int proto_err;
};

typedef int (*measure_fn)(struct bench *b, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n);

enum { F_OUT, F_FAULT, F_UD, F_SYSCALL, F_PF, F_KICK_SPIN, F_KICK_STORM, F_KICK_SPIN_INJ, F_KICK_STORM_INJ,
       F_REMAP, F_UNMAP1, F_UNMAP64,
       F_UNMAP512, F_PROTO, F_PROTO_SOCKET, F_PROTO_SLEEP, F_RELAY, F_CAPI, F_PINGPONG, F_PTRACE, F_NATIVE,
       F_COUNT };

struct figure {
	const char *name;
	measure_fn measure;              /* or, for the control plane's, this trip of bench_proto.c */
	enum bench_proto_trip proto;
	bool in_library;                 /* failures are described by rf_last_error() */
	const char *what;
	unsigned batch;
	uint64_t *ns;                    /* per sample: batch round trips */
	unsigned n;
	bool failed;
	bool skipped;                    /* not asked for (--only) */
	double median, p99;              /* per round trip */
};

/* Measured and not failed. */
static bool usable(const struct figure *f)
{
	return !f->failed && !f->skipped;
}

/* ---- the platform's own paths, through the public API only ---- */

static int switch_expect(struct bench *b, rf_context *c, enum rf_event_type type)
{
	struct rf_event ev;
	int r = rf_switch(c, b->as, &ev);
	if (r < 0)
		return r;
	if (ev.type != type || (type == RF_EVENT_PAGE_FAULT && ev.fault_addr != PF_ADDR)) {
		fprintf(stderr, "ringfence bench: event %d vector %u at 0x%llx, expected event %d\n", ev.type,
		        ev.vector, (unsigned long long)ev.rip, type);
		return -EPROTO;
	}
	return 0;
}

static int switch_loop(struct bench *b, rf_context *c, enum rf_event_type type, unsigned warmup,
                       unsigned batch, uint64_t *ns, unsigned n)
{
	int r;
	for (unsigned i = 0; i < warmup; i++)
		if ((r = switch_expect(b, c, type)) < 0)
			return r;
	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = bench_now_ns();
		for (unsigned j = 0; j < batch; j++)
			if ((r = switch_expect(b, c, type)) < 0)
				return r;
		ns[i] = bench_now_ns() - t0;
	}
	return 0;
}

/* Guest `1: syscall; jmp 1b`: every switch is one syscall round trip. */
static int platform_syscall(struct bench *b, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	return switch_loop(b, b->sys, RF_EVENT_SYSCALL, warmup, batch, ns, n);
}

/* Guest `mov (%rdi), %rax` with rdi unmapped: every switch retries it and returns the same #PF. */
static int platform_fault(struct bench *b, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	return switch_loop(b, b->pf, RF_EVENT_PAGE_FAULT, warmup, batch, ns, n);
}

static int kick_spin(struct bench *b, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	return bench_kick(b->p, false, warmup / 10, batch, ns, n, &b->split[0]);
}

static int kick_storm(struct bench *b, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	return bench_kick(b->p, true, warmup / 10, batch, ns, n, &b->split[1]);
}

static int kick_spin_inject(struct bench *b, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	return bench_kick(b->p_inject, false, warmup / 10, batch, ns, n, &b->split[2]);
}

static int kick_storm_inject(struct bench *b, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	return bench_kick(b->p_inject, true, warmup / 10, batch, ns, n, &b->split[3]);
}

static int remap(struct bench *b, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	return bench_remap(b->p, warmup, batch, ns, n);
}

static int unmap1(struct bench *b, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	return bench_unmap(b->p, 1, warmup, batch, ns, n);
}

static int unmap64(struct bench *b, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	return bench_unmap(b->p, 64, warmup, batch, ns, n);
}

static int unmap512(struct bench *b, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	return bench_unmap(b->p, 512, warmup, batch, ns, n);
}

static int proto_open(struct bench *b)
{
	if (!b->proto && !b->proto_err)
		b->proto_err = bench_proto_open(b->p, &b->proto);
	return b->proto_err;
}

/* One figure's samples: its own function, or bench_proto.c's trip (opened at the first). */
static int measure(struct bench *b, const struct figure *f, unsigned warmup, unsigned batch, uint64_t *ns,
                   unsigned n)
{
	if (!f->proto)
		return f->measure(b, warmup, batch, ns, n);
	int r = proto_open(b);
	return r < 0 ? r : bench_proto_measure(b->proto, f->proto, warmup, batch, ns, n);
}

static int bench_setup(struct bench *b)
{
	static const unsigned char sys_code[] = { 0x0f, 0x05, 0xeb, 0xfc };   /* 1: syscall; jmp 1b */
	static const unsigned char pf_code[] = { 0x48, 0x8b, 0x07, 0x0f, 0x0b }; /* mov (%rdi),%rax; ud2 */
	int r;
	struct rf_platform_options inject = { .kick_policy = RF_KICK_INJECT };
	if ((r = rf_platform_create(NULL, &b->p)) < 0 || (r = rf_platform_create(&inject, &b->p_inject)) < 0 ||
	    (r = rf_memory_create(b->p, RF_HUGE_SIZE, &b->mem)) < 0 ||
	    (r = rf_as_create(b->p, &b->as)) < 0 || (r = rf_context_create(b->p, &b->sys)) < 0 ||
	    (r = rf_context_create(b->p, &b->pf)) < 0)
		return r;
	unsigned char *host = rf_memory_host(b->mem);
	memcpy(host, sys_code, sizeof sys_code);
	memcpy(host + PF_CODE_OFF, pf_code, sizeof pf_code);
	if ((r = rf_as_map(b->as, CODE_VA, RF_PAGE_SIZE, b->mem, 0, RF_PROT_READ | RF_PROT_EXEC, 0)) < 0)
		return r;
	/* Neither snippet touches its stack; rsp only has to be a canonical user address. */
	*rf_context_regs(b->sys) = (struct rf_regs){ .rip = CODE_VA, .rsp = CODE_VA + RF_PAGE_SIZE, .rflags = 0x202 };
	*rf_context_regs(b->pf) = (struct rf_regs){ .rip = CODE_VA + PF_CODE_OFF, .rsp = CODE_VA + RF_PAGE_SIZE,
	                                            .rdi = PF_ADDR, .rflags = 0x202 };
	return 0;
}

static void bench_teardown(struct bench *b)
{
	if (!b->p)
		return;
	bench_proto_close(b->proto);
	rf_context_destroy(b->pf);
	rf_context_destroy(b->sys);
	rf_as_destroy(b->as);
	rf_memory_destroy(b->mem);
	if (b->p_inject && rf_platform_destroy(b->p_inject) < 0)
		fprintf(stderr, "ringfence bench: %s\n", rf_last_error());
	if (rf_platform_destroy(b->p) < 0)
		fprintf(stderr, "ringfence bench: %s\n", rf_last_error());
}

/* ---- floors ---- */

static int floor_out(struct bench *b, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	return vcpu_floor_out(b->p, warmup, batch, ns, n);
}

/* #DE, not #UD: KVM intercepts every #UD (see vcpu/floor.c), so a ud2 round trip carries an extra
 * exit into KVM that no platform path pays. ring3_ud shows that cost next to the floor. */
static int floor_fault(struct bench *b, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	return vcpu_floor_fault(b->p, RF_VEC_DE, warmup, batch, ns, n);
}

static int floor_ud(struct bench *b, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	return vcpu_floor_fault(b->p, RF_VEC_UD, warmup, batch, ns, n);
}

static int floor_ptrace(struct bench *b, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	(void)b;
	return bench_floor_ptrace(warmup, batch, ns, n);
}

static int floor_native(struct bench *b, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	(void)b;
	return bench_floor_native(warmup, batch, ns, n);
}

/* ---- statistics ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static double median_of(uint64_t *s, unsigned n)
{
	qsort(s, n, sizeof *s, cmp_u64);
	return n % 2 ? (double)s[n / 2] : ((double)s[n / 2 - 1] + (double)s[n / 2]) / 2;
}

/* Median and nearest-rank p99 per round trip. */
static void summarize(struct figure *f)
{
	f->median = median_of(f->ns, f->n) / f->batch;
	unsigned k = (unsigned)((99ull * f->n + 99) / 100);   /* ceil(0.99 n), at least 1 */
	f->p99 = (double)f->ns[k - 1] / f->batch;
}

static double clock_cost(void)
{
	uint64_t d[101];
	for (unsigned i = 0; i < 101; i++) {
		uint64_t t0 = bench_now_ns();
		d[i] = bench_now_ns() - t0;
	}
	return median_of(d, 101);
}

/* Picks how many round trips one sample times, so that the clock read inside every sample stays
 * under 1/CLOCK_SHARE of it: on a VM whose clocksource is HPET a read costs microseconds. */
static int calibrate(struct bench *b, struct figure *f)
{
	uint64_t ns[CAL_SAMPLES];
	int r = measure(b, f, WARMUP, 1, ns, CAL_SAMPLES);
	if (r < 0)
		return r;
	double trip = median_of(ns, CAL_SAMPLES) - b->clock_ns;
	double want = b->clock_ns * CLOCK_SHARE / (trip > 1 ? trip : 1);
	f->batch = want < 1 ? 1 : want > MAX_BATCH ? MAX_BATCH : (unsigned)want + 1;
	return 0;
}

/* ---- output ---- */

/* One output line: a figure against a floor. name NULL: the figure's own name. */
struct row {
	const char *name;
	int fig, floor;
};

static const struct row rows[] = {
	{ NULL, F_OUT, F_OUT },
	{ NULL, F_FAULT, F_OUT },
	{ NULL, F_UD, F_FAULT },
	{ NULL, F_SYSCALL, F_FAULT },
	{ NULL, F_PF, F_FAULT },
	{ NULL, F_KICK_SPIN, F_FAULT },
	{ NULL, F_KICK_STORM, F_FAULT },
	{ NULL, F_KICK_SPIN_INJ, F_FAULT },
	{ NULL, F_KICK_STORM_INJ, F_FAULT },
	{ NULL, F_REMAP, F_FAULT },
	{ NULL, F_UNMAP1, F_FAULT },
	{ NULL, F_UNMAP64, F_FAULT },
	{ NULL, F_UNMAP512, F_FAULT },
	{ NULL, F_PROTO, F_FAULT },
	{ NULL, F_PROTO_SOCKET, F_FAULT },
	{ NULL, F_PROTO_SLEEP, F_FAULT },
	{ NULL, F_RELAY, F_FAULT },
	{ NULL, F_CAPI, F_FAULT },
	{ NULL, F_PINGPONG, F_FAULT },
	{ NULL, F_PTRACE, F_PTRACE },
	{ NULL, F_NATIVE, F_NATIVE },
	{ "syscall_vs_ptrace", F_SYSCALL, F_PTRACE },
	{ "syscall_vs_native", F_SYSCALL, F_NATIVE },
};

static void print_json(const struct bench *b, const struct figure *f)
{
	struct rf_platform_info info;
	rf_platform_info(b->p, &info);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const struct figure *x = &f[rows[i].fig], *fl = &f[rows[i].floor];
		if (!usable(x) || !usable(fl))
			continue;
		printf("{\"name\":\"%s\",\"median_ns\":%.1f,\"p99_ns\":%.1f,\"floor\":\"%s\",\"ratio\":%.3f,"
		       "\"samples\":%u,\"batch\":%u,\"host\":\"%s\",\"mmu\":\"%s\",\"syscall\":\"%s\"}\n",
		       rows[i].name ? rows[i].name : x->name, x->median, x->p99, fl->name, x->median / fl->median, x->n,
		       x->batch, cmd_host_name(&info), cmd_mmu_name(info.mmu), cmd_syscall_name(info.syscall_mode));
	}
	static const char *const adds[] = { "control_plane_adds", "control_plane_adds_socket",
	                                    "control_plane_adds_sleep" };
	for (int k = F_PROTO; k <= F_PROTO_SLEEP; k++)
		if (usable(&f[k]) && usable(&f[F_CAPI]) && usable(&f[F_PINGPONG]))
			printf("{\"name\":\"%s\",\"median_ns\":%.1f,\"floor\":\"socket_pingpong\",\"ratio\":%.3f,"
			       "\"target\":1.25,\"host\":\"%s\",\"mmu\":\"%s\",\"syscall\":\"%s\"}\n",
			       adds[k - F_PROTO], f[k].median - f[F_CAPI].median,
			       (f[k].median - f[F_CAPI].median) / f[F_PINGPONG].median, cmd_host_name(&info),
			       cmd_mmu_name(info.mmu), cmd_syscall_name(info.syscall_mode));
}

/* Where a kick's time goes: rf_kick -> the first exit (the signal), that exit -> the report. */
static void print_splits(const struct bench *b, const struct figure *f)
{
	for (int k = F_KICK_SPIN; k <= F_KICK_STORM_INJ; k++) {
		const struct kick_split *s = &b->split[k - F_KICK_SPIN];
		if (!usable(&f[k]) || !usable(&f[F_FAULT]) || !s->n)
			continue;
		double e = median_of(s->to_exit, s->n), r = median_of(s->to_report, s->n);
		printf("%-17s split: rf_kick -> exit %.3f us (%.2f x floor), exit -> report %.3f us (%.2f x floor), "
		       "medians of %u\n", f[k].name, e / 1000, e / f[F_FAULT].median, r / 1000, r / f[F_FAULT].median, s->n);
	}
}

static void print_table(const struct bench *b, const struct figure *f, unsigned iterations)
{
	struct rf_platform_info info;
	rf_platform_info(b->p, &info);
	printf("ringfence bench on %s: MMU %s, SYSCALL %s; %u samples per figure in %d rounds; clock read %.0f ns\n\n",
	       cmd_host_name(&info),
	       info.mmu == RF_MMU_SHADOW ? "shadow (host edits touched from ring 0)" : "direct (EPT/NPT)",
	       info.syscall_mode == RF_SYSCALL_NATIVE ? "enters ring 0" : "faults at LSTAR in ring 3",
	       iterations, ROUNDS, b->clock_ns);
	printf("%-18s %12s %12s %6s  %-15s %7s  %s\n", "figure", "median us", "p99 us", "batch", "floor",
	       "ratio", "what");
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const struct figure *x = &f[rows[i].fig], *fl = &f[rows[i].floor];
		const char *name = rows[i].name ? rows[i].name : x->name;
		if (x->skipped || fl->skipped)
			continue;
		if (rows[i].name && !rows[i - 1].name)
			printf("\n");
		if (x->failed || fl->failed) {
			printf("%-18s %12s\n", name, "failed");
			continue;
		}
		printf("%-18s %12.3f %12.3f %6u  %-15s %7.3f  %s\n", name, x->median / 1000, x->p99 / 1000,
		       x->batch, fl->name, x->median / fl->median, rows[i].name ? "" : x->what);
	}
	if (usable(&f[F_SYSCALL]) && usable(&f[F_FAULT]))
		printf("\nsyscall / ring3_fault = %.3f (target on our machines: <= 1.25; printed, never checked)\n",
		       f[F_SYSCALL].median / f[F_FAULT].median);
	for (int k = F_KICK_SPIN; k <= F_KICK_STORM_INJ; k++)
		if (usable(&f[k]) && usable(&f[F_FAULT]))
			printf("%-17s median %.3f, p99 %.3f x ring3_fault (target for the default policy: median <= 1, "
			       "p99 <= 2; printed, never checked)\n", f[k].name, f[k].median / f[F_FAULT].median,
			       f[k].p99 / f[F_FAULT].median);
	print_splits(b, f);
	for (int k = F_PROTO; k <= F_PROTO_SLEEP; k++)
		if (usable(&f[k]) && usable(&f[F_CAPI]) && usable(&f[F_PINGPONG])) {
			unsigned q, r;
			double x = (f[k].median - f[F_CAPI].median) / f[F_PINGPONG].median;
			bench_proto_sizes(b->proto, &q, &r);
			printf("control plane adds (%s - capi_switch) = %.3f x socket_pingpong (frames of %u and %u bytes), "
			       "target <= 1.25: %s (printed, never checked)\n", f[k].name, x, q, r, x <= 1.25 ? "pass" : "FAIL");
		}
	/* Where it goes: the socket itself, what running the vCPU on a thread that sleeps in a socket
	 * read adds (no protobuf, no server), and the rest (protobuf, dispatch, the server). */
	if (usable(&f[F_PROTO_SLEEP]) && usable(&f[F_RELAY]) && usable(&f[F_CAPI]) && usable(&f[F_PINGPONG])) {
		double pp = f[F_PINGPONG].median;
		printf("  of proto_switch_sleep's: the socket round trip 1.000, a switch by a thread woken from a socket "
		       "(relay_switch - capi_switch - socket_pingpong) %.3f, protobuf and the server (proto_switch_sleep "
		       "- relay_switch) %.3f x socket_pingpong\n", (f[F_RELAY].median - f[F_CAPI].median - pp) / pp,
		       (f[F_PROTO_SLEEP].median - f[F_RELAY].median) / pp);
	}
	if (info.mmu == RF_MMU_SHADOW)
		printf("shadow MMU: %llu page-table changes touched %llu table pages from ring 0 in this run\n",
		       (unsigned long long)info.mmu_flushes, (unsigned long long)info.mmu_pages_touched);
}

/* ---- driver ---- */

static int usage(FILE *out)
{
	fprintf(out, "usage: ringfence bench [--json] [--iterations N] [--programs] [--progs-dir DIR] [--program-runs N]\n"
	             "  --json          one JSON object per line: name, median_ns, p99_ns, floor, ratio\n"
	             "  --iterations N  timed samples per figure (default %d, at most %d)\n"
	             "  --programs      only the whole-program figures (natively, ringfence run, ptrace), which\n"
	             "                  plain `ringfence bench` prints at the end; --progs-dir DIR: where\n"
	             "                  getppid, devnull and compute are; --program-runs N: timed runs of each\n"
	             "  --only A,B,...  only these figures (and the floors their ratios need), no whole-program\n"
	             "                  figures; e.g. --only proto_switch for the control plane's six\n",
	             DEFAULT_ITERATIONS, MAX_ITERATIONS);
	return out == stderr ? 2 : 0;
}

static int parse(int argc, char **argv, bool *json, unsigned *iterations, const char **only)
{
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *val = NULL;
		if (!strcmp(a, "--json")) {
			*json = true;
			continue;
		}
		if (!strcmp(a, "--only") && i + 1 < argc) {
			*only = argv[++i];
			continue;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return usage(stdout), 1;
		if (!strcmp(a, "--iterations") && i + 1 < argc)
			val = argv[++i];
		else if (!strncmp(a, "--iterations=", 13))
			val = a + 13;
		if (!val) {
			fprintf(stderr, "ringfence bench: unknown or incomplete option '%s'\n", a);
			return usage(stderr), -1;
		}
		char *end;
		errno = 0;
		unsigned long n = strtoul(val, &end, 10);
		if (errno || end == val || *end || val[0] == '-' || n < 1 || n > MAX_ITERATIONS) {
			fprintf(stderr, "ringfence bench: --iterations wants 1..%d, not '%s'\n", MAX_ITERATIONS, val);
			return -1;
		}
		*iterations = (unsigned)n;
	}
	return 0;
}

/* --only: every figure not named is skipped, but for the floors of the named ones' rows; the
 * control plane's six figures go together (its ratios and their split need them all). */
static int select_figures(struct figure *f, const char *only)
{
	char *list = strdup(only), *save = NULL;
	if (!list)
		return -ENOMEM;
	for (int i = 0; i < F_COUNT; i++)
		f[i].skipped = true;
	for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		int i = 0;
		while (i < F_COUNT && strcmp(f[i].name, name))
			i++;
		if (i == F_COUNT) {
			fprintf(stderr, "ringfence bench: --only: no figure '%s'\n", name);
			free(list);
			return -EINVAL;
		}
		f[i].skipped = false;
		if (i >= F_PROTO && i <= F_PINGPONG)
			for (int k = F_PROTO; k <= F_PINGPONG; k++)
				f[k].skipped = false;
	}
	free(list);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		if (!rows[i].name && !f[rows[i].fig].skipped)
			f[rows[i].floor].skipped = false;
	return 0;
}

static void failed(struct figure *f, int err)
{
	/* -EPROTO: an unexpected event, already described where it was seen. */
	const char *why = f->in_library && err != -EPROTO ? rf_last_error() : strerror(-err);
	if (err == -EPERM && f->measure == floor_ptrace)
		why = "PTRACE_TRACEME refused (seccomp, Yama or a tracer already attached)";
	fprintf(stderr, "ringfence bench: %s: %s\n", f->name, why);
	f->failed = true;
}

static int measure_all(struct bench *b, struct figure *f, unsigned iterations)
{
	int any = 0;
	for (int i = 0; i < F_COUNT; i++) {
		if (f[i].skipped)
			continue;
		if (!(f[i].ns = calloc(iterations, sizeof *f[i].ns)))
			return -ENOMEM;
		int r = calibrate(b, &f[i]);
		if (r < 0) {
			failed(&f[i], r);
			any = 1;
		}
	}
	for (unsigned round = 0; round < ROUNDS; round++) {
		/* Round k takes samples [k*N/R, (k+1)*N/R): every sample is taken exactly once. */
		unsigned lo = (unsigned)((uint64_t)iterations * round / ROUNDS);
		unsigned hi = (unsigned)((uint64_t)iterations * (round + 1) / ROUNDS);
		for (int i = 0; i < F_COUNT && hi > lo; i++) {
			if (!usable(&f[i]))
				continue;
			int r = measure(b, &f[i], WARMUP, f[i].batch, f[i].ns + lo, hi - lo);
			if (r < 0) {
				failed(&f[i], r);
				any = 1;
			}
			f[i].n = hi;   /* rounds fill ns[] in order, so the first n samples are taken */
		}
	}
	for (int i = 0; i < F_COUNT; i++)
		if (usable(&f[i]))
			summarize(&f[i]);
	return any;
}

int cmd_bench(int argc, char **argv)
{
	bool json = false;
	unsigned iterations = DEFAULT_ITERATIONS;
	struct bench_programs_opts programs;
	if (bench_programs_options(&argc, argv, &programs))
		return 2;
	const char *only = NULL;
	int r = parse(argc, argv, &json, &iterations, &only);
	if (r != 0)
		return r > 0 ? 0 : 2;
	if (programs.only)
		return bench_programs(&programs, json);
	struct bench b = { 0 };
	if (bench_setup(&b) < 0) {
		fprintf(stderr, "ringfence bench: %s\n", rf_last_error());
		bench_teardown(&b);
		return 1;
	}
	struct figure f[F_COUNT] = {
		[F_OUT] = { .name = "ring0_out", .measure = floor_out, .in_library = true, .what = "ring-0 `out` exit -> host -> KVM_RUN" },
		[F_FAULT] = { .name = "ring3_fault", .measure = floor_fault, .in_library = true, .what = "ring-3 #DE -> `out` -> host -> iretq" },
		[F_UD] = { .name = "ring3_ud", .measure = floor_ud, .in_library = true, .what = "the same with #UD (KVM intercepts it)" },
		[F_SYSCALL] = { .name = "syscall", .measure = platform_syscall, .in_library = true, .what = "rf_switch: guest SYSCALL round trip" },
		[F_KICK_SPIN] = { .name = "kick_spin", .measure = kick_spin, .in_library = true,
		                  .what = "rf_kick -> switch returns interrupted, guest spinning" },
		[F_KICK_STORM] = { .name = "kick_storm", .measure = kick_storm, .in_library = true,
		                   .what = "the same, guest faulting on every lap" },
		[F_KICK_SPIN_INJ] = { .name = "kick_spin_inject", .measure = kick_spin_inject, .in_library = true,
		                      .what = "kick_spin under RF_KICK_INJECT (window + injection)" },
		[F_KICK_STORM_INJ] = { .name = "kick_storm_inject", .measure = kick_storm_inject, .in_library = true,
		                       .what = "kick_storm under RF_KICK_INJECT" },
		[F_PF] = { .name = "page_fault", .measure = platform_fault, .in_library = true, .what = "rf_switch: guest #PF round trip" },
		[F_REMAP] = { .name = "remap", .measure = remap, .in_library = true,
		              .what = "rf_as_map over a page the guest read, then its next read sees the new page" },
		[F_UNMAP1] = { .name = "unmap_1", .measure = unmap1, .in_library = true,
		               .what = "rf_as_unmap of 1 used page, space running on another vCPU" },
		[F_UNMAP64] = { .name = "unmap_64", .measure = unmap64, .in_library = true, .what = "the same, 64 pages" },
		[F_UNMAP512] = { .name = "unmap_512", .measure = unmap512, .in_library = true, .what = "the same, 512 pages" },
		[F_PROTO] = { .name = "proto_switch", .proto = BP_CHANNEL,
		              .what = "rfc_switch: client -> server -> guest SYSCALL -> server -> client, by the switch channel" },
		[F_PROTO_SOCKET] = { .name = "proto_switch_socket", .proto = BP_SOCKET,
		                     .what = "the same by the socket (a client without the channel)" },
		[F_PROTO_SLEEP] = { .name = "proto_switch_sleep", .proto = BP_SLEEP,
		                    .what = "the same by the socket, neither side waiting awake for the other (no spin)" },
		[F_RELAY] = { .name = "relay_switch", .proto = BP_RELAY,
		              .what = "socket_pingpong's frames with an rf_switch by the answering thread between" },
		[F_CAPI] = { .name = "capi_switch", .proto = BP_CAPI, .what = "the same guest through rf_switch" },
		[F_PINGPONG] = { .name = "socket_pingpong", .proto = BP_PINGPONG,
		                 .what = "frames of the same sizes echoed over a socketpair" },
		[F_PTRACE] = { .name = "ptrace_sysemu", .measure = floor_ptrace, .in_library = false, .what = "PTRACE_SYSEMU + GETREGS + SETREGS" },
		[F_NATIVE] = { .name = "native_syscall", .measure = floor_native, .in_library = false, .what = "raw syscall(SYS_getppid) on the host" },
	};
	if (only && select_figures(f, only) < 0) {
		bench_teardown(&b);
		return 2;
	}
	b.clock_ns = clock_cost();
	for (int k = 0; k < 4; k++) {
		struct kick_split *s = &b.split[k];
		s->cap = 4 * iterations;   /* the first ones of every round, if a sample batches more */
		s->to_exit = calloc(s->cap, sizeof *s->to_exit);
		s->to_report = calloc(s->cap, sizeof *s->to_report);
		if (!s->to_exit || !s->to_report)
			s->cap = 0;
	}
	r = measure_all(&b, f, iterations);
	if (r < 0)
		fprintf(stderr, "ringfence bench: %s\n", strerror(-r));
	else if (json)
		print_json(&b, f);
	else
		print_table(&b, f, iterations);
	for (int i = 0; i < F_COUNT; i++)
		free(f[i].ns);
	for (int k = 0; k < 4; k++) {
		free(b.split[k].to_exit);
		free(b.split[k].to_report);
	}
	bench_teardown(&b);
	return (only ? 0 : bench_programs(&programs, json)) | (r != 0);
}
