/* SPDX-License-Identifier: MIT */
/* Unit tests of vcpu/decode.c: synthetic shim exits over a fake IST stack, no KVM. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "platform.h"
#include "ring0.h"
#include "vcpu.h"
#include "../tap.h"

/* vCPU 3's stack top: any supervisor address works, one not at the area base catches a decoder
 * that assumes vCPU 0. */
#define TOP_VA     (RING0_VCPU_VA + 3 * RING0_VCPU_STRIDE + RING0_STACK_TOP_OFF)
#define STUB(v)    (RING0_VA(RING0_OFF_vec_0) + (uint64_t)(v) * RING0_VEC_STRIDE)
#define SYSCALL_VA RING0_VA(RING0_OFF_syscall)
#define KCS        RING0_SEL_KCODE
#define UCS        RING0_SEL_UCODE
#define POISON     0xdeadbeefcafef00dull
#define ULL(x)     ((unsigned long long)(x))

/* The x86 vectors that push an error code, written out independently of decode.c. */
static const bool x86_err[RING0_NUM_VECTORS] = { [8] = 1, [10] = 1, [11] = 1, [12] = 1, [13] = 1,
                                                 [14] = 1, [17] = 1, [21] = 1, [29] = 1, [30] = 1 };

static uint64_t stack[512];   /* the IST stack page */

struct frame { uint64_t err, rip, cs, rflags, rsp, ss; };
static const struct frame user = { 0, 0x401234, UCS, 0x10246, 0x7ffffffde000, RING0_SEL_UDATA };

/* An exit from vector v's stub as the shim makes it: the CPU pushed `fr` (after the error code
 * when `err`) at the top of the IST stack, and the stub's `out` exited with RSP pointing at it.
 * Everything else on the stack is poison, so a decoder reading the wrong slot shows. */
static struct exit_view vec_exit(unsigned v, bool err, struct frame fr, uint64_t cr2)
{
	for (unsigned i = 0; i < 512; i++)
		stack[i] = POISON;
	uint64_t *f = stack + 512 - RING0_FRAME_OFF / 8;
	f[0] = fr.rip; f[1] = fr.cs; f[2] = fr.rflags; f[3] = fr.rsp; f[4] = fr.ss;
	if (err)
		f[-1] = fr.err;
	return (struct exit_view){ .port = RING0_PORT_VECTOR + v, .rip = STUB(v),
	                           .rsp = TOP_VA - RING0_FRAME_OFF - (err ? 8 : 0), .rcx = POISON,
	                           .r11 = POISON, .cs = KCS, .cr2 = cr2, .stack_top = stack + 512,
	                           .stack_top_va = TOP_VA };
}

static struct exit_view syscall_exit(uint64_t rip)
{
	return (struct exit_view){ .port = RING0_PORT_SYSCALL, .rip = rip, .rsp = 0x7ffffffde008,
	                           .rcx = 0x401002, .r11 = 0x10202, .cs = KCS, .stack_top = stack + 512,
	                           .stack_top_va = TOP_VA };
}

static struct exit_decoded dec(const struct exit_view *x)
{
	struct exit_decoded d;
	memset(&d, 0xa5, sizeof d);   /* fields the decoder forgets show as garbage */
	exit_decode(x, &d);
	return d;
}

static void shim_error(const struct exit_view *x, const char *name)
{
	struct exit_decoded d = dec(x);
	ok(d.kind == EXIT_SHIM_ERROR && d.why[0] && memchr(d.why, 0, sizeof d.why), "%s: shim error (%s)", name,
	   d.kind == EXIT_SHIM_ERROR ? d.why : "decoded as an event");
}

/* The user's state at the event must come from the frame the CPU pushed. */
static bool from_frame(const struct exit_decoded *d, const struct frame *fr)
{
	return d->ev.rip == fr->rip && d->rip == fr->rip && d->rsp == fr->rsp && d->rflags == fr->rflags;
}

static void test_syscall(void)
{
	for (unsigned adv = 0; adv <= 2; adv += 2) {
		/* KVM reports the PIO exit before moving RIP past the 2-byte `out`; both are the stub. */
		struct exit_view x = syscall_exit(SYSCALL_VA + adv);
		struct exit_decoded d = dec(&x);
		ok(d.kind == EXIT_USER_EVENT && d.ev.type == RF_EVENT_SYSCALL, "native syscall, exit rip stub+%u", adv);
		ok_eq(d.ev.rip, x.rcx - 2, "syscall: event rip is the syscall instruction (rcx - 2)");
		ok(d.rip == x.rcx && d.rflags == x.r11 && d.rsp == x.rsp,
		   "syscall: user rip = rcx, rflags = r11, rsp kept");
		ok(!d.ev.vector && !d.ev.has_error_code && !d.ev.error_code && !d.ev.fault_addr,
		   "syscall: no vector or error code");
	}
	/* kvm-pvm in its ring-3 emulator (after an iretq to a non-canonical RSP) enters ring 0 at
	 * LSTAR as hardware does, whatever the start-up probe saw: still the syscall. */
	struct exit_view x = syscall_exit(SYSCALL_VA);
	x.rsp = 0x800000000000ull;
	struct exit_decoded d = dec(&x);
	ok(d.kind == EXIT_USER_EVENT && d.ev.type == RF_EVENT_SYSCALL && d.rsp == x.rsp && d.rip == x.rcx,
	   "syscall_arrives_in_ring0_with_noncanonical_rsp: a syscall, rsp kept");
	x = syscall_exit(SYSCALL_VA);
	x.cs = UCS;
	shim_error(&x, "syscall port from cs 0x23");
	static const int64_t bad_rip[] = { 1, 3, 4, -2, -8 };
	for (unsigned i = 0; i < sizeof bad_rip / sizeof bad_rip[0]; i++) {
		x = syscall_exit(SYSCALL_VA + (uint64_t)bad_rip[i]);
		shim_error(&x, "syscall port with rip off the stub");
	}
	x = syscall_exit(STUB(6));
	shim_error(&x, "syscall port with rip at a vector stub");
}

static void test_page_fault(void)
{
	static const struct { uint32_t err; unsigned access; bool present; } pf[] = {
		{ 0x0, RF_ACCESS_READ, false },  { 0x1, RF_ACCESS_READ, true },  { 0x2, RF_ACCESS_WRITE, false },
		{ 0x3, RF_ACCESS_WRITE, true },  { 0x4, RF_ACCESS_READ, false }, { 0x7, RF_ACCESS_WRITE, true },
		{ 0x10, RF_ACCESS_EXEC, false }, { 0x15, RF_ACCESS_EXEC, true }, { 0x14, RF_ACCESS_EXEC, false },
	};
	for (unsigned i = 0; i < sizeof pf / sizeof pf[0]; i++) {
		struct frame fr = user;
		fr.err = pf[i].err;
		struct exit_view x = vec_exit(14, true, fr, 0x7f0000001ff8);
		struct exit_decoded d = dec(&x);
		ok(d.kind == EXIT_USER_EVENT && d.ev.type == RF_EVENT_PAGE_FAULT && d.ev.vector == 14 &&
		   d.ev.has_error_code && d.ev.error_code == pf[i].err && d.ev.fault_addr == x.cr2 &&
		   d.ev.access == pf[i].access && d.ev.present == pf[i].present && from_frame(&d, &fr),
		   "#PF error 0x%x: access %u, present %d, cr2, state (got access %u present %d)",
		   pf[i].err, pf[i].access, pf[i].present, d.ev.access, d.ev.present);
	}

	/* kvm-pvm: SYSCALL jumps to LSTAR in ring 3 and takes an instruction fetch fault right there. */
	struct frame fr = user;
	fr.rip = SYSCALL_VA;
	fr.err = 0x15;
	struct exit_view x = vec_exit(14, true, fr, SYSCALL_VA);
	x.rcx = 0x401002;
	x.r11 = 0x10202;
	struct exit_decoded d = dec(&x);
	ok(d.kind == EXIT_USER_EVENT && d.ev.type == RF_EVENT_SYSCALL,
	   "ring-3 #PF at the syscall stub is a syscall, whatever the probe found");
	ok(d.ev.rip == x.rcx - 2 && d.rip == x.rcx && d.rflags == x.r11 && d.rsp == fr.rsp,
	   "#PF-at-LSTAR syscall: rip = rcx (event at rcx - 2), rflags = r11, rsp from the frame");
	ok(!d.ev.vector && !d.ev.has_error_code && !d.ev.error_code, "#PF-at-LSTAR syscall: no vector or error code");

	fr = user;   /* a user load from the stub's address: same cr2, rip elsewhere */
	fr.err = 0x5;
	x = vec_exit(14, true, fr, SYSCALL_VA);
	d = dec(&x);
	ok(d.kind == EXIT_USER_EVENT && d.ev.type == RF_EVENT_PAGE_FAULT && d.ev.access == RF_ACCESS_READ &&
	   d.ev.fault_addr == SYSCALL_VA && from_frame(&d, &fr),
	   "#PF on the stub address from elsewhere is a page fault");
	fr.err = 0x14;   /* the everyday fetch fault: cr2 == rip, at a user address */
	x = vec_exit(14, true, fr, fr.rip);
	d = dec(&x);
	ok(d.kind == EXIT_USER_EVENT && d.ev.type == RF_EVENT_PAGE_FAULT && d.ev.access == RF_ACCESS_EXEC &&
	   d.ev.fault_addr == fr.rip, "a fetch fault with cr2 == rip elsewhere is a page fault");
	fr.rip = SYSCALL_VA;
	fr.err = 0x15;
	x = vec_exit(14, true, fr, SYSCALL_VA + 0x1000);
	d = dec(&x);
	ok(d.kind == EXIT_USER_EVENT && d.ev.type == RF_EVENT_PAGE_FAULT && d.ev.fault_addr == SYSCALL_VA + 0x1000,
	   "rip at the stub but cr2 elsewhere is a page fault");
	fr.cs = KCS;
	x = vec_exit(14, true, fr, SYSCALL_VA);
	shim_error(&x, "a ring-0 #PF at the syscall stub");
}

/* The kick has its own entry (not a stride stub) and a second port for ring-0 arrivals. */
static void test_kick_exits(void)
{
	struct exit_view x = vec_exit(RING0_KICK_VECTOR, false, user, 0);
	x.rip = RING0_VA(RING0_OFF_kick_user);
	struct exit_decoded d = dec(&x);
	ok(d.kind == EXIT_USER_EVENT && d.ev.type == RF_EVENT_INTERRUPTED && d.ev.vector == RING0_KICK_VECTOR &&
	   from_frame(&d, &user), "kick from ring 3: interrupted, user state from the frame");
	x.rip += 2;
	ok(dec(&x).kind == EXIT_USER_EVENT, "kick exit with rip past the `out` is accepted");
	x.rip = STUB(0);
	shim_error(&x, "kick port from a vector stub");
	x.rip = RING0_VA(RING0_OFF_kick_user);
	x.rsp -= 8;
	shim_error(&x, "kick with the frame 8 bytes low");

	/* Ring 0: the kick interrupted the shim at its iretq; its frame sits below the user frame. */
	struct frame k0 = { .rip = RING0_VA(RING0_OFF_iret), .cs = KCS, .rflags = 2,
	                    .rsp = TOP_VA - RING0_FRAME_OFF, .ss = 0 };
	x = vec_exit(RING0_KICK_VECTOR, false, user, 0);
	uint64_t *f = stack + 512 - RING0_FRAME_OFF / 8 - 5;
	f[0] = k0.rip; f[1] = k0.cs; f[2] = k0.rflags; f[3] = k0.rsp; f[4] = k0.ss;
	x.port = RING0_PORT_KICK0;
	x.rip = RING0_VA(RING0_OFF_kick_ring0);
	x.rsp = TOP_VA - RING0_FRAME_OFF - 40;
	d = dec(&x);
	ok(d.kind == EXIT_KICK_RING0 && d.rip == k0.rip, "kick in ring 0: resume the shim (kind %d)", d.kind);
	f[1] = user.cs;
	shim_error(&x, "ring-0 kick port with a user frame");
	f[1] = KCS;
	x.rsp = TOP_VA - 4096 - 8;
	shim_error(&x, "ring-0 kick with a stack below the page");
	x.rsp = TOP_VA - RING0_FRAME_OFF + 8;
	shim_error(&x, "ring-0 kick with a stack above the frame");
	x.rsp = TOP_VA - RING0_FRAME_OFF - 41;
	shim_error(&x, "ring-0 kick with a misaligned stack");
}

static void test_exceptions(void)
{
	struct exit_view x = vec_exit(6, false, user, 0);
	struct exit_decoded d = dec(&x);
	ok(d.kind == EXIT_USER_EVENT && d.ev.type == RF_EVENT_EXCEPTION && d.ev.vector == 6 && from_frame(&d, &user),
	   "#UD: exception, vector 6, state from the frame");
	ok(!d.ev.has_error_code && !d.ev.error_code, "#UD: no error code (the slot below the frame is not read)");
	struct frame fr = user;
	fr.err = 0x1234;
	x = vec_exit(13, true, fr, 0);
	d = dec(&x);
	ok(d.kind == EXIT_USER_EVENT && d.ev.type == RF_EVENT_EXCEPTION && d.ev.vector == 13 && d.ev.has_error_code &&
	   d.ev.error_code == 0x1234 && from_frame(&d, &fr), "#GP: exception, vector 13, error code 0x1234");
	test_kick_exits();

	x = vec_exit(6, false, user, 0);
	x.rip = STUB(6) + 2;
	ok(dec(&x).kind == EXIT_USER_EVENT, "#UD exit with rip past the `out` is accepted");
	x.rsp -= 8;
	shim_error(&x, "#UD with rsp 8 too low");
	x = vec_exit(13, true, fr, 0);
	x.rsp += 8;
	shim_error(&x, "#GP with rsp 8 too high (as if it had no error code)");
	x = vec_exit(6, false, user, 0);
	x.stack_top_va -= RING0_VCPU_STRIDE;
	shim_error(&x, "#UD with the frame on another vCPU's stack");
	static const int64_t off[] = { 1, 3, 4, -8, 8 };
	for (unsigned i = 0; i < sizeof off / sizeof off[0]; i++) {
		x = vec_exit(6, false, user, 0);
		x.rip += (uint64_t)off[i];
		shim_error(&x, "#UD exit with rip off its stub");
	}
	x = vec_exit(6, false, user, 0);
	x.cs = UCS;
	shim_error(&x, "vector exit with a ring-3 cs");
	static const uint16_t ports[] = { 0, RING0_PORT_BENCH, RING0_PORT_SYSCALL + 1, RING0_PORT_VECTOR - 1,
	                                  RING0_PORT_VECTOR + RING0_NUM_VECTORS,
	                                  RING0_PORT_VECTOR + RING0_NUM_VECTORS + 1, 0xff, 0xffff };
	for (unsigned i = 0; i < sizeof ports / sizeof ports[0] * 2; i++) {
		/* At a valid stub, and where this port's stub would be (with 64- or 32-bit wrap-around):
		 * the port alone must be enough to refuse. */
		unsigned v = ports[i / 2] - RING0_PORT_VECTOR;
		x = vec_exit(6, false, user, 0);
		x.port = ports[i / 2];
		x.rip = i % 2 ? STUB((int)v) : RING0_VA(RING0_OFF_vec_0) + v * RING0_VEC_STRIDE;
		shim_error(&x, "unknown port");
		x.rip = STUB(6);
		shim_error(&x, "unknown port, rip at a valid stub");
	}
}

static void test_ring0(void)
{
	static const unsigned vecs[] = { 13, 14, 11, 12 };
	static const uint64_t at[] = { RING0_VA(RING0_OFF_iret), RING0_VA(RING0_OFF_flush_iretq) };
	for (unsigned i = 0; i < 4; i++)
		for (unsigned j = 0; j < 2; j++) {
			/* iretq refused the user frame (bad rip, bad selector, non-canonical rsp...). */
			struct frame fr = { 0x42, at[j], KCS, 0x2, TOP_VA - RING0_FRAME_OFF, RING0_SEL_KDATA };
			struct exit_view x = vec_exit(vecs[i], true, fr, 0x800000000000ull);
			struct exit_decoded d = dec(&x);
			bool pf = vecs[i] == 14;
			enum rf_event_type type = pf ? RF_EVENT_PAGE_FAULT : RF_EVENT_EXCEPTION;
			ok(d.kind == EXIT_USER_REJECTED && d.ev.type == type &&
			   d.ev.vector == vecs[i] && d.ev.has_error_code && d.ev.error_code == 0x42 &&
			   (!pf || (d.ev.fault_addr == x.cr2 && d.ev.access == RF_ACCESS_WRITE)),
			   "vector %u in ring 0 at %s: user state rejected", vecs[i], j ? "flush_iretq" : "iret");
		}
	static const uint64_t elsewhere[] = { RING0_VA(RING0_OFF_flush_iret), RING0_VA(RING0_OFF_iret) + 1,
	                                      STUB(13), SYSCALL_VA + 2, 0x401234 };
	for (unsigned i = 0; i < sizeof elsewhere / sizeof elsewhere[0]; i++) {
		struct frame fr = { 0, elsewhere[i], KCS, 0x2, TOP_VA - 0x100, RING0_SEL_KDATA };
		struct exit_view x = vec_exit(13, true, fr, 0);
		shim_error(&x, "#GP in ring 0 outside the iretqs");
	}
}

/* Every vector the shim has a stub for, from ring 3, from ring 0 at iretq and elsewhere. */
static void test_all_vectors(void)
{
	for (unsigned v = 0; v < RING0_NUM_VECTORS; v++) {
		bool err = x86_err[v];
		enum rf_event_type type = v == 14 ? RF_EVENT_PAGE_FAULT : RF_EVENT_EXCEPTION;
		ok(vector_has_error_code(v) == err, "vector_has_error_code(%u) is %d", v, err);
		struct frame fr = user;
		fr.err = 0x100 + v;
		struct exit_view x = vec_exit(v, err, fr, 0x1000);
		struct exit_decoded d = dec(&x);
		ok(d.kind == EXIT_USER_EVENT && d.ev.type == type && d.ev.vector == v && d.ev.has_error_code == err &&
		   d.ev.error_code == (err ? 0x100 + v : 0) && from_frame(&d, &fr),
		   "vector %u from ring 3: type %d, vector, error code, state (got kind %d type %d)", v, type, d.kind,
		   d.ev.type);
		x.rsp += err ? 8 : -8;
		shim_error(&x, "vector exit with rsp for the other error-code layout");
		fr.cs = KCS;
		fr.rip = RING0_VA(RING0_OFF_iret);
		x = vec_exit(v, err, fr, 0x1000);
		d = dec(&x);
		bool rejected = d.kind == EXIT_USER_REJECTED && d.ev.vector == v && d.ev.has_error_code == err;
		fr.rip = RING0_VA(RING0_OFF_bench_out);
		x = vec_exit(v, err, fr, 0x1000);
		ok(rejected && dec(&x).kind == EXIT_SHIM_ERROR,
		   "vector %u in ring 0: rejected at iret, shim error elsewhere", v);
	}
	unsigned bad = 0;
	for (unsigned v = RING0_NUM_VECTORS; v < 256; v++)
		bad += vector_has_error_code(v);
	ok(!bad, "vector_has_error_code is false for vectors 32-255 (%u wrong)", bad);
}

/* kvm-pvm oddities reported as hardware would report them. */
static void test_hardware_events(void)
{
	/* regression noncanonical_pf_is_gp: a #PF whose address is in the non-canonical hole. */
	static const uint64_t holes[] = { 0x800000000000ull, 0x800000000007ull, 0xffff7fffffffffffull };
	for (unsigned i = 0; i < 3; i++) {
		struct frame fr = user;
		fr.err = 0x14;
		struct exit_view x = vec_exit(14, true, fr, holes[i]);
		struct exit_decoded d = dec(&x);
		ok(d.kind == EXIT_USER_EVENT && d.ev.type == RF_EVENT_EXCEPTION && d.ev.vector == RF_VEC_GP &&
		   d.ev.has_error_code && d.ev.error_code == 0 && from_frame(&d, &fr),
		   "#PF at non-canonical 0x%llx is reported as #GP(0)", (unsigned long long)holes[i]);
	}
	struct frame fr = user;
	fr.err = 0x4;
	struct exit_view x = vec_exit(14, true, fr, 0x7ffffffff000ull);
	struct exit_decoded d = dec(&x);
	ok(d.ev.type == RF_EVENT_PAGE_FAULT && d.ev.fault_addr == 0x7ffffffff000ull, "the top user page stays a #PF");

	/* regression compat_syscall_is_ud: SYSCALL from a 32-bit code segment faults in ring 0 at the
	 * truncated LSTAR; the user gets #UD at its syscall. */
	uint64_t lstar32 = (uint32_t)SYSCALL_VA;
	fr = (struct frame){ 0x10, lstar32, KCS, 0x2, 0x7ffffffde000, 0x10 };
	x = vec_exit(14, true, fr, lstar32);
	x.rcx = 0x401236;
	x.r11 = 0x246;
	d = dec(&x);
	ok(d.kind == EXIT_USER_EVENT && d.ev.type == RF_EVENT_EXCEPTION && d.ev.vector == RF_VEC_UD &&
	   d.ev.rip == 0x401234 && d.rip == 0x401234 && d.rflags == 0x246 && d.rsp == fr.rsp,
	   "ring-0 #PF at the 32-bit LSTAR: #UD at the user's syscall, state from rcx/r11/rsp");
	fr.rip = lstar32 + 8;
	x = vec_exit(14, true, fr, lstar32 + 8);
	shim_error(&x, "a ring-0 #PF elsewhere near the 32-bit LSTAR");
}

int main(void)
{
	test_syscall();
	test_page_fault();
	test_exceptions();
	test_ring0();
	test_hardware_events();
	test_all_vectors();
	return tap_done();
}
