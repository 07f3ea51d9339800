/* SPDX-License-Identifier: MIT */
/* The bad-pointer guest program: one line per case, `case NAME CLASS RESULT`, so that the driver can
 * compare a native run with a sandboxed one. RESULT is `=VALUE`, `ok` (succeeded, value not
 * comparable) or an errno name. CLASS says how the two may differ:
 *   =  exactly the same result
 *   ~  a copy that runs into a bad page: the sandbox may fail with EFAULT, or return a short count
 *      (at most what Linux copied, or BAD_CROSS_GOOD bytes where Linux failed)
 * `badptr mem CAP` instead prints TAP for the --memory cap (sandbox only). */
#ifndef ESCAPE_BADPTR_H
#define ESCAPE_BADPTR_H

#include <stdint.h>

#include "guest.h"

struct bad {
	const char *name;
	void *p;
	unsigned flags;            /* BAD_* */
};
#define BAD_OUT_ONLY 1u        /* a valid address to read from (read-only data, code): only bad as output */
#define BAD_CROSS    2u        /* the first BAD_CROSS_GOOD bytes are fine, then PROT_NONE */
#define BAD_CROSS_GOOD 16

extern struct bad badptr_bad[];
extern unsigned badptr_nbad;
extern unsigned char *badptr_good;   /* 64 KiB of read-write memory, PROT_NONE after */
#define GOOD_SIZE 65536

void badptr_case(char cls, const char *name, long ret, int err);
void badptr_value(char cls, const char *name, long value);
/* A case for every bad pointer for which `usable` holds: fmt gets the pointer's name; usable and
 * call use `p`. */
#define FOR_BAD_WHERE(out, cls, fmt, usable, call)                                              \
	for (unsigned i_ = 0; i_ < badptr_nbad; i_++) {                                         \
		struct bad *b_ = &badptr_bad[i_];                                               \
		void *p = b_->p;                                                                \
		if ((!(out) && (b_->flags & BAD_OUT_ONLY)) || !(usable))                        \
			continue;                                                               \
		char n_[128];                                                                   \
		snprintf(n_, sizeof n_, fmt, b_->name);                                         \
		errno = 0;                                                                      \
		long r_ = (long)(call);                                                         \
		badptr_case((b_->flags & BAD_CROSS) ? '~' : (cls), n_, r_, errno);              \
	}
#define FOR_BAD(out, cls, fmt, call) FOR_BAD_WHERE(out, cls, fmt, 1, call)
#define CASE(cls, name, call)                                                                   \
	do {                                                                                    \
		errno = 0;                                                                      \
		long r_ = (long)(call);                                                         \
		badptr_case((cls), (name), r_, errno);                                          \
	} while (0)

void badptr_io(const char *tmp);
void badptr_files(const char *tmp);
void badptr_misc(void);
void badptr_memory(void);
int badptr_cap(uint64_t cap);

#endif
