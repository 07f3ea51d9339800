/* SPDX-License-Identifier: MIT */
/* Every page-fault kind and every exception user code can raise, reported with the right vector,
 * error code, address and RIP; a fault retried after the host fixes it succeeds. */
#include <string.h>

#include "kvmtest.h"

GUEST(load);
GUEST(store);
GUEST(jump);
GUEST(divide_error);
GUEST(breakpoint);
GUEST(single_step);
GUEST(int4);
GUEST(invalid_opcode);
GUEST(push_noncanonical);
GUEST(alignment);
GUEST(x87_fault);
GUEST(simd_fault);
GUEST(regs_roundtrip);

#define UNMAPPED_VA 0x20000000ull
#define SPARE_OFF   (6ull << 20)   /* last 2 MiB of the fixture memory */

static void expect_pf(struct kt *t, uint64_t addr, unsigned access, bool present, uint64_t rip,
                      const char *what)
{
	struct rf_event ev;
	if (!kt_switch(t, &ev))
		return;
	ok(ev.type == RF_EVENT_PAGE_FAULT && ev.vector == RF_VEC_PF && ev.fault_addr == addr &&
	   ev.access == access && ev.present == present && ev.rip == rip && ev.has_error_code,
	   "%s: #PF at 0x%llx access %u present %d from 0x%llx (got type %d addr 0x%llx access %u present %d rip 0x%llx)",
	   what, (unsigned long long)addr, access, present, (unsigned long long)rip, ev.type,
	   (unsigned long long)ev.fault_addr, ev.access, ev.present, (unsigned long long)ev.rip);
	ok_eq(rf_context_regs(t->c)->rip, rip, "context rip stays on the faulting instruction");
	ok(ev.error_code & 4, "%s: error code says user mode", what);
}

static void test_page_faults(struct kt *t)
{
	struct rf_regs *r = rf_context_regs(t->c);

	KT_LOAD(t, load);
	r->rdi = UNMAPPED_VA + 0x18;
	expect_pf(t, UNMAPPED_VA + 0x18, RF_ACCESS_READ, false, KT_CODE_VA, "read of unmapped");

	/* The host maps the page and switches again: the same instruction now succeeds. */
	uint64_t *spare = (uint64_t *)(t->host + SPARE_OFF);
	spare[3] = 0xabcdef;
	ok(rf_as_map(t->as, UNMAPPED_VA, 4096, t->mem, SPARE_OFF, RF_PROT_READ, 0) == 0, "map on demand");
	struct rf_event ev;
	if (kt_switch(t, &ev)) {
		ok_eq(ev.type, RF_EVENT_SYSCALL, "retried load completes");
		ok_eq(r->rax, 0xabcdef, "retried load read the new page");
	}

	KT_LOAD(t, store);
	r->rdi = UNMAPPED_VA + 8;
	expect_pf(t, UNMAPPED_VA + 8, RF_ACCESS_WRITE, true, KT_CODE_VA, "write to read-only");
	r->rdi = UNMAPPED_VA + 4096;
	expect_pf(t, UNMAPPED_VA + 4096, RF_ACCESS_WRITE, false, KT_CODE_VA, "write to unmapped");
	r->rdi = KT_CODE_VA + 64;
	expect_pf(t, KT_CODE_VA + 64, RF_ACCESS_WRITE, true, KT_CODE_VA, "write to code");

	KT_LOAD(t, jump);
	r->rax = KT_DATA_VA;
	expect_pf(t, KT_DATA_VA, RF_ACCESS_EXEC, true, KT_DATA_VA, "execute non-executable data");
	KT_LOAD(t, jump);
	r->rax = UNMAPPED_VA + 8192;
	expect_pf(t, UNMAPPED_VA + 8192, RF_ACCESS_EXEC, false, UNMAPPED_VA + 8192, "execute unmapped");
	ok(rf_as_unmap(t->as, UNMAPPED_VA, 4096) == 0, "unmap the on-demand page");
}

static void expect_exc(struct kt *t, unsigned vector, uint64_t rip, const char *what)
{
	struct rf_event ev;
	if (!kt_switch(t, &ev))
		return;
	ok(ev.type == RF_EVENT_EXCEPTION && ev.vector == vector && ev.rip == rip,
	   "%s: %s at 0x%llx (got type %d vector %u %s at 0x%llx)", what, rf_vector_name(vector),
	   (unsigned long long)rip, ev.type, ev.vector, rf_vector_name(ev.vector), (unsigned long long)ev.rip);
}

static void test_exceptions(struct kt *t)
{
	struct rf_regs *r = rf_context_regs(t->c);
	KT_LOAD(t, divide_error);
	expect_exc(t, RF_VEC_DE, KT_CODE_VA + 2, "divide by zero");
	KT_LOAD(t, breakpoint);
	expect_exc(t, RF_VEC_BP, KT_CODE_VA + 1, "int3 (a trap: rip after it)");
	KT_LOAD(t, single_step);
	expect_exc(t, RF_VEC_DB, KT_CODE_VA + 11, "single step with TF set by the program");
	ok((r->rflags & 0x100) != 0, "TF is reported in the user's flags");
	KT_LOAD(t, int4);
	expect_exc(t, RF_VEC_OF, KT_CODE_VA + 2, "int $4 (#OF; into is invalid in 64-bit mode)");
	KT_LOAD(t, invalid_opcode);
	expect_exc(t, RF_VEC_UD, KT_CODE_VA, "ud2");
	/* Hardware raises #SS(0); QEMU's TCG (our CI's nested KVM) raises #GP(0). */
	KT_LOAD(t, push_noncanonical);
	struct rf_event ev;
	if (kt_switch(t, &ev))
		ok(ev.type == RF_EVENT_EXCEPTION && (ev.vector == RF_VEC_SS || ev.vector == RF_VEC_GP) &&
		   ev.error_code == 0 && ev.rip == KT_CODE_VA + 10,
		   "push with a non-canonical rsp: #SS(0) (or #GP(0) under TCG) at the push (got %s)",
		   rf_vector_name(ev.vector));
	ok_eq(r->rsp, 0x8000000000000000ull, "the non-canonical rsp is reported as it was");

	/* #AC needs CR0.AM (the shim sets it) and the user's AC flag (which the platform must pass
	 * through). TCG does no alignment checks, so there the proof is AC reaching the guest. */
	KT_LOAD(t, alignment);
	r->rdi = KT_DATA_VA;
	r->rflags |= 1u << 18;
	if (kt_switch(t, &ev)) {
		if (ev.type == RF_EVENT_EXCEPTION)
			ok(ev.vector == RF_VEC_AC && ev.rip == KT_CODE_VA, "misaligned load with AC set is #AC");
		else
			ok(ev.type == RF_EVENT_SYSCALL && (r->r11 & (1u << 18)),
			   "AC reached the guest (this CPU does not check alignment)");
	}
	KT_LOAD(t, alignment);
	r->rdi = KT_DATA_VA;
	if (kt_switch(t, &ev))
		ok_eq(ev.type, RF_EVENT_SYSCALL, "same load without AC is fine");

	KT_LOAD(t, x87_fault);
	expect_exc(t, RF_VEC_MF, KT_CODE_VA + 16, "x87 divide by zero unmasked, at the fwait");

	/* TCG never raises #XM; there the proof is the sticky ZE flag in the reported MXCSR. */
	KT_LOAD(t, simd_fault);
	if (kt_switch(t, &ev)) {
		uint32_t mxcsr;
		memcpy(&mxcsr, (unsigned char *)rf_context_fpu(t->c) + 24, 4);
		if (ev.vector == RF_VEC_XM)
			ok(ev.type == RF_EVENT_EXCEPTION && ev.rip == KT_CODE_VA + 22, "SSE divide by zero unmasked is #XM");
		else
			ok(ev.vector == RF_VEC_UD && (mxcsr & 0x204) == 0x4,
			   "no #XM on this CPU, but MXCSR (0x%x) shows the guest's unmasked ZE", mxcsr);
	}
}

static void test_noncanonical(struct kt *t)
{
	struct rf_regs *r = rf_context_regs(t->c);
	/* The host sets a non-canonical RIP: the shim's iretq refuses it, the caller gets #GP with
	 * the state it asked for, and the vCPU is fine afterwards. */
	KT_LOAD(t, regs_roundtrip);
	r->rip = 0x0000900000000000ull;
	r->rbx = 77;
	expect_exc(t, RF_VEC_GP, 0x0000900000000000ull, "non-canonical rip from the host");
	ok_eq(r->rip, 0x0000900000000000ull, "context keeps the rejected rip");
	ok_eq(r->rbx, 77, "context keeps its registers");

	KT_LOAD(t, jump);
	r->rax = 0xffff000000000000ull;
	struct rf_event ev;
	if (kt_switch(t, &ev)) {
		/* Intel reports the jump, AMD the target; both are a #GP(0). */
		ok(ev.type == RF_EVENT_EXCEPTION && ev.vector == RF_VEC_GP && ev.error_code == 0 &&
		   (ev.rip == KT_CODE_VA || ev.rip == 0xffff000000000000ull),
		   "jump to a non-canonical address is #GP(0) (vector %u rip 0x%llx)", ev.vector,
		   (unsigned long long)ev.rip);
	}

	KT_LOAD(t, regs_roundtrip);
	r->rsp = 0x0000800000000000ull;
	if (kt_switch(t, &ev))
		ok_eq(ev.type, RF_EVENT_SYSCALL, "a non-canonical rsp is harmless until used");

	KT_LOAD(t, regs_roundtrip);
	if (kt_switch(t, &ev))
		ok_eq(ev.type, RF_EVENT_SYSCALL, "a normal switch works after all of the above");
}

int main(void)
{
	struct kt t;
	kt_init(&t, NULL);
	test_page_faults(&t);
	test_exceptions(&t);
	test_noncanonical(&t);
	kt_fini(&t);
	return tap_done();
}
