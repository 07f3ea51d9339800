/* SPDX-License-Identifier: MIT */
/* A fuzz program: a list of snippet choices drawn from a seed, the register state the caller sets,
 * and the garbage on its data page; assembled into ring-3 machine code at a fixed address. */
#ifndef GUESTFUZZ_PROGRAM_H
#define GUESTFUZZ_PROGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "ringfence.h"
#include "rng.h"
#include "x86.h"

/* Guest layout: the kvmtest.h fixture's areas (code RX, data RW, stack RW). */
#define GF_CODE_VA    0x400000ull
#define GF_CODE_SIZE  (1ull << 20)
#define GF_CHECK_VA   (GF_CODE_VA + 0x80000)   /* the isolation checker's code */
#define GF_DATA_VA    0x10000000ull
#define GF_GARBAGE    0x10000u                 /* bytes of seeded garbage at the data page's start */
#define GF_CHECK_DATA (GF_DATA_VA + 0x100000)  /* where the checker stores what it read */
#define GF_STACK_TOP  (0x7ffff0000000ull + (2ull << 20))
#define GF_SHIM_VA    0xffffffffc0000000ull    /* the supervisor half, where the shim lives */
#define GF_FILL       0xf4                     /* hlt: #GP in ring 3 at any alignment */

#define GF_MAX_CHOICES 32

struct choice {
	uint8_t kind;
	uint8_t sub;
	uint64_t a, b, c, d;
};

struct program {
	uint64_t seed;
	unsigned n;
	struct choice ch[GF_MAX_CHOICES];
	struct rf_regs regs;          /* what the caller sets before the first switch */
};

struct assembled {
	struct x86 code;
	size_t start[GF_MAX_CHOICES + 1];  /* byte offset of each snippet; start[n] is the end */
};

void program_generate(uint64_t seed, struct program *p);
void program_assemble(const struct program *p, struct assembled *out);
/* The garbage for the data page, a function of the seed alone. */
void program_garbage(uint64_t seed, uint8_t *dst, size_t n, uint64_t xcr0);
/* Default register state: the baseline minimisation steps back to. */
void program_default_regs(struct rf_regs *r);
const char *choice_name(const struct choice *c);

/* menu.c */
void menu_draw(struct rng *r, struct choice *c);
void menu_emit(struct x86 *a, const struct choice *c);
unsigned menu_kinds(void);

#endif
