/* SPDX-License-Identifier: MIT */
/* Parses a reproducer's code bytes and registers from the environment into a one-snippet program. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"

static const char *const reg_names[20] = {
	"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
	"r12", "r13", "r14", "r15", "rip", "rflags", "fs_base", "gs_base",
};

static void parse_regs(const char *s, struct rf_regs *r)
{
	uint64_t *g = &r->rax;
	while (s && *s) {
		s += strspn(s, " ,");
		size_t len = strcspn(s, "=");
		if (!s[len])
			break;
		for (unsigned i = 0; i < 20; i++)
			if (strlen(reg_names[i]) == len && !strncmp(s, reg_names[i], len))
				g[i] = strtoull(s + len + 1, NULL, 0);
		s += len + 1;
		s += strcspn(s, " ,");
	}
}

bool replay_from_env(struct program *p, struct assembled *a)
{
	const char *code = getenv("GUESTFUZZ_CODE");
	if (!code)
		return false;
	memset(p, 0, sizeof *p);
	memset(a, 0, sizeof *a);
	a->code.va = GF_CODE_VA;
	char *end;
	for (const char *s = code; *s;) {
		unsigned long v = strtoul(s, &end, 16);
		if (end == s) {
			s++;
			continue;
		}
		x86_u8(&a->code, (uint8_t)v);
		s = end;
	}
	p->n = 1;                                /* one snippet: a fault anywhere ends the program */
	p->ch[0].kind = 0xff;                    /* not a menu kind: named "code" in reports */
	a->start[1] = a->code.n;
	program_default_regs(&p->regs);
	parse_regs(getenv("GUESTFUZZ_REGS"), &p->regs);
	return true;
}
