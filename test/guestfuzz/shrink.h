/* SPDX-License-Identifier: MIT */
/* Replay and shrinking: each program that breaks an invariant is re-run alone on a brand-new
 * platform, then cut down snippet by snippet and register by register while it still fails. */
#ifndef GUESTFUZZ_SHRINK_H
#define GUESTFUZZ_SHRINK_H

#include "driver.h"

#define SHRINK_WINDOW 256      /* programs between two isolation checks, at most */

struct shrinker {
	const struct check_result *base;
	struct watchdog *wd;
	bool enabled;
	const char *argv0;
	unsigned shrunk;           /* classes shrunk so far; shrinking stops at a budget */
};

void shrink_print_program(const char *label, const struct program *p, const char *argv0);
void shrink_minimise(struct shrinker *sh, const struct program *p, const struct finding *x);
/* An isolation class seen after several programs: find one that shows it alone, and shrink it. */
void shrink_culprit(struct shrinker *sh, const uint64_t *seeds, unsigned n, const struct finding *x);

#endif
