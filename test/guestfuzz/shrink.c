/* SPDX-License-Identifier: MIT */
/* Replays a program alone on a brand-new platform (followed by the isolation checker) and shrinks
 * it while the same failure class still shows, so reports carry a minimal reproducer. */
#include <stdio.h>
#include <string.h>

#include "shrink.h"

#define SHRINK_BUDGET 32       /* classes shrunk per run: each costs up to ~60 platform creations */

static const char *const reg_names[20] = {
	"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
	"r12", "r13", "r14", "r15", "rip", "rflags", "fs_base", "gs_base",
};

static void print_body(const struct program *p)
{
	struct assembled a;
	program_assemble(p, &a);
	printf("#     snippets (%u):", p->n);
	for (unsigned i = 0; i < p->n; i++)
		printf(" %s", choice_name(&p->ch[i]));
	printf("\n#     code (%zu bytes at 0x%llx):", a.code.n, (unsigned long long)GF_CODE_VA);
	for (size_t i = 0; i < a.code.n; i++)
		printf("%s%02x", i % 32 ? " " : "\n#       ", a.code.b[i]);
	struct rf_regs d;
	program_default_regs(&d);
	const uint64_t *g = &p->regs.rax, *dg = &d.rax;
	printf("\n#     registers (default: 0, rip 0x%llx, rsp 0x%llx, rflags 0x202):",
	       (unsigned long long)GF_CODE_VA, (unsigned long long)GF_STACK_TOP);
	for (unsigned i = 0; i < 20; i++)
		if (g[i] != dg[i])
			printf(" %s=0x%llx", reg_names[i], (unsigned long long)g[i]);
	printf("\n");
}

/* The shrunk program as one command (replay.h). */
static void print_replay(const struct program *p, const char *argv0)
{
	static struct assembled a;
	program_assemble(p, &a);
	printf("#     replay: GUESTFUZZ_TRACE=1 GUESTFUZZ_CODE=\"");
	for (size_t i = 0; i < a.code.n; i++)
		printf("%s%02x", i ? " " : "", a.code.b[i]);
	printf("\" GUESTFUZZ_REGS=\"");
	struct rf_regs d;
	program_default_regs(&d);
	const uint64_t *g = &p->regs.rax, *dg = &d.rax;
	for (unsigned i = 0, k = 0; i < 20; i++)
		if (g[i] != dg[i])
			printf("%s%s=0x%llx", k++ ? " " : "", reg_names[i], (unsigned long long)g[i]);
	printf("\" %s\n", argv0);
}

void shrink_print_program(const char *label, const struct program *p, const char *argv0)
{
	printf("#   %s: GUESTFUZZ_SEED=0x%016llx GUESTFUZZ_PROGRAMS=1 %s\n", label, (unsigned long long)p->seed,
	       argv0);
	print_body(p);
}

/* One program, then the checker, on a platform of their own: does class `key` show? */
static bool reproduces(struct shrinker *sh, const struct program *p, const char *key)
{
	struct gf_env e;
	struct gf_stats st = { 0 };
	struct findings f = { 0 };
	static struct assembled a;
	fixture_open(&e, sh->wd);
	program_assemble(p, &a);
	driver_run(&e, e.c, p, &a, &st, &f);
	struct check_result now;
	checker_run(&e, &now, &f);
	checker_compare(sh->base, &now, &f);
	fixture_close(&e);
	return findings_has(&f, key);
}

void shrink_minimise(struct shrinker *sh, const struct program *p, const struct finding *x)
{
	if (!sh->enabled || sh->shrunk >= SHRINK_BUDGET)
		return;
	if (!reproduces(sh, p, x->key)) {
		printf("#   (does not reproduce alone on a new platform: it needs earlier programs)\n");
		return;
	}
	sh->shrunk++;
	static struct program m, t;
	m = *p;
	for (int pass = 0; pass < 2; pass++) {
		for (int i = (int)m.n - 1; i >= 0 && m.n > 1; i--) {
			t = m;
			memmove(&t.ch[i], &t.ch[i + 1], (t.n - (unsigned)i - 1) * sizeof t.ch[0]);
			t.n--;
			if (reproduces(sh, &t, x->key))
				m = t;
		}
		struct rf_regs d;
		program_default_regs(&d);
		for (unsigned i = 0; i < 20; i++) {
			t = m;
			uint64_t *g = &t.regs.rax;
			if (g[i] == (&d.rax)[i])
				continue;
			g[i] = (&d.rax)[i];
			if (reproduces(sh, &t, x->key))
				m = t;
		}
	}
	printf("#   shrunk (%u of %u snippets; bytes and registers, not a seed):\n", m.n, p->n);
	print_body(&m);
	print_replay(&m, sh->argv0);
}

void shrink_culprit(struct shrinker *sh, const uint64_t *seeds, unsigned n, const struct finding *x)
{
	if (!sh->enabled || sh->shrunk >= SHRINK_BUDGET)
		return;
	static struct program p;
	for (unsigned i = 0; i < n; i++) {
		program_generate(seeds[i], &p);
		if (reproduces(sh, &p, x->key)) {
			shrink_print_program("shown alone by", &p, sh->argv0);
			shrink_minimise(sh, &p, x);
			return;
		}
	}
	printf("#   (no single program of the %u shows it alone)\n", n);
}
