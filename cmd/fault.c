/* SPDX-License-Identifier: MIT */
/* Faults and exceptions of a run program: the message, and the signal Linux would have killed it with. */
#include <signal.h>
#include <stdio.h>

#include "cmd.h"
#include "ringfence.h"

/* Linux's choices in arch/x86/kernel/traps.c; vectors not listed (and any from a future CPU) get
 * SIGSEGV, which is what the kernel gives most of them. */
static const int vector_signal[] = {
	[RF_VEC_DE] = SIGFPE,  [RF_VEC_DB] = SIGTRAP, [RF_VEC_BP] = SIGTRAP, [RF_VEC_OF] = SIGSEGV,
	[RF_VEC_BR] = SIGSEGV, [RF_VEC_UD] = SIGILL,  [RF_VEC_NM] = SIGSEGV, [RF_VEC_DF] = SIGSEGV,
	[RF_VEC_TS] = SIGSEGV, [RF_VEC_NP] = SIGBUS,  [RF_VEC_SS] = SIGBUS,  [RF_VEC_GP] = SIGSEGV,
	[RF_VEC_PF] = SIGSEGV, [RF_VEC_MF] = SIGFPE,  [RF_VEC_AC] = SIGBUS,  [RF_VEC_MC] = SIGBUS,
	[RF_VEC_XM] = SIGFPE,  [RF_VEC_VE] = SIGSEGV, [RF_VEC_CP] = SIGSEGV,
};

static int signal_of(unsigned vector)
{
	if (vector < sizeof vector_signal / sizeof vector_signal[0] && vector_signal[vector])
		return vector_signal[vector];
	return SIGSEGV;
}

static const char *access_name(unsigned access)
{
	return access & RF_ACCESS_EXEC ? "exec at" : access & RF_ACCESS_WRITE ? "write to" : "read from";
}

/* The platform names the architectural vectors only; say which one any other was. */
static const char *vector_name(unsigned vector, char buf[16])
{
	if (vector <= RF_VEC_CP)
		return rf_vector_name(vector);
	snprintf(buf, 16, "vector %u", vector);
	return buf;
}

int fault_report(const char *prog, const struct rf_event *ev)
{
	char buf[16];
	unsigned vector = ev->type == RF_EVENT_PAGE_FAULT ? RF_VEC_PF : ev->vector;
	unsigned long long rip = ev->rip;
	if (vector == RF_VEC_PF)
		cmd_fail(0, "%s: #PF at 0x%llx (%s 0x%llx, %s)", prog, rip, access_name(ev->access),
		         (unsigned long long)ev->fault_addr, ev->present ? "not permitted" : "not mapped");
	else if (ev->has_error_code && ev->error_code)
		cmd_fail(0, "%s: %s at 0x%llx (error code 0x%x)", prog, vector_name(vector, buf), rip,
		         ev->error_code);
	else
		cmd_fail(0, "%s: %s at 0x%llx", prog, vector_name(vector, buf), rip);
	return RUN_EXIT_SIGNAL + signal_of(vector);
}
