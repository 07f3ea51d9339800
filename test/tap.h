/* SPDX-License-Identifier: MIT */
/* Minimal TAP output for the test programs: ok/not ok lines, a plan at the end, skips that turn
 * into failures when RINGFENCE_REQUIRE_KVM=1 (CI on machines that must have KVM). */
#ifndef RINGFENCE_TAP_H
#define RINGFENCE_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_count, tap_failed;

__attribute__((format(printf, 4, 5))) static inline int tap_ok(int pass, const char *file, int line,
                                                               const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%sok %d - ", pass ? "" : "not ", ++tap_count);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	if (!pass) {
		printf("#   failed at %s:%d\n", file, line);
		tap_failed++;
	}
	fflush(stdout);
	return pass;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
/* Equality with both values printed on failure. */
#define ok_eq(a, b, name)                                                                         \
	do {                                                                                      \
		unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);      \
		if (!ok(a_ == b_, "%s", name))                                                    \
			printf("#   got 0x%llx, want 0x%llx\n", a_, b_);                             \
	} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed ? 1 : 0;
}

static inline void tap_skip_all(const char *why)
{
	const char *req = getenv("RINGFENCE_REQUIRE_KVM");
	if (req && req[0] == '1') {
		printf("Bail out! KVM is required here (RINGFENCE_REQUIRE_KVM=1) but: %s\n", why);
		exit(1);
	}
	printf("1..0 # SKIP %s\n", why);
	exit(0);
}

#endif
