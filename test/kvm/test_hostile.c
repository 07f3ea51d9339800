/* SPDX-License-Identifier: MIT */
/* Hostile user code: privileged instructions, forged frames and interrupts, and every reach for the
 * shim, IDT, GDT, stacks and LSTAR must each be a plain event for the caller; afterwards the same
 * vCPU runs ordinary code as before. */
#include <string.h>

#include "kvmtest.h"
#include "ring0.h"

GUEST(regs_roundtrip);
GUEST(load);
GUEST(store);
GUEST(jump);
GUEST(h_hlt);
GUEST(h_cli);
GUEST(h_lgdt);
GUEST(h_lidt);
GUEST(h_mov_cr3);
GUEST(h_wrmsr);
GUEST(h_rdmsr);
GUEST(h_in);
GUEST(h_out);
GUEST(h_invlpg);
GUEST(h_swapgs);
GUEST(h_ltr);
GUEST(h_iret_ring0);
GUEST(h_sysret);
GUEST(h_int_kick);
GUEST(h_int_pf);
GUEST(h_load_kernel_cs);
GUEST(h_tf_syscall);
GUEST(h_noncanon_rsp_syscall);
GUEST(h_iret_cs_udata);

/* kvm-pvm (SYSCALL faulting at LSTAR in ring 3) raises #UD for `int n` without entering the gate. */
static bool host_is_kvm_pvm;

#define ANY_ERR 0xffffffffu

struct hostile {
	const char *what;
	const unsigned char *start, *end;
	uint64_t rax, rdi;          /* operands for load/store/jump */
	enum rf_event_type type;
	unsigned vector;
	uint32_t error_code;        /* ANY_ERR: not checked */
	uint64_t fault_addr;        /* page faults */
	unsigned access;
};

#define H(name, vec, err) { #name, name##_start, name##_end, 0, 0, RF_EVENT_EXCEPTION, vec, err, 0, 0 }
#define PF(what, snippet, rax_, rdi_, addr, acc) \
	{ what, snippet##_start, snippet##_end, rax_, rdi_, RF_EVENT_PAGE_FAULT, RF_VEC_PF, ANY_ERR, addr, acc }

static void ordinary_code_still_runs(struct kt *t, const char *after)
{
	KT_LOAD(t, regs_roundtrip);
	rf_context_regs(t->c)->r13 = 0x1313;
	struct rf_event ev;
	if (kt_switch(t, &ev))
		ok(ev.type == RF_EVENT_SYSCALL && rf_context_regs(t->c)->r13 == 0x1313,
		   "after %s: ordinary code runs and keeps its registers", after);
}

static void run_one(struct kt *t, const struct hostile *h)
{
	kt_load(t, h->start, h->end);
	struct rf_regs *r = rf_context_regs(t->c);
	r->rax = h->rax;
	r->rdi = h->rdi;
	struct rf_event ev;
	memset(&ev, 0, sizeof ev);
	int rc = rf_switch(t->c, t->as, &ev);
	if (!ok(rc == 0, "%s: is an event, not a platform error (%d %s)", h->what, rc, rc ? rf_last_error() : ""))
		return;
	bool match = ev.type == h->type && ev.vector == h->vector &&
	             (h->error_code == ANY_ERR || ev.error_code == h->error_code ||
	              /* QEMU's TCG (CI's nested KVM) scales the IDT index by 16 */
	              ((h->error_code & 7) == 2 && ev.error_code == ((h->error_code & ~7u) * 2 | 2)));
	/* TCG pops an iretq frame with supervisor accesses, which SMAP refuses before the privilege
	 * check can #GP: still an event on the user's own stack, nothing gained. */
	if (h->start == h_iret_ring0_start && ev.type == RF_EVENT_PAGE_FAULT && ev.access == RF_ACCESS_READ &&
	    ev.fault_addr >= KT_STACK_VA && ev.fault_addr < KT_STACK_TOP && !(ev.error_code & 4))
		match = true;
	if (h->type == RF_EVENT_PAGE_FAULT)
		match = match && ev.fault_addr == h->fault_addr && ev.access == h->access && ev.present;
	/* An int n that never reaches its gate is as good as the #GP: nothing of ring 0 ran. */
	bool int_n = h->start == h_int_kick_start || h->start == h_int_pf_start;
	if (int_n && host_is_kvm_pvm && ev.type == RF_EVENT_EXCEPTION && ev.vector == RF_VEC_UD && !ev.error_code &&
	    ev.rip == KT_CODE_VA) {
		printf("# %s: #UD on kvm-pvm (the gate was not entered)\n", h->what);
		match = true;
	}
	ok(match, "%s: %s (got type %d %s err 0x%x addr 0x%llx access %u)", h->what, rf_vector_name(h->vector),
	   ev.type, rf_vector_name(ev.vector), ev.error_code, (unsigned long long)ev.fault_addr, ev.access);
	ordinary_code_still_runs(t, h->what);
}

static const uint64_t shim = RING0_TEXT_VA, idt = RING0_IDT_VA, gdt = RING0_VCPU_VA + RING0_VCPU_TABLES,
                      stack = RING0_VCPU_VA + RING0_VCPU_STACK, dfstack = RING0_VCPU_VA + RING0_VCPU_DFSTACK;

static const struct hostile cases[] = {
	H(h_hlt, RF_VEC_GP, 0), H(h_cli, RF_VEC_GP, 0), H(h_lgdt, RF_VEC_GP, 0), H(h_lidt, RF_VEC_GP, 0),
	H(h_mov_cr3, RF_VEC_GP, 0), H(h_wrmsr, RF_VEC_GP, 0), H(h_rdmsr, RF_VEC_GP, 0), H(h_in, RF_VEC_GP, 0),
	H(h_out, RF_VEC_GP, 0), H(h_invlpg, RF_VEC_GP, 0), H(h_swapgs, RF_VEC_GP, 0), H(h_ltr, RF_VEC_GP, 0),
	H(h_iret_ring0, RF_VEC_GP, RING0_SEL_KCODE), H(h_sysret, RF_VEC_GP, 0),
	/* int n to a ring-0 gate: #GP with the gate in the error code (IDT, vector * 8 + 2). */
	H(h_int_kick, RF_VEC_GP, RING0_KICK_VECTOR * 8 + 2), H(h_int_pf, RF_VEC_GP, 14 * 8 + 2),
	H(h_load_kernel_cs, RF_VEC_GP, RING0_SEL_KCODE),
	PF("read the shim", load, 0, shim, shim, RF_ACCESS_READ),
	PF("write the shim", store, 0, shim + 16, shim + 16, RF_ACCESS_WRITE),
	PF("jump into the shim's iretq", jump, shim + RING0_OFF_iret, 0, shim + RING0_OFF_iret, RF_ACCESS_EXEC),
	PF("read the IDT", load, 0, idt, idt, RF_ACCESS_READ),
	PF("write the IDT", store, 0, idt + 14 * 16, idt + 14 * 16, RF_ACCESS_WRITE),
	PF("read the GDT", load, 0, gdt, gdt, RF_ACCESS_READ),
	PF("write the TSS", store, 0, gdt + RING0_TSS_OFF + 4, gdt + RING0_TSS_OFF + 4, RF_ACCESS_WRITE),
	PF("write the ring-0 stack", store, 0, stack + 4000, stack + 4000, RF_ACCESS_WRITE),
	PF("write the #DF stack", store, 0, dfstack + 4000, dfstack + 4000, RF_ACCESS_WRITE),
};

/* A program that jumps to LSTAR itself gets what the kvm-pvm syscall path gives it on every host: a
 * syscall event returning to the RCX it chose, with its R11 as flags, privileged bits dropped.
 * Nothing it could not have had with a SYSCALL. */
static void test_jump_to_lstar(struct kt *t, const char *mode)
{
	KT_LOAD(t, jump);
	struct rf_regs *r = rf_context_regs(t->c);
	r->rax = RING0_VA(RING0_OFF_syscall);
	r->rcx = KT_CODE_VA + 0x100;
	r->r11 = 0x246 | 0x3000 | 0x180000;   /* IOPL 3, VIF, VIP */
	struct rf_event ev;
	if (kt_switch(t, &ev)) {
		ok(ev.type == RF_EVENT_SYSCALL && r->rip == KT_CODE_VA + 0x100 && (r->rflags & 0xff) == 0x46,
		   "%s: jump to LSTAR is a syscall returning to rcx with r11's flags (type %d rip 0x%llx)", mode,
		   ev.type, (unsigned long long)r->rip);
		ok(ev.rip == KT_CODE_VA + 0xfe, "%s: jump to LSTAR: event rip is rcx - 2", mode);
		ok(!(r->rflags & 0x1b3000), "%s: jump to LSTAR: IOPL, VIF, VIP dropped (0x%llx)", mode,
		   (unsigned long long)r->rflags);
	}
}

/* regression syscall_arrives_either_way: with the non-canonical RSP sequence kvm-pvm emulates ring 3
 * and SYSCALL enters ring 0 at LSTAR; hardware enters ring 0 anyway. Whatever the probe found (or
 * the mode forced), every syscall is an event and the platform keeps working. */
static void test_noncanonical_rsp_syscalls(struct kt *t, const char *mode)
{
	KT_LOAD(t, h_noncanon_rsp_syscall);
	struct rf_regs *r = rf_context_regs(t->c);
	struct rf_event ev;
	for (unsigned i = 0; i < 2; i++) {
		int rc = rf_switch(t->c, t->as, &ev);
		ok(rc == 0 && ev.type == RF_EVENT_SYSCALL && r->rsp == 0x800000000000ull && ev.rip == KT_CODE_VA + 13 + 2 * i,
		   "%s: syscall %u with a non-canonical RSP is a syscall (rc %d %s, type %d, rsp 0x%llx, rip 0x%llx)",
		   mode, i + 1, rc, rc ? rf_last_error() : "", ev.type, (unsigned long long)r->rsp,
		   (unsigned long long)ev.rip);
		if (rc)
			return;
	}
	int rc = rf_switch(t->c, t->as, &ev);   /* RSP restored from rbx, one more syscall */
	ok(rc == 0 && ev.type == RF_EVENT_SYSCALL && r->rsp == KT_STACK_TOP,
	   "%s: after restoring RSP the next syscall is an event (rc %d, type %d)", mode, rc, ev.type);
	/* The host sets a non-canonical RSP itself: the iretq accepts it, SYSCALL still arrives. */
	KT_LOAD(t, regs_roundtrip);
	r->rsp = 0xfff0000000000000ull;
	rc = rf_switch(t->c, t->as, &ev);
	ok(rc == 0 && ev.type == RF_EVENT_SYSCALL && r->rsp == 0xfff0000000000000ull,
	   "%s: a host-set non-canonical RSP, then syscall: a syscall event (rc %d %s, type %d)", mode, rc,
	   rc ? rf_last_error() : "", ev.type);
	ordinary_code_still_runs(t, "non-canonical RSP syscalls");
}

/* Both arrivals decode whatever mode the platform was created in: forced native and forced
 * via-fault run the same checks as the probed one. */
static void test_forced_mode(enum rf_syscall_mode m, const char *name)
{
	struct kt t;
	struct rf_platform_options o = { .syscall_mode = m };
	kt_init(&t, &o);
	KT_LOAD(&t, regs_roundtrip);
	struct rf_event ev;
	if (kt_switch(&t, &ev))
		ok(ev.type == RF_EVENT_SYSCALL, "%s: a plain syscall is a syscall", name);
	test_jump_to_lstar(&t, name);
	test_noncanonical_rsp_syscalls(&t, name);
	kt_fini(&t);
}

/* Single-stepping into SYSCALL: on hardware the #DB arrives in ring 0 at LSTAR and is the syscall;
 * on kvm-pvm SYSCALL faults at LSTAR. Either way: the syscall, then ud2's #UD (a fault ends the
 * step before it can trap). */
static void test_tf_syscall(struct kt *t)
{
	KT_LOAD(t, h_tf_syscall);
	struct rf_event ev;
	memset(&ev, 0, sizeof ev);
	int rc = rf_switch(t->c, t->as, &ev);
	ok(rc == 0 && ev.type == RF_EVENT_SYSCALL && ev.rip == KT_CODE_VA + 10 &&
	   (rf_context_regs(t->c)->rflags & 0x100),
	   "TF then syscall: the syscall, TF kept in the user's flags (%d %s; type %d %s at 0x%llx)", rc,
	   rc ? rf_last_error() : "", ev.type, rf_vector_name(ev.vector), (unsigned long long)ev.rip);
	rc = rf_switch(t->c, t->as, &ev);
	ok(rc == 0 && ev.type == RF_EVENT_EXCEPTION && ev.vector == RF_VEC_UD && ev.rip == KT_CODE_VA + 12,
	   "TF then syscall: then ud2's #UD (type %d %s at 0x%llx)", ev.type, rf_vector_name(ev.vector),
	   (unsigned long long)ev.rip);
	ordinary_code_still_runs(t, "TF then syscall");
}

/* regression compat_syscall_is_ud: kvm-pvm accepted a ring-3 iretq to CS 0x1b and the SYSCALL
 * after it faulted inside the shim (rf_switch failed). Hardware refuses the iretq with #GP(0x18);
 * on kvm-pvm the syscall is reported as the #UD Intel CPUs raise for SYSCALL outside 64-bit mode. */
static void test_iret_to_data_cs(struct kt *t)
{
	KT_LOAD(t, h_iret_cs_udata);
	struct rf_event ev;
	memset(&ev, 0, sizeof ev);
	int rc = rf_switch(t->c, t->as, &ev);
	bool gp = ev.type == RF_EVENT_EXCEPTION && ev.vector == RF_VEC_GP && (ev.error_code & ~3u) == 0x18;
	bool ud = host_is_kvm_pvm && ev.type == RF_EVENT_EXCEPTION && ev.vector == RF_VEC_UD &&
	          ev.rip == KT_CODE_VA + 23;
	/* TCG with SMAP: the iretq's own frame read faults first (see run_one). */
	bool tcg = ev.type == RF_EVENT_PAGE_FAULT && ev.fault_addr >= KT_STACK_VA && ev.fault_addr < KT_STACK_TOP;
	ok(rc == 0 && (gp || ud || tcg), "iretq to CS 0x1b then syscall: %s (rc %d %s; type %d %s err 0x%x at 0x%llx)",
	   gp ? "#GP(0x18) at the iretq" : ud ? "#UD at the syscall (kvm-pvm)" : tcg ? "#PF on the frame (TCG, SMAP)" : "?",
	   rc, rc ? rf_last_error() : "", ev.type, rf_vector_name(ev.vector), ev.error_code, (unsigned long long)ev.rip);
	ordinary_code_still_runs(t, "iretq to CS 0x1b");
}

/* regression noncanonical_pf_is_gp: kvm-pvm reported these as #PF at 0x800000000000. */
static void test_top_of_user_space(struct kt *t)
{
	uint64_t top = RF_USER_END - RF_PAGE_SIZE;
	if (!ok(rf_as_map(t->as, top, RF_PAGE_SIZE, t->mem, KT_MEM_SIZE - RF_PAGE_SIZE,
	                  RF_PROT_READ | RF_PROT_WRITE | RF_PROT_EXEC, 0) == 0, "map the top user page"))
		return;
	memset(t->host + KT_MEM_SIZE - RF_PAGE_SIZE, 0x90, RF_PAGE_SIZE);   /* nops up to the end */
	KT_LOAD(t, load);
	rf_context_regs(t->c)->rdi = RF_USER_END - 2;
	struct rf_event ev;
	if (kt_switch(t, &ev))
		ok(ev.type == RF_EVENT_EXCEPTION && ev.vector == RF_VEC_GP && ev.error_code == 0 && ev.rip == KT_CODE_VA,
		   "an 8-byte read across the top of user space: #GP(0) at the load (type %d %s err 0x%x addr 0x%llx)",
		   ev.type, rf_vector_name(ev.vector), ev.error_code, (unsigned long long)ev.fault_addr);
	KT_LOAD(t, jump);
	rf_context_regs(t->c)->rax = RF_USER_END - 2;
	if (kt_switch(t, &ev))
		ok(ev.type == RF_EVENT_EXCEPTION && ev.vector == RF_VEC_GP && ev.error_code == 0 &&
		   (ev.rip == RF_USER_END || ev.rip == RF_USER_END - 1),
		   "code running off the top of user space: #GP(0) (type %d %s at 0x%llx)", ev.type,
		   rf_vector_name(ev.vector), (unsigned long long)ev.rip);
	ok(rf_as_unmap(t->as, top, RF_PAGE_SIZE) == 0, "unmap the top user page");
	ordinary_code_still_runs(t, "the top of user space");
}

int main(void)
{
	struct kt t;
	kt_init(&t, NULL);
	struct rf_platform_info info;
	rf_platform_info(t.p, &info);
	host_is_kvm_pvm = info.syscall_mode == RF_SYSCALL_VIA_FAULT;
	printf("# host: SYSCALL %s\n", host_is_kvm_pvm ? "faults at LSTAR in ring 3 (kvm-pvm)" : "enters ring 0 (hardware)");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_one(&t, &cases[i]);
	test_jump_to_lstar(&t, "probed mode");
	test_noncanonical_rsp_syscalls(&t, "probed mode");
	test_tf_syscall(&t);
	test_iret_to_data_cs(&t);
	test_top_of_user_space(&t);
	kt_fini(&t);
	test_forced_mode(RF_SYSCALL_NATIVE, "forced native");
	test_forced_mode(RF_SYSCALL_VIA_FAULT, "forced via-fault");
	return tap_done();
}
