/* SPDX-License-Identifier: MIT */
/* Syscall round trips on real KVM: every register both ways, FS/GS base, SSE/AVX state, and two
 * contexts sharing one vCPU without seeing each other's FPU state. */
#include <string.h>

#include "kvmtest.h"

GUEST(regs_roundtrip);
GUEST(fsgs);
GUEST(fpu);
GUEST(xrstor_mxcsr);

#define XSAVE_XSTATE_BV 512
#define XSAVE_XMM(i)    (160 + 16 * (i))
#define XSAVE_YMMH(i)   (576 + 16 * (i))

static void fill_regs(struct rf_regs *r, uint64_t seed)
{
	uint64_t *w = &r->rax;
	for (int i = 0; i < 16; i++)
		if (&w[i] != &r->rsp)
			w[i] = seed * 0x0101010101010101ull + (uint64_t)i;
}

static void check_gprs(const struct rf_regs *got, const struct rf_regs *want, const char *when)
{
	static const char *names[16] = { "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
	                                  "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15" };
	const uint64_t *g = &got->rax, *w = &want->rax;
	int bad = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 2 || i == 11)   /* rcx, r11: the SYSCALL instruction's own */
			continue;
		if (g[i] != w[i]) {
			printf("#   %s: %s = 0x%llx, want 0x%llx\n", when, names[i], (unsigned long long)g[i],
			       (unsigned long long)w[i]);
			bad++;
		}
	}
	ok(!bad, "%s: all 14 preserved GPRs as expected", when);
}

static void test_regs(struct kt *t)
{
	KT_LOAD(t, regs_roundtrip);
	struct rf_regs *r = rf_context_regs(t->c), want;
	fill_regs(r, 0x11);
	r->rflags = 0x202 | 0x1 | 0x80 | 0x800;   /* CF, SF, OF: the user's flags come back in r11 */
	want = *r;
	struct rf_event ev;
	if (!kt_switch(t, &ev))
		return;
	ok_eq(ev.type, RF_EVENT_SYSCALL, "first stop is a syscall");
	ok_eq(ev.rip, KT_CODE_VA, "event rip is the syscall instruction");
	ok_eq(r->rip, KT_CODE_VA + 2, "context rip is after the syscall");
	ok_eq(r->rcx, KT_CODE_VA + 2, "rcx holds the return address");
	ok_eq(r->r11 & 0xcd5, want.rflags & 0xcd5, "r11 holds the user's flags");
	ok_eq(r->rflags & 0x8d5, want.rflags & 0x8d5, "rflags come back unchanged");
	check_gprs(r, &want, "guest -> host");

	fill_regs(r, 0x5a);
	r->rsp = KT_STACK_TOP - 64;
	want = *r;
	if (!kt_switch(t, &ev))
		return;
	ok_eq(ev.type, RF_EVENT_SYSCALL, "second stop is a syscall");
	ok_eq(ev.rip, KT_CODE_VA + 2, "second syscall at its own address");
	check_gprs(r, &want, "host -> guest -> host");
	ok_eq(r->rsp, KT_STACK_TOP - 64, "rsp set by the host is the guest's");
}

static void test_fsgs(struct kt *t)
{
	KT_LOAD(t, fsgs);
	uint64_t *data = (uint64_t *)(t->host + (2u << 20));
	data[0] = 0x1111222233334444ull;
	data[1] = 0x5555666677778888ull;
	struct rf_regs *r = rf_context_regs(t->c);
	r->fs_base = KT_DATA_VA;
	r->gs_base = KT_DATA_VA + 8;
	struct rf_event ev;
	if (!kt_switch(t, &ev))
		return;
	ok_eq(r->rax, data[0], "guest reads through the FS base the host set");
	ok_eq(r->rbx, data[1], "guest reads through the GS base the host set");
	ok_eq(r->fs_base, KT_DATA_VA, "FS base reported back");
	r->rdi = 0x7f0000001000ull;
	if (!kt_switch(t, &ev))
		return;
	if (ev.type == RF_EVENT_EXCEPTION && ev.vector == RF_VEC_UD) {
		ok(1, "guest CPU has no FSGSBASE: wrfsbase is #UD");
	} else {
		ok_eq(ev.type, RF_EVENT_SYSCALL, "wrfsbase then syscall");
		ok_eq(r->fs_base, 0x7f0000001000ull, "FS base written by the guest is reported");
		ok_eq(r->gs_base, KT_DATA_VA + 8, "GS base untouched");
	}
}

static uint64_t fpu_u64(rf_context *c, size_t off)
{
	uint64_t v;
	memcpy(&v, (unsigned char *)rf_context_fpu(c) + off, 8);
	return v;
}

static void fpu_set(rf_context *c, size_t off, uint64_t v, uint64_t component)
{
	unsigned char *x = rf_context_fpu(c);
	memcpy(x + off, &v, 8);
	uint64_t bv;
	memcpy(&bv, x + XSAVE_XSTATE_BV, 8);
	bv |= component;
	memcpy(x + XSAVE_XSTATE_BV, &bv, 8);
}

/* Runs the fpu snippet to its first stop with xmm0 = ymm2.hi = seed. */
static int fpu_first(struct kt *t, rf_context *c, uint64_t seed)
{
	rf_context *keep = t->c;
	t->c = c;
	KT_LOAD(t, fpu);
	rf_context_regs(c)->rax = seed;
	struct rf_event ev;
	int r = kt_switch(t, &ev);
	t->c = keep;
	return r;
}

static void test_fpu(struct kt *t)
{
	if (!fpu_first(t, t->c, 0xfeedf00dcafe0001ull))
		return;
	ok_eq(fpu_u64(t->c, XSAVE_XMM(0)), 0xfeedf00dcafe0001ull, "xmm0 written by the guest is in the XSAVE image");
	ok_eq(fpu_u64(t->c, XSAVE_YMMH(2)), 0xfeedf00dcafe0001ull, "ymm2 upper half written by the guest is in the image");
	fpu_set(t->c, XSAVE_XMM(1), 0x0123456789abcdefull, 2);
	fpu_set(t->c, XSAVE_YMMH(3), 0x1122334455667788ull, 4);
	struct rf_event ev;
	if (!kt_switch(t, &ev))
		return;
	ok_eq(rf_context_regs(t->c)->rax, 0x0123456789abcdefull, "guest sees xmm1 set by the host");
	ok_eq(rf_context_regs(t->c)->rbx, 0x1122334455667788ull, "guest sees ymm3 upper half set by the host");
}

/* A guest that loads reserved MXCSR bits (possible only on an emulated CPU: QEMU's TCG) must not make
 * its context unrunnable: KVM_SET_XSAVE refuses such an image, so the platform drops the bits when
 * it saves it. On hardware the xrstor raises #GP and the rest holds as well. */
static void test_mxcsr_reserved_bits_keep_context_runnable(struct kt *t)
{
	KT_LOAD(t, xrstor_mxcsr);
	unsigned char *img = t->host + (2ull << 20);   /* KT_DATA_VA, 64-byte aligned */
	memset(img, 0, 4096);
	uint32_t mxcsr = 0xdead1f80u;
	uint64_t bv = 2;                                /* SSE state present */
	memcpy(img + 24, &mxcsr, 4);
	memcpy(img + XSAVE_XSTATE_BV, &bv, 8);
	rf_context_regs(t->c)->rbx = KT_DATA_VA;
	struct rf_event ev;
	if (!kt_switch(t, &ev))
		return;
	bool loaded = ev.type == RF_EVENT_SYSCALL;
	ok(loaded || (ev.type == RF_EVENT_EXCEPTION && ev.vector == 13),
	   "xrstor of an image with reserved MXCSR bits: #GP (hardware) or loaded (TCG) (type %d vector %u)", ev.type,
	   ev.vector);
	const unsigned char *fpu = rf_context_fpu(t->c);   /* the vCPU's state saved into the image */
	uint32_t saved = 0;
	if (fpu)
		memcpy(&saved, fpu + 24, 4);
	ok(fpu && !(saved & 0xffff0000u), "the saved image's MXCSR holds no reserved bit (0x%x, %s)", saved,
	   loaded ? "the CPU took them" : "the CPU refused them");
	rf_context_regs(t->c)->rip = KT_CODE_VA + 0x10;   /* the ud2 */
	int r = rf_switch(t->c, t->as, &ev);
	ok(r == 0 && ev.type == RF_EVENT_EXCEPTION && ev.vector == 6,
	   "the context runs again from that image (rc %d: %s)", r, r ? rf_last_error() : "ok");
}

/* One vCPU, two contexts interleaved: each must get its own xmm0/ymm2 back. */
static void test_fpu_isolation(void)
{
	struct kt t;
	struct rf_platform_options o = { .max_vcpus = 1 };
	kt_init(&t, &o);
	rf_context *b;
	if (rf_context_create(t.p, &b) < 0) {
		ok(0, "second context: %s", rf_last_error());
		return;
	}
	fpu_first(&t, t.c, 0xaaaaaaaaaaaaaaaaull);
	/* b runs the same code from the start on the same vCPU, clobbering xmm0 in the hardware. */
	fpu_first(&t, b, 0xbbbbbbbbbbbbbbbbull);
	struct rf_event ev;
	kt_switch(&t, &ev);   /* a: second stop */
	kt_switch(&t, &ev);   /* a: third stop reads xmm0 and ymm2.hi again */
	ok_eq(rf_context_regs(t.c)->rax, 0xaaaaaaaaaaaaaaaaull, "context a keeps its xmm0 across b's run");
	ok_eq(rf_context_regs(t.c)->rbx, 0xaaaaaaaaaaaaaaaaull, "context a keeps its ymm2 across b's run");
	rf_context *keep = t.c;
	t.c = b;
	kt_switch(&t, &ev);
	kt_switch(&t, &ev);
	ok_eq(rf_context_regs(b)->rax, 0xbbbbbbbbbbbbbbbbull, "context b keeps its own xmm0");
	t.c = keep;
	struct rf_platform_info info;
	rf_platform_info(t.p, &info);
	ok_eq(info.vcpus_created, 1, "both contexts ran on the single vCPU");
	rf_context_destroy(b);
	kt_fini(&t);
}

int main(void)
{
	struct kt t;
	kt_init(&t, NULL);
	struct rf_platform_info info;
	rf_platform_info(t.p, &info);
	printf("# syscall mode: %s, xcr0 0x%llx\n",
	       info.syscall_mode == RF_SYSCALL_NATIVE ? "native (hardware KVM)" : "via fault (kvm-pvm)",
	       (unsigned long long)info.xcr0);
	ok(info.syscall_mode == RF_SYSCALL_NATIVE || info.syscall_mode == RF_SYSCALL_VIA_FAULT,
	   "the probe chose a syscall path");
	test_regs(&t);
	test_fsgs(&t);
	test_fpu(&t);
	test_mxcsr_reserved_bits_keep_context_runnable(&t);
	kt_fini(&t);
	test_fpu_isolation();
	return tap_done();
}
