/* SPDX-License-Identifier: MIT */
/* Running fuzz programs and the isolation checker through the public API, checking invariants at
 * every event; and the fixture (platform, memory, address space) they run in. */
#ifndef GUESTFUZZ_DRIVER_H
#define GUESTFUZZ_DRIVER_H

#include "findings.h"
#include "program.h"
#include "ringfence.h"
#include "watchdog.h"

#define GF_MAX_EVENTS 50

struct gf_env {
	rf_platform *p;
	rf_memory *mem;
	rf_as *as;
	rf_context *c;                /* the fixture's context, reused by programs */
	unsigned char *host;          /* the memory's host mapping */
	uint64_t xcr0;
	size_t fpu_size;
	size_t loaded;                /* bytes of the last program, to refill with GF_FILL */
	struct watchdog *wd;
	bool trace;                   /* GUESTFUZZ_TRACE=1: one line per event */
};

struct gf_stats {
	uint64_t programs, switches, events, by_type[5], by_vector[32];
	uint64_t refused_fs, refused_gs, kicks, checks;
};

/* fixture.c: kvmtest.h's fixture (skips without KVM), code area filled, checker installed. */
void fixture_open(struct gf_env *e, struct watchdog *wd);
int fixture_close(struct gf_env *e);

/* driver.c. True if c should be replaced (a kick's fate after a failed switch is unknown). */
bool driver_run(struct gf_env *e, rf_context *c, const struct program *p, const struct assembled *a,
                struct gf_stats *s, struct findings *f);

/* checker.c: what a fresh context sees. */
struct check_result {
	int rc1, rc2;
	int type1, type2;
	uint8_t vector1, vector2;
	uint64_t slot[12];            /* ds es fs gs ss rflags mxcsr fcw xmm0 ymm0hi fsbase gsbase */
	uint64_t rflags, fs_base, gs_base;   /* from the event's registers */
	uint16_t fcw, fsw, ftw;       /* from rf_context_fpu */
	uint32_t mxcsr;
	uint8_t xmm[256], ymmh[256];
};
void checker_install(unsigned char *host);
void checker_run(struct gf_env *e, struct check_result *r, struct findings *f);
void checker_compare(const struct check_result *base, const struct check_result *now, struct findings *f);

#endif
