/* SPDX-License-Identifier: MIT */
/* Programs from seeds: snippet choices, the caller's register state, the data page's garbage, and
 * the assembly of choices into code whose snippet boundaries the driver knows. */
#include <string.h>

#include "program.h"

void program_default_regs(struct rf_regs *r)
{
	memset(r, 0, sizeof *r);
	r->rip = GF_CODE_VA;
	r->rsp = GF_STACK_TOP;
	r->rflags = 0x202;
}

/* A base or pointer a caller might set: mostly sane, now and then what hardware refuses. */
static uint64_t odd_value(struct rng *r)
{
	uint64_t x = rng_next(r);
	switch (rng_below(r, 5)) {
	case 0: return RF_USER_END | (x & 0xffffffffffull);   /* non-canonical */
	case 1: return x;                                     /* anything */
	case 2: return 0xffffffffc0000000ull + (x & 0x3ff8);  /* the shim */
	case 3: return 0x7ffffffffff0ull + (x & 0xf);         /* the top of the user half */
	default: return x & 0x7fffffffffffull;                /* canonical user */
	}
}

void program_generate(uint64_t seed, struct program *p)
{
	struct rng r = { seed };
	memset(p, 0, sizeof *p);
	p->seed = seed;
	p->n = 1 + rng_below(&r, 16) + (rng_one_in(&r, 4) ? rng_below(&r, GF_MAX_CHOICES - 16) : 0);
	for (unsigned i = 0; i < p->n; i++)
		menu_draw(&r, &p->ch[i]);

	struct rf_regs *g = &p->regs;
	program_default_regs(g);
	uint64_t *gpr = &g->rax;                              /* rax..r15, in struct order */
	for (unsigned i = 0; i < 16; i++)
		if (i != 7 && rng_one_in(&r, 2))                 /* index 7 is rsp */
			gpr[i] = rng_next(&r);
	if (rng_one_in(&r, 16))
		g->rsp = odd_value(&r);
	if (rng_one_in(&r, 32))
		g->rip = odd_value(&r);
	if (rng_one_in(&r, 6))
		g->fs_base = rng_one_in(&r, 3) ? odd_value(&r) : rng_next(&r) & 0x7fffffffffffull;
	if (rng_one_in(&r, 6))
		g->gs_base = rng_one_in(&r, 3) ? odd_value(&r) : rng_next(&r) & 0x7fffffffffffull;
	if (rng_one_in(&r, 4))
		g->rflags = rng_one_in(&r, 2) ? rng_next(&r) : 0x202 | (rng_next(&r) & 0x3f7fd5);
}

void program_assemble(const struct program *p, struct assembled *out)
{
	memset(out, 0, sizeof *out);
	out->code.va = GF_CODE_VA;
	for (unsigned i = 0; i < p->n; i++) {
		out->start[i] = out->code.n;
		menu_emit(&out->code, &p->ch[i]);
	}
	out->start[p->n] = out->code.n;
}

void program_garbage(uint64_t seed, uint8_t *dst, size_t n, uint64_t xcr0)
{
	struct rng r = { seed ^ 0x6761726261676521ull };
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t x = rng_next(&r);
		memcpy(dst + i, &x, 8);
	}
	/* Every other 4 KiB image gets a header XRSTOR accepts, so garbage reaches the registers
	 * instead of only raising #GP: a valid MXCSR, components the guest has, standard form. */
	for (size_t off = 0; off + 4096 <= n; off += 8192) {
		uint32_t mxcsr = (uint32_t)rng_next(&r) & 0xffbf;
		uint64_t bv = rng_next(&r) & xcr0, zero = 0;
		memcpy(dst + off + 24, &mxcsr, 4);
		memcpy(dst + off + 512, &bv, 8);
		for (size_t h = 520; h < 576; h += 8)
			memcpy(dst + off + h, &zero, 8);
	}
}
