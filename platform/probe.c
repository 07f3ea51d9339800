/* SPDX-License-Identifier: MIT */
/* Start-up probe: runs one ring-3 SYSCALL to learn whether it enters ring 0 (hardware KVM) or jumps
 * to LSTAR in ring 3 and faults there (kvm-pvm), and so how syscall exits must be decoded. */
#include <errno.h>
#include <string.h>

#include "../ring0/ring0.h"
#include "platform.h"

#define PROBE_VA 0x400000ull

static int run_probe(rf_platform *p, rf_memory *m, enum rf_syscall_mode *found)
{
	rf_as *as = NULL;
	rf_context *c = NULL;
	int r;
	static const unsigned char code[] = { 0x0f, 0x05, 0x0f, 0x0b };   /* syscall; ud2 */
	memcpy(rf_memory_host(m), code, sizeof code);
	if ((r = rf_as_create(p, &as)) < 0 || (r = rf_context_create(p, &c)) < 0)
		goto out;
	if ((r = rf_as_map(as, PROBE_VA, RF_HUGE_SIZE, m, 0, RF_PROT_READ | RF_PROT_EXEC, 0)) < 0)
		goto out;
	rf_context_regs(c)->rip = PROBE_VA;
	rf_context_regs(c)->rcx = 0x1234;   /* what a stray jump to LSTAR would leave behind */
	struct rf_event ev;
	if ((r = rf_switch(c, as, &ev)) < 0)
		goto out;
	uint64_t lstar = RING0_VA(RING0_OFF_syscall);
	if (ev.type == RF_EVENT_SYSCALL && rf_context_regs(c)->rip == PROBE_VA + 2)
		*found = RF_SYSCALL_NATIVE;
	else if (ev.type == RF_EVENT_PAGE_FAULT && ev.fault_addr == lstar && ev.rip == lstar &&
	         rf_context_regs(c)->rcx == PROBE_VA + 2)
		*found = RF_SYSCALL_VIA_FAULT;
	else
		r = rf_error(-ENOTSUP, "syscall probe: SYSCALL from ring 3 gave event %d vector %u at 0x%llx",
		             ev.type, ev.vector, (unsigned long long)ev.rip);
out:
	if (c)
		rf_context_destroy(c);
	if (as)
		rf_as_destroy(as);
	return r;
}

int platform_probe_syscall(rf_platform *p)
{
	rf_memory *m;
	enum rf_syscall_mode found = RF_SYSCALL_AUTO;
	/* Decode as hardware while probing: a fault at LSTAR then shows up as the page fault it is. */
	p->mode = RF_SYSCALL_NATIVE;
	int r = rf_memory_create(p, RF_HUGE_SIZE, &m);
	if (r < 0)
		return r;
	r = run_probe(p, m, &found);
	rf_memory_destroy(m);
	if (r < 0)
		return r;
	p->mode = found;
	return 0;
}
