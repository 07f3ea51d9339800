/* SPDX-License-Identifier: MIT */
/* Faults of the program as the signals Linux would send for them (arch/x86/kernel/traps.c and
 * fault.c): which signal, which si_code, which address, and a description for a death message. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "runtime.h"

static const char *access_name(unsigned access)
{
	return access & RF_ACCESS_EXEC ? "exec at" : access & RF_ACCESS_WRITE ? "write to" : "read from";
}

/* The first unmasked SSE exception in MXCSR, as Linux picks the si_code of a #XM. */
static int simd_code(struct rt_thread *t)
{
	const unsigned char *fpu = rf_context_fpu(t->c);
	uint32_t mxcsr = 0;
	if (fpu)
		memcpy(&mxcsr, fpu + 24, sizeof mxcsr);
	unsigned e = mxcsr & 0x3f & ~((mxcsr >> 7) & 0x3f);
	return e & 0x01 ? FPE_FLTINV : e & 0x04 ? FPE_FLTDIV : e & 0x08 ? FPE_FLTOVF : e & 0x12 ? FPE_FLTUND
	       : e & 0x20 ? FPE_FLTRES : 0;
}

void fault_to_signal(struct rt_thread *t, const struct rf_event *ev)
{
	unsigned long long rip = ev->rip;
	unsigned vec = ev->type == RF_EVENT_PAGE_FAULT ? RF_VEC_PF : ev->vector;
	t->fault_trapno = vec;
	t->fault_err = ev->has_error_code ? ev->error_code : 0;
	t->fault_cr2 = 0;
	t->proc->stats.faults++;
	if (vec == RF_VEC_PF) {
		t->fault_cr2 = ev->fault_addr;
		/* ACCERR wherever a mapping exists, PROT_NONE included, as Linux decides by the VMA. */
		bool mapped = mem_find(&t->proc->mem, ev->fault_addr) != NULL;
		snprintf(t->fault_desc, sizeof t->fault_desc, "#PF at 0x%llx (%s 0x%llx, %s)", rip,
		         access_name(ev->access), (unsigned long long)ev->fault_addr,
		         mapped ? "not permitted" : "not mapped");
		signal_force(t, SIGSEGV, mapped ? SEGV_ACCERR : SEGV_MAPERR, ev->fault_addr);
		return;
	}
	const char *name = vec <= RF_VEC_CP ? rf_vector_name(vec) : "an unknown vector";
	if (ev->has_error_code && ev->error_code)
		snprintf(t->fault_desc, sizeof t->fault_desc, "%s at 0x%llx (error code 0x%x)", name, rip, ev->error_code);
	else
		snprintf(t->fault_desc, sizeof t->fault_desc, "%s at 0x%llx", name, rip);
	switch (vec) {
	case RF_VEC_DE: signal_force(t, SIGFPE, FPE_INTDIV, rip); break;
	case RF_VEC_DB: signal_force(t, SIGTRAP, TRAP_TRACE, rip); break;
	case RF_VEC_BP: signal_force(t, SIGTRAP, SI_KERNEL, 0); break;
	case RF_VEC_UD: signal_force(t, SIGILL, ILL_ILLOPN, rip); break;
	case RF_VEC_MF: signal_force(t, SIGFPE, FPE_FLTINV, rip); break;
	case RF_VEC_XM: signal_force(t, SIGFPE, simd_code(t), rip); break;
	case RF_VEC_AC: signal_force(t, SIGBUS, BUS_ADRALN, 0); break;
	case RF_VEC_NP: case RF_VEC_SS: signal_force(t, SIGBUS, SI_KERNEL, 0); break;
	default: signal_force(t, SIGSEGV, SI_KERNEL, 0); break;   /* #GP, #OF, #BR, #TS, ... */
	}
}
