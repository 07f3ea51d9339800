/* SPDX-License-Identifier: MIT */
/* guest_fuzz: random and crafted ring-3 programs and register states through the public API, with
 * invariants checked after every event and fresh contexts checked against a brand-new platform.
 * Environment: GUESTFUZZ_SEED (default fixed), GUESTFUZZ_PROGRAMS, GUESTFUZZ_CHECK_EVERY,
 * GUESTFUZZ_KICK_MS, GUESTFUZZ_MINIMIZE=0 (no shrinking), GUESTFUZZ_DUMP=file (first program's code),
 * GUESTFUZZ_TRACE=1 (every event), GUESTFUZZ_CODE/GUESTFUZZ_REGS (replay a shrunk reproducer, replay.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../tap.h"
#include "driver.h"
#include "replay.h"
#include "shrink.h"

#define DEFAULT_SEED     0x6775657374667a31ull
#define DEFAULT_PROGRAMS 24000   /* about 30 s here (kvm-pvm), normal and ASan builds alike */
#define DEFAULT_SECONDS  90     /* programs stop being started after this; 0: no cap */
#define HANG_S           60     /* after a kick: a switch still running then is a hang */

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);
	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static const char *argv0;
static const struct program *current;   /* for the hang report, read on the watchdog thread */

static void on_hang(void *arg)
{
	(void)arg;
	printf("not ok - the host hung: a switch did not come back %d s after a kick\n", HANG_S);
	if (current)
		shrink_print_program("hung", current, argv0);
	printf("Bail out! hang\n");
	fflush(stdout);
	_exit(1);
}

static void dump(const char *path, const struct assembled *a)
{
	FILE *f = fopen(path, "wb");
	if (f) {
		fwrite(a->code.b, 1, a->code.n, f);
		fclose(f);
	}
}

/* The first time a class is seen: what broke, the program to replay, and a shrunk version. */
static void report(struct shrinker *sh, const struct finding *x, const struct program *p)
{
	printf("# FAIL [%s]\n#   %s\n", x->key, x->detail);
	if (p) {
		shrink_print_program("found", p, argv0);
		shrink_minimise(sh, p, x);
	}
	fflush(stdout);
}

static void new_context(struct gf_env *e)
{
	if (rf_context_destroy(e->c) < 0 || rf_context_create(e->p, &e->c) < 0) {
		printf("Bail out! context: %s\n", rf_last_error());
		exit(1);
	}
}

int main(int argc, char **argv)
{
	(void)argc;
	argv0 = argv[0];
	uint64_t seed = env_u64("GUESTFUZZ_SEED", DEFAULT_SEED);
	uint64_t programs = env_u64("GUESTFUZZ_PROGRAMS", DEFAULT_PROGRAMS);
	/* A time cap as well: in the TCG test VM a program costs far more than on KVM directly. */
	uint64_t seconds = env_u64("GUESTFUZZ_SECONDS", DEFAULT_SECONDS);
	uint64_t every = env_u64("GUESTFUZZ_CHECK_EVERY", 50);
	unsigned kick_ms = (unsigned)env_u64("GUESTFUZZ_KICK_MS", 200);
	bool minimise = env_u64("GUESTFUZZ_MINIMIZE", 1) != 0;
	const char *dump_path = getenv("GUESTFUZZ_DUMP");
	if (every == 0 || every > SHRINK_WINDOW)
		every = SHRINK_WINDOW;
	printf("# GUESTFUZZ_SEED=0x%016llx GUESTFUZZ_PROGRAMS=%llu (check every %llu, kick after %u ms)\n",
	       (unsigned long long)seed, (unsigned long long)programs, (unsigned long long)every, kick_ms);

	static struct watchdog wd;
	if (watchdog_start(&wd, kick_ms, HANG_S, on_hang, NULL) < 0) {
		printf("Bail out! watchdog thread\n");
		return 1;
	}

	/* The baseline: the checker on a brand-new platform, before any fuzz program ran anywhere. */
	struct gf_env e;
	struct check_result base;
	struct findings bf = { 0 };
	fixture_open(&e, &wd);
	checker_run(&e, &base, &bf);
	ok(bf.n == 0 && base.rc1 == 0 && base.type1 == RF_EVENT_SYSCALL,
	   "baseline: the checker runs on a brand-new platform (stop 1: rc %d type %d; stop 2: type %d %s)",
	   base.rc1, base.type1, base.type2, base.type2 == RF_EVENT_SYSCALL ? "(rdfsbase works)" : "");
	for (unsigned i = 0; i < bf.n; i++)
		printf("#   %s: %s\n", bf.f[i].key, bf.f[i].detail);
	printf("# baseline: ds 0x%llx es 0x%llx fs 0x%llx gs 0x%llx ss 0x%llx rflags 0x%llx mxcsr 0x%llx fcw 0x%llx\n",
	       (unsigned long long)base.slot[0], (unsigned long long)base.slot[1], (unsigned long long)base.slot[2],
	       (unsigned long long)base.slot[3], (unsigned long long)base.slot[4], (unsigned long long)base.slot[5],
	       (unsigned long long)base.slot[6], (unsigned long long)base.slot[7]);
	if (fixture_close(&e) < 0)
		printf("# baseline fixture teardown: %s\n", rf_last_error());

	struct shrinker sh = { .base = &base, .wd = &wd, .enabled = minimise, .argv0 = argv0 };
	struct gf_stats st = { 0 };
	fixture_open(&e, &wd);
	e.trace = env_u64("GUESTFUZZ_TRACE", 0) != 0;
	static struct program prog;
	static struct assembled asmb;
	bool replay = replay_from_env(&prog, &asmb);
	if (replay) {
		programs = 1;
		sh.enabled = false;
	}
	uint64_t window[SHRINK_WINDOW];
	unsigned in_window = 0;
	uint64_t s = seed;
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t i = 0; i < programs; i++, s = rng_mix(s + 0x9e3779b97f4a7c15ull)) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (seconds && (uint64_t)(now.tv_sec - t0.tv_sec) >= seconds && in_window == 0) {
			printf("# time cap: stopped after %llu of %llu programs (GUESTFUZZ_SECONDS=%llu)\n",
			       (unsigned long long)i, (unsigned long long)programs, (unsigned long long)seconds);
			break;
		}
		if (!replay) {
			program_generate(s, &prog);
			program_assemble(&prog, &asmb);
		}
		if (i == 0 && dump_path)
			dump(dump_path, &asmb);
		if (i % 16 == 0)
			new_context(&e);
		current = &prog;
		struct findings f = { 0 };
		if (driver_run(&e, e.c, &prog, &asmb, &st, &f))
			new_context(&e);
		current = NULL;
		for (unsigned k = 0; k < f.n; k++)
			if (registry_note(&f.f[k], s))
				report(&sh, &f.f[k], &prog);
		window[in_window++] = s;

		if (in_window == every || i + 1 == programs) {
			struct check_result now;
			struct findings cf = { 0 };
			checker_run(&e, &now, &cf);
			checker_compare(&base, &now, &cf);
			st.checks++;
			for (unsigned k = 0; k < cf.n; k++)
				if (registry_note(&cf.f[k], window[0])) {
					printf("# FAIL [%s]\n#   %s\n#   after programs GUESTFUZZ_SEED=0x%016llx GUESTFUZZ_PROGRAMS=%u %s\n",
					       cf.f[k].key, cf.f[k].detail, (unsigned long long)window[0], in_window, argv0);
					shrink_culprit(&sh, window, in_window, &cf.f[k]);
				}
			in_window = 0;
		}
	}
	int closed = fixture_close(&e);
	watchdog_stop(&wd);

	static const char *const what[INV_COUNT] = {
		[INV_RC] = "rf_switch returned 0 at every event, or -EINVAL only for a caller's non-canonical FS/GS base",
		[INV_RFLAGS] = "reported RFLAGS held only user-ownable bits (0x254fd7|IF, bit 1 set)",
		[INV_EVENT] = "event fields were consistent (vector, error-code flag, access, rip)",
		[INV_KICK] = "every watchdog kick came back as RF_EVENT_INTERRUPTED, and none came without one",
		[INV_ISOLATION] = "fresh contexts saw exactly what they see on a brand-new platform",
		[INV_CHECKER] = "fresh contexts' registers held what the checker program computed",
	};
	for (unsigned v = 0; v < INV_COUNT; v++)
		ok(registry_count(v) == 0, "%s (%llu violations in %u classes)", what[v],
		   (unsigned long long)registry_count(v), registry_classes(v));
	ok(closed == 0, "fuzz fixture torn down cleanly");
	registry_print();
	printf("# summary: %llu programs, %llu switches, %llu events (SYSCALL %llu, PAGE_FAULT %llu, EXCEPTION %llu, "
	       "INTERRUPTED %llu), %llu kicks, %llu isolation checks, refused -EINVAL: fs %llu gs %llu\n",
	       (unsigned long long)st.programs, (unsigned long long)st.switches, (unsigned long long)st.events,
	       (unsigned long long)st.by_type[1], (unsigned long long)st.by_type[2], (unsigned long long)st.by_type[3],
	       (unsigned long long)st.by_type[4], (unsigned long long)st.kicks, (unsigned long long)st.checks,
	       (unsigned long long)st.refused_fs, (unsigned long long)st.refused_gs);
	printf("# exceptions by vector:");
	for (unsigned v = 0; v < 32; v++)
		if (st.by_vector[v])
			printf(" %s %llu", rf_vector_name(v), (unsigned long long)st.by_vector[v]);
	printf("\n");
	return tap_done();
}
