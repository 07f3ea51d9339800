/* SPDX-License-Identifier: MIT */
/* A context's state is exactly its own: nothing one context leaves in a vCPU (selectors, MXCSR, x87
 * control word, flags) shows in another; states hardware would refuse are refused or reported as
 * the fault; reported RFLAGS hold only bits user code can own. */
#include <string.h>

#include "kvmtest.h"

GUEST(iso_dirty);
GUEST(iso_read);
GUEST(iso_iret_flags);
GUEST(iso_popf_flags);
GUEST(iso_wrfsbase);

#define RFLAGS_NOT_USER 0xffffffffffc2b028ull   /* IOPL, VM, VIF, VIP, reserved; bit 1 must be set */

struct seen {
	uint64_t ds, es, fs, gs, ss, mxcsr, fcw, rflags;
};

/* Runs iso_read in context c (a fresh one unless the caller kept it) and returns what it saw. */
static bool read_state(struct kt *t, rf_context *c, struct seen *s)
{
	memcpy(t->host, iso_read_start, (size_t)(iso_read_end - iso_read_start));
	struct rf_regs *r = rf_context_regs(c);
	memset(r, 0, sizeof *r);
	r->rip = KT_CODE_VA;
	r->rsp = KT_STACK_TOP;
	r->rflags = 0x202;
	struct rf_event ev;
	int rc = rf_switch(c, t->as, &ev);
	if (!ok(rc == 0 && ev.type == RF_EVENT_SYSCALL, "state reader ran to its syscall (%d, type %d)", rc, ev.type))
		return false;
	*s = (struct seen){ r->rax, r->rbx, r->r9, r->rdx, r->r10, r->rsi, r->rdi, r->r8 };
	return true;
}

static bool same(const struct seen *a, const struct seen *b, const char *what)
{
	bool eq = !memcmp(a, b, sizeof *a);
	if (!eq)
		printf("#   %s: ds %llx/%llx es %llx/%llx fs %llx/%llx gs %llx/%llx ss %llx/%llx mxcsr %llx/%llx "
		       "fcw %llx/%llx rflags %llx/%llx\n", what, (unsigned long long)a->ds, (unsigned long long)b->ds,
		       (unsigned long long)a->es, (unsigned long long)b->es, (unsigned long long)a->fs,
		       (unsigned long long)b->fs, (unsigned long long)a->gs, (unsigned long long)b->gs,
		       (unsigned long long)a->ss, (unsigned long long)b->ss, (unsigned long long)a->mxcsr,
		       (unsigned long long)b->mxcsr, (unsigned long long)a->fcw, (unsigned long long)b->fcw,
		       (unsigned long long)a->rflags, (unsigned long long)b->rflags);
	return eq;
}

/* Runs iso_dirty with selector sel; loads the CPU refuses are skipped. */
static bool dirty(struct kt *t, uint16_t sel)
{
	KT_LOAD(t, iso_dirty);
	struct rf_regs *r = rf_context_regs(t->c);
	r->rdi = sel;
	struct rf_event ev;
	for (unsigned i = 0; i < 5; i++) {
		if (!kt_switch(t, &ev))
			return false;
		if (ev.type != RF_EVENT_EXCEPTION || ev.vector != RF_VEC_GP || ev.rip >= KT_CODE_VA + 8)
			break;
		r->rip = ev.rip + 2;
	}
	return ok(ev.type == RF_EVENT_EXCEPTION && ev.vector == RF_VEC_UD, "dirtying program with selector 0x%x ran",
	          sel);
}

/* regression fresh_context_inherits_nothing: selectors (both hosts) and MXCSR (the TCG VM) used to
 * leak from the context that ran before on the same vCPU. 0x2b is kvm-pvm's own user data
 * selector (it shows ring 3 the host's), 0x18 an RPL-0 alias of ours, 0x23 our user code. */
static void test_fresh_context(struct kt *t)
{
	static const uint16_t sels[] = { 0x2b, 0x18, 0x23, 0 };
	struct seen base, dirty_self, fresh;
	if (!read_state(t, t->c, &base))
		return;
	for (unsigned i = 0; i < sizeof sels / sizeof sels[0]; i++) {
		if (!dirty(t, sels[i]))
			return;
		rf_context *fresh_c;
		if (!ok(rf_context_create(t->p, &fresh_c) == 0, "a fresh context"))
			return;
		if (read_state(t, fresh_c, &fresh))
			ok(same(&fresh, &base, "fresh vs first"), "after selector 0x%x: a fresh context sees what the first "
			   "one saw before anything was dirtied (selectors, MXCSR, FCW, flags)", sels[i]);
		rf_context_destroy(fresh_c);
		if (read_state(t, t->c, &dirty_self)) {
			ok(dirty_self.mxcsr == 0x9fc0 && dirty_self.fcw == 0x27f,
			   "the dirtying context keeps its own MXCSR and x87 control word (0x%llx, 0x%llx)",
			   (unsigned long long)dirty_self.mxcsr, (unsigned long long)dirty_self.fcw);
			ok(dirty_self.ds == base.ds && dirty_self.es == base.es && dirty_self.fs == base.fs &&
			   dirty_self.gs == base.gs, "data selectors are reset at every switch, also for the context "
			   "that loaded them");
		}
	}
}

static void test_rflags(struct kt *t)
{
	KT_LOAD(t, iso_iret_flags);
	struct rf_event ev;
	if (!kt_switch(t, &ev))
		return;
	uint64_t fl = rf_context_regs(t->c)->rflags;
	/* QEMU's TCG (the test VM) reads a ring-3 iretq's frame as a supervisor access, which SMAP
	 * refuses: a #PF on the user's own stack, before the frame's flags are loaded. */
	bool tcg = ev.type == RF_EVENT_PAGE_FAULT && ev.fault_addr >= KT_STACK_VA && ev.fault_addr < KT_STACK_TOP;
	ok((ev.type == RF_EVENT_EXCEPTION && ev.vector == RF_VEC_UD) || tcg,
	   "iretq with foreign flags, then ud2 (type %d %s%s)", ev.type, rf_vector_name(ev.vector),
	   tcg ? ": TCG's SMAP quirk at the iretq" : "");
	ok(!(fl & RFLAGS_NOT_USER) && (fl & 2) && (fl & 0x200),
	   "reported RFLAGS 0x%llx hold only user bits (no IOPL, VIF, VIP, reserved), IF and bit 1 set",
	   (unsigned long long)fl);
	if (!tcg)
		ok((fl & 0x40400) == 0x40400, "AC and DF in the frame, which ring 3 owns, came through (0x%llx)",
		   (unsigned long long)fl);
	KT_LOAD(t, iso_popf_flags);
	if (kt_switch(t, &ev))
		ok(ev.type == RF_EVENT_EXCEPTION && ev.vector == RF_VEC_UD &&
		   (rf_context_regs(t->c)->rflags & 0x40400) == 0x40400,
		   "AC and DF set by popf come back in the user's flags (0x%llx)",
		   (unsigned long long)rf_context_regs(t->c)->rflags);
}

static void test_fs_gs_base(struct kt *t)
{
	KT_LOAD(t, iso_wrfsbase);
	struct rf_regs *r = rf_context_regs(t->c);
	r->rdi = KT_DATA_VA;
	r->fs_base = 0x800000000000ull;
	struct rf_event ev;
	int rc = rf_switch(t->c, t->as, &ev);
	ok(rc == -EINVAL && r->rip == KT_CODE_VA, "a non-canonical FS base is refused before entering (%d: %s)", rc,
	   rf_last_error());
	r->fs_base = 0;
	r->gs_base = 0xffff7fffffffffffull;
	rc = rf_switch(t->c, t->as, &ev);
	ok(rc == -EINVAL, "a non-canonical GS base is refused before entering (%d)", rc);
	r->gs_base = 0;
	rc = rf_switch(t->c, t->as, &ev);
	ok(rc == 0 && ev.type == RF_EVENT_SYSCALL && r->fs_base == KT_DATA_VA,
	   "with canonical bases it runs: wrfsbase sets the reported FS base (%d, type %d)", rc, ev.type);
	/* Ring 3 trying it itself gets the hardware's #GP, and the next switch is unaffected. QEMU's
	 * TCG (the test VM) lets wrfsbase take a non-canonical value: then the context reports it
	 * and the next switch refuses it with -EINVAL, as for a caller's; nothing else breaks. */
	KT_LOAD(t, iso_wrfsbase);
	r->rdi = 0x800000000000ull;
	rc = rf_switch(t->c, t->as, &ev);
	bool gp = rc == 0 && ev.type == RF_EVENT_EXCEPTION && ev.vector == RF_VEC_GP && r->fs_base == 0;
	bool tcg = rc == 0 && ev.type == RF_EVENT_SYSCALL && r->fs_base == 0x800000000000ull;
	ok(gp || tcg, "wrfsbase of a non-canonical value: %s (%d, type %d %s, fs 0x%llx)",
	   gp ? "#GP, FS base unchanged" : tcg ? "taken (TCG), reported as it is" : "?", rc, ev.type,
	   rf_vector_name(ev.vector), (unsigned long long)r->fs_base);
	if (tcg) {
		rc = rf_switch(t->c, t->as, &ev);
		ok(rc == -EINVAL, "TCG: the next switch refuses the non-canonical base it reported (%d)", rc);
		r->fs_base = 0;
	}
	KT_LOAD(t, iso_wrfsbase);
	r->rdi = KT_DATA_VA;
	rc = rf_switch(t->c, t->as, &ev);
	ok(rc == 0 && ev.type == RF_EVENT_SYSCALL, "the next switch runs normally (%d)", rc);
}

int main(void)
{
	struct kt t;
	kt_init(&t, NULL);
	test_fresh_context(&t);
	test_rflags(&t);
	test_fs_gs_base(&t);
	kt_fini(&t);
	return tap_done();
}
