/* SPDX-License-Identifier: MIT */
/* Invariant violations: what one program broke (findings), and every distinct class seen in a run
 * (the registry), so each class is reported and shrunk once however often it recurs. */
#ifndef GUESTFUZZ_FINDINGS_H
#define GUESTFUZZ_FINDINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum inv {
	INV_RC,         /* rf_switch returned 0, or -EINVAL for a state the caller made invalid */
	INV_RFLAGS,     /* reported RFLAGS hold only bits user code can own */
	INV_EVENT,      /* event fields agree with each other and with the registers */
	INV_KICK,       /* every watchdog kick is reported as RF_EVENT_INTERRUPTED, none without one */
	INV_ISOLATION,  /* a fresh context sees what it sees on a brand-new platform */
	INV_CHECKER,    /* a fresh context's registers hold what the checker computed */
	INV_COUNT
};

#define FINDING_KEY 192
#define FINDING_DETAIL 256
#define FINDINGS_MAX 24

struct finding {
	enum inv inv;
	char key[FINDING_KEY];        /* the class: no addresses or values that vary between runs */
	char detail[FINDING_DETAIL];  /* this occurrence, with its values */
};

struct findings {
	unsigned n;
	struct finding f[FINDINGS_MAX];
};

__attribute__((format(printf, 4, 5)))
void findings_add(struct findings *f, enum inv inv, const char *key, const char *fmt, ...);
bool findings_has(const struct findings *f, const char *key);
/* Copies s into dst with every number replaced by '#': error sentences become class keys. */
void findings_normalise(char *dst, size_t n, const char *s);

/* The run's registry. Returns true the first time a class is seen. */
bool registry_note(const struct finding *f, uint64_t seed);
uint64_t registry_count(enum inv inv);
unsigned registry_classes(enum inv inv);
void registry_print(void);

#endif
