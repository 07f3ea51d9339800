/* SPDX-License-Identifier: MIT */
/* The isolation checker: a fixed program that a fresh context runs to read the state it was given
 * (selectors, MXCSR, x87 control word, RFLAGS, FS/GS base, xmm0/ymm0), compared field by field with
 * the same program on a brand-new platform. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "driver.h"

enum { S_DS, S_ES, S_FS, S_GS, S_SS, S_RFLAGS, S_MXCSR, S_FCW, S_XMM0, S_YMM0H, S_FSBASE, S_GSBASE };
static const char *const slot_name[12] = {
	"DS selector", "ES selector", "FS selector", "GS selector", "SS selector", "RFLAGS (pushf)",
	"MXCSR (stmxcsr)", "x87 control word (fnstcw)", "xmm0 low quadword", "ymm0 upper half, low quadword",
	"FS base (rdfsbase)", "GS base (rdgsbase)",
};
/* The register each slot's value stays in at the first syscall (-1: none). */
static const int slot_reg[12] = { R8, R9, R10, R12, R13, RBX, RSI, RDI, R14, R15, -1, -1 };
#define MARK 0xc4ec

static void store(struct x86 *a, unsigned reg, unsigned slot)  /* mov %reg, 8*slot(%rbp) */
{
	x86_u8(a, (uint8_t)(0x48 | ((reg >> 3) << 2)));
	x86_u8(a, 0x89);
	x86_u8(a, (uint8_t)(0x45 | ((reg & 7) << 3)));
	x86_u8(a, (uint8_t)(8 * slot));
}

void checker_install(unsigned char *host)
{
	static struct x86 a;
	memset(&a, 0, sizeof a);
	a.va = GF_CHECK_VA;
	x86_mov_imm(&a, RBP, GF_CHECK_DATA);
	static const unsigned sr[5] = { SR_DS, SR_ES, SR_FS, SR_GS, SR_SS };
	for (unsigned i = 0; i < 5; i++) {
		x86_mov_from_sreg(&a, (unsigned)slot_reg[i], sr[i]);
		store(&a, (unsigned)slot_reg[i], i);
	}
	X86(&a, 0x9c, 0x5b);                          /* pushfq; pop %rbx */
	store(&a, RBX, S_RFLAGS);
	X86(&a, 0x0f, 0xae, 0x5d, 8 * S_MXCSR);       /* stmxcsr slot(%rbp) */
	X86(&a, 0x8b, 0x75, 8 * S_MXCSR);             /* mov slot(%rbp), %esi */
	X86(&a, 0xd9, 0x7d, 8 * S_FCW);               /* fnstcw slot(%rbp) */
	X86(&a, 0x0f, 0xb7, 0x7d, 8 * S_FCW);         /* movzwl slot(%rbp), %edi */
	X86(&a, 0x66, 0x49, 0x0f, 0x7e, 0xc6);        /* movq %xmm0, %r14 */
	store(&a, R14, S_XMM0);
	X86(&a, 0xc4, 0xe3, 0x7d, 0x19, 0xc1, 0x01);  /* vextractf128 $1, %ymm0, %xmm1 */
	X86(&a, 0x66, 0x49, 0x0f, 0x7e, 0xcf);        /* movq %xmm1, %r15 */
	store(&a, R15, S_YMM0H);
	X86(&a, 0xb8, MARK & 0xff, MARK >> 8, 0, 0);  /* mov $MARK, %eax */
	X86(&a, 0x0f, 0x05);
	X86(&a, 0xf3, 0x48, 0x0f, 0xae, 0xc2);        /* rdfsbase %rdx */
	store(&a, RDX, S_FSBASE);
	X86(&a, 0xf3, 0x48, 0x0f, 0xae, 0xcb);        /* rdgsbase %rbx */
	store(&a, RBX, S_GSBASE);
	X86(&a, 0x0f, 0x05, 0x0f, 0x0b);
	memcpy(host + (GF_CHECK_VA - GF_CODE_VA), a.b, a.n);
}

static void read_fpu(const uint8_t *img, size_t size, struct check_result *r)
{
	uint64_t bv;
	memcpy(&bv, img + 512, 8);
	memcpy(&r->mxcsr, img + 24, 4);
	if (bv & 1) {
		memcpy(&r->fcw, img, 2);
		memcpy(&r->fsw, img + 2, 2);
		r->ftw = img[4];
	} else {
		r->fcw = 0x37f;                       /* x87 in its initial state */
	}
	if (bv & 2)
		memcpy(r->xmm, img + 160, 256);
	if ((bv & 4) && size >= 576 + 256)
		memcpy(r->ymmh, img + 576, 256);
}

void checker_run(struct gf_env *e, struct check_result *r, struct findings *f)
{
	memset(r, 0, sizeof *r);
	rf_context *c;
	if (rf_context_create(e->p, &c) < 0) {
		findings_add(f, INV_RC, "checker: rf_context_create failed", "%s", rf_last_error());
		return;
	}
	uint64_t *slots = (uint64_t *)(e->host + (2u << 20) + (GF_CHECK_DATA - GF_DATA_VA));
	memset(slots, 0, 12 * 8);
	struct rf_regs *g = rf_context_regs(c);
	g->rip = GF_CHECK_VA;
	g->rsp = GF_STACK_TOP;
	struct rf_event ev;
	char norm[80], key[FINDING_KEY];   /* short enough to fit in a key with its prefix */
	for (int stop = 1; stop <= 2; stop++) {
		memset(&ev, 0, sizeof ev);
		watchdog_arm(e->wd, c);
		int rc = rf_switch(c, e->as, &ev);
		watchdog_disarm(e->wd);
		if (stop == 1) {
			r->rc1 = rc, r->type1 = ev.type, r->vector1 = ev.vector;
			r->rflags = g->rflags;
		} else {
			r->rc2 = rc, r->type2 = ev.type, r->vector2 = ev.vector;
			r->fs_base = g->fs_base;
			r->gs_base = g->gs_base;
		}
		if (rc) {
			findings_normalise(norm, sizeof norm, rf_last_error());
			snprintf(key, sizeof key, "checker: rf_switch returned %d: %s", rc, norm);
			findings_add(f, INV_RC, key, "at stop %d: %s", stop, rf_last_error());
			break;
		}
		if (ev.type != RF_EVENT_SYSCALL)
			break;
		if (stop == 1) {
			const uint64_t *gpr = &g->rax;
			static const int idx[16] = { 0, 2, 3, 1, 7, 6, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15 };
			for (unsigned i = 0; i < 10; i++) {
				uint64_t got = gpr[idx[slot_reg[i]]];   /* x86 numbering to rf_regs order */
				if (got != slots[i]) {
					snprintf(key, sizeof key, "checker: the register holding the %s differs from what it stored",
					         slot_name[i]);
					findings_add(f, INV_CHECKER, key, "register 0x%llx, stored 0x%llx",
					             (unsigned long long)got, (unsigned long long)slots[i]);
				}
			}
			if (g->rax != MARK || g->rbp != GF_CHECK_DATA)
				findings_add(f, INV_CHECKER, "checker: rax or rbp lost at the syscall",
				             "rax 0x%llx rbp 0x%llx", (unsigned long long)g->rax, (unsigned long long)g->rbp);
			if ((g->rflags & ~0x10000ull) != (slots[S_RFLAGS] & ~0x10000ull))
				findings_add(f, INV_CHECKER, "checker: reported RFLAGS differ from what pushf read",
				             "reported 0x%llx, pushf 0x%llx", (unsigned long long)g->rflags,
				             (unsigned long long)slots[S_RFLAGS]);
		} else {
			if (g->rdx != slots[S_FSBASE] || g->rbx != slots[S_GSBASE] || g->fs_base != slots[S_FSBASE] ||
			    g->gs_base != slots[S_GSBASE])
				findings_add(f, INV_CHECKER, "checker: FS/GS base in registers differ from rdfsbase/rdgsbase",
				             "rdx 0x%llx rbx 0x%llx fs_base 0x%llx gs_base 0x%llx, stored 0x%llx 0x%llx",
				             (unsigned long long)g->rdx, (unsigned long long)g->rbx,
				             (unsigned long long)g->fs_base, (unsigned long long)g->gs_base,
				             (unsigned long long)slots[S_FSBASE], (unsigned long long)slots[S_GSBASE]);
		}
	}
	memcpy(r->slot, slots, sizeof r->slot);
	const uint8_t *img = rf_context_fpu(c);
	if (img)
		read_fpu(img, e->fpu_size, r);
	else
		findings_add(f, INV_RC, "checker: rf_context_fpu failed", "%s", rf_last_error());
	if (rf_context_destroy(c) < 0)
		findings_add(f, INV_RC, "checker: rf_context_destroy failed", "%s", rf_last_error());
}

#define SAME(field, name)                                                                          \
	do {                                                                                       \
		if (base->field != now->field)                                                     \
			findings_add(f, INV_ISOLATION, "fresh context: " name " differs from a new platform's", \
			             "got 0x%llx, baseline 0x%llx", (unsigned long long)now->field,         \
			             (unsigned long long)base->field);                                 \
	} while (0)

void checker_compare(const struct check_result *base, const struct check_result *now, struct findings *f)
{
	SAME(rc1, "rf_switch result (stop 1)");
	SAME(type1, "event type (stop 1)");
	SAME(vector1, "event vector (stop 1)");
	SAME(rc2, "rf_switch result (stop 2)");
	SAME(type2, "event type (stop 2)");
	SAME(vector2, "event vector (stop 2)");
	char key[FINDING_KEY];
	for (unsigned i = 0; i < 12; i++)
		if (base->slot[i] != now->slot[i]) {
			snprintf(key, sizeof key, "fresh context: %s differs from a new platform's", slot_name[i]);
			findings_add(f, INV_ISOLATION, key, "got 0x%llx, baseline 0x%llx",
			             (unsigned long long)now->slot[i], (unsigned long long)base->slot[i]);
		}
	SAME(rflags, "reported RFLAGS");
	SAME(fs_base, "reported FS base");
	SAME(gs_base, "reported GS base");
	SAME(fcw, "x87 control word (rf_context_fpu)");
	SAME(fsw, "x87 status word (rf_context_fpu)");
	SAME(ftw, "x87 tag word (rf_context_fpu)");
	SAME(mxcsr, "MXCSR (rf_context_fpu)");
	for (unsigned i = 0; i < 16; i++) {
		if (memcmp(base->xmm + 16 * i, now->xmm + 16 * i, 16)) {
			snprintf(key, sizeof key, "fresh context: xmm%u (rf_context_fpu) differs from a new platform's", i);
			findings_add(f, INV_ISOLATION, key, "register xmm%u", i);
		}
		if (memcmp(base->ymmh + 16 * i, now->ymmh + 16 * i, 16)) {
			snprintf(key, sizeof key, "fresh context: ymm%u upper half (rf_context_fpu) differs from a new platform's", i);
			findings_add(f, INV_ISOLATION, key, "register ymm%u", i);
		}
	}
}
