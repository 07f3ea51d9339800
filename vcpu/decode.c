/* SPDX-License-Identifier: MIT */
/* Turns a shim exit (the port of its `out` and the IST frame) into the event the caller sees. */
#include <stdio.h>
#include <string.h>

#include "../ring0/ring0.h"
#include "vcpu.h"

bool vector_has_error_code(unsigned vector)
{
	switch (vector) {
	case 8: case 10: case 11: case 12: case 13: case 14: case 17: case 21: case 29: case 30:
		return true;
	default:
		return false;
	}
}

static void page_fault(struct rf_event *ev, uint64_t cr2)
{
	ev->type = RF_EVENT_PAGE_FAULT;
	ev->fault_addr = cr2;
	ev->present = ev->error_code & 1;
	if (ev->error_code & (1u << 4))
		ev->access = RF_ACCESS_EXEC;
	else if (ev->error_code & (1u << 1))
		ev->access = RF_ACCESS_WRITE;
	else
		ev->access = RF_ACCESS_READ;
}

static void shim_error(struct exit_decoded *d, const char *what, uint64_t a, uint64_t b)
{
	d->kind = EXIT_SHIM_ERROR;
	snprintf(d->why, sizeof d->why, "%s (0x%llx, 0x%llx)", what, (unsigned long long)a,
	         (unsigned long long)b);
}

/* KVM reports a PIO exit with RIP still at the `out` (it skips the instruction on the next
 * KVM_RUN, unless the host moved RIP meanwhile, as the run loop always does); accept after too. */
static bool at_stub(uint64_t rip, uint64_t stub)
{
	return rip == stub || rip == stub + 2;
}

/* The syscall event, with RCX and R11 as SYSCALL left them (the user's next RIP and RFLAGS). */
static void syscall_event(const struct exit_view *x, struct exit_decoded *d, uint64_t rsp,
                          enum syscall_arrival how)
{
	d->kind = EXIT_USER_EVENT;
	d->arrival = how;
	d->ev = (struct rf_event){ .type = RF_EVENT_SYSCALL, .rip = x->rcx - 2 };
	d->rip = x->rcx;
	d->rflags = x->r11;
	d->rsp = rsp;
}

static void decode_syscall_port(const struct exit_view *x, struct exit_decoded *d)
{
	/* SYSCALL entered ring 0 at LSTAR: always on hardware, and on kvm-pvm once it emulates ring 3
	 * (after an iretq to a non-canonical RSP). Ring 3 cannot get here any other way: the gates
	 * point elsewhere and the page is supervisor-only, so this is a syscall in every mode. */
	if ((x->cs & 3) != 0 || !at_stub(x->rip, RING0_VA(RING0_OFF_syscall)))
		return shim_error(d, "syscall exit where none can happen", x->rip, x->cs);
	syscall_event(x, d, x->rsp, SYSCALL_RING0);
}

/* The user's RIP, RFLAGS and RSP from an interrupt frame (rip, cs, rflags, rsp, ss). */
static void from_frame(struct exit_decoded *d, const uint64_t *f)
{
	d->rip = f[0];
	d->rflags = f[2];
	d->rsp = f[3];
}

/* The kick from ring 3: a frame at the usual place (RSP0 = the IST top), nothing else to decode. */
static void decode_kick(const struct exit_view *x, struct exit_decoded *d)
{
	if ((x->cs & 3) != 0 || x->rsp != x->stack_top_va - RING0_FRAME_OFF ||
	    !at_stub(x->rip, RING0_VA(RING0_OFF_kick_user)))
		return shim_error(d, "kick exit with an unexpected stack or RIP", x->rsp, x->rip);
	const uint64_t *f = x->stack_top - RING0_FRAME_OFF / 8;
	if ((f[1] & 3) != 3)
		return shim_error(d, "kick exit with a ring-0 frame", f[1], f[0]);
	d->kind = EXIT_USER_EVENT;
	d->ev = (struct rf_event){ .type = RF_EVENT_INTERRUPTED, .vector = RING0_KICK_VECTOR, .rip = f[0] };
	from_frame(d, f);
}

/* The kick interrupted ring 0: its frame sits below whatever the shim was using, on the same page. */
static void decode_kick_ring0(const struct exit_view *x, struct exit_decoded *d)
{
	uint64_t low = x->stack_top_va - 4096;
	if ((x->cs & 3) != 0 || x->rsp < low || x->rsp > x->stack_top_va - RING0_FRAME_OFF || (x->rsp & 7) ||
	    !at_stub(x->rip, RING0_VA(RING0_OFF_kick_ring0)))
		return shim_error(d, "ring-0 kick exit with an unexpected stack or RIP", x->rsp, x->rip);
	const uint64_t *f = x->stack_top - (x->stack_top_va - x->rsp) / 8;
	if ((f[1] & 3) != 0)
		return shim_error(d, "ring-0 kick exit with a user frame", f[1], f[0]);
	d->kind = EXIT_KICK_RING0;
	d->rip = f[0];
}

void exit_decode(const struct exit_view *x, struct exit_decoded *d)
{
	memset(d, 0, sizeof *d);
	if (x->port == RING0_PORT_SYSCALL)
		return decode_syscall_port(x, d);
	if (x->port == RING0_PORT_VECTOR + RING0_KICK_VECTOR)
		return decode_kick(x, d);
	if (x->port == RING0_PORT_KICK0)
		return decode_kick_ring0(x, d);
	if (x->port < RING0_PORT_VECTOR || x->port >= RING0_PORT_VECTOR + RING0_NUM_VECTORS)
		return shim_error(d, "exit on an unknown port", x->port, x->rip);

	unsigned vector = x->port - RING0_PORT_VECTOR;
	bool err = vector_has_error_code(vector);
	/* The frame must be exactly where IST1 puts it; anything else means the shim was entered
	 * some other way and nothing on the stack can be trusted. */
	uint64_t want_rsp = x->stack_top_va - RING0_FRAME_OFF - (err ? 8 : 0);
	if ((x->cs & 3) != 0 || x->rsp != want_rsp ||
	    !at_stub(x->rip, RING0_VA(RING0_OFF_vec_0) + vector * RING0_VEC_STRIDE))
		return shim_error(d, "vector exit with an unexpected stack or RIP", x->rsp, x->rip);

	const uint64_t *f = x->stack_top - RING0_FRAME_OFF / 8; /* rip, cs, rflags, rsp, ss */
	d->ev.vector = vector;
	d->ev.has_error_code = err;
	d->ev.error_code = err ? (uint32_t)f[-1] : 0;
	d->ev.rip = f[0];
	from_frame(d, f);

	if ((f[1] & 3) == 0 && vector == 1 && f[0] == RING0_VA(RING0_OFF_syscall)) {
		/* User code single-stepped into SYSCALL, which entered ring 0: the trap comes before
		 * the stub's first instruction. RCX/R11 still hold the user's RIP and RFLAGS (with TF),
		 * so this is the syscall; the step trap follows in ring 3 after it returns. */
		return syscall_event(x, d, f[3], SYSCALL_RING0);
	}
	if ((f[1] & 3) == 0 && vector == 14 && f[0] == x->cr2 && x->cr2 == (uint32_t)RING0_VA(RING0_OFF_syscall)) {
		/* kvm-pvm lets a ring-3 iretq load a 32-bit code segment; a SYSCALL from there enters
		 * ring 0 at LSTAR cut to 32 bits and faults on the fetch. Hardware with Intel's rules
		 * raises #UD for SYSCALL outside 64-bit mode, and that is what the caller gets: the
		 * fault at the instruction, with the state SYSCALL saved (RCX, R11, RSP untouched). */
		d->kind = EXIT_USER_EVENT;
		d->ev = (struct rf_event){ .type = RF_EVENT_EXCEPTION, .vector = RF_VEC_UD, .rip = x->rcx - 2 };
		d->rip = x->rcx - 2;
		d->rflags = x->r11;
		d->rsp = f[3];
		return;
	}
	if ((f[1] & 3) == 0) {
		/* Ring 0 faulted. The only instruction allowed to is the iretq that loads the user's
		 * state (a non-canonical RIP, say): the user's state is then still the context's. */
		if (f[0] == RING0_VA(RING0_OFF_iret) || f[0] == RING0_VA(RING0_OFF_flush_iretq)) {
			d->kind = EXIT_USER_REJECTED;
			d->ev.type = vector == 14 ? RF_EVENT_PAGE_FAULT : RF_EVENT_EXCEPTION;
			if (vector == 14)
				page_fault(&d->ev, x->cr2);
			return;
		}
		return shim_error(d, "exception in the shim", vector, f[0]);
	}

	d->kind = EXIT_USER_EVENT;
	if (vector == 14 && x->cr2 == RING0_VA(RING0_OFF_syscall) && f[0] == x->cr2) {
		/* kvm-pvm: SYSCALL jumped to LSTAR in ring 3 and faulted there. RCX/R11 were set by the
		 * SYSCALL; a program that jumps here itself, on any host, only gets a syscall it could
		 * have made (to the RCX it chose, with the flags in its R11). */
		return syscall_event(x, d, f[3], SYSCALL_FAULT);
	}
	if (vector == 14 && x->cr2 >= RF_USER_END && x->cr2 < ~(RF_USER_END - 1)) {
		/* kvm-pvm reports an access that runs into the non-canonical hole (a read across
		 * 0x7fffffffffff, code running off the top of user space) as a #PF there; hardware
		 * raises #GP(0), and so does this. */
		d->ev.type = RF_EVENT_EXCEPTION;
		d->ev.vector = RF_VEC_GP;
		d->ev.error_code = 0;
		return;
	}
	if (vector == 14)
		page_fault(&d->ev, x->cr2);
	else
		d->ev.type = RF_EVENT_EXCEPTION;
}
