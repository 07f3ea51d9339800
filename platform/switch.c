/* SPDX-License-Identifier: MIT */
/* rf_switch: borrows a vCPU, binds the calling thread to it, and runs the context until an event. */
#include <errno.h>

#include "../vcpu/vcpu.h"
#include "platform.h"

static bool canonical(uint64_t a)
{
	return a < RF_USER_END || a >= ~(RF_USER_END - 1);
}

int rf_switch(rf_context *c, rf_as *as, struct rf_event *ev)
{
	if (!c || !as || !ev || c->p != as->p)
		return rf_error(-EINVAL, "switch needs a context and an address space of one platform");
	/* Hardware refuses these in WRFSBASE and WRMSR; loading one by hand could not be resumed. */
	if (!canonical(c->regs.fs_base) || !canonical(c->regs.gs_base))
		return rf_error(-EINVAL, "non-canonical FS base 0x%llx or GS base 0x%llx",
		                (unsigned long long)c->regs.fs_base, (unsigned long long)c->regs.gs_base);
	if (atomic_load(&c->p->unsafe))
		return rf_error(-EIO, "a page-table change could not be made visible to KVM's shadow MMU earlier: "
		                      "this platform refuses to run guests (see rf_as_map/unmap/protect errors)");
	if (atomic_exchange(&c->busy, 1))
		return rf_error(-EBUSY, "context is already being switched by another thread");
	atomic_fetch_add(&as->running, 1);
	struct vcpu *v;
	int r = vcpu_acquire(c->p, &v);
	if (r == 0) {
		if ((r = vcpu_bind_thread(v)) == 0)
			r = vcpu_run(v, c, as, ev);
		vcpu_release(v);
	}
	atomic_fetch_sub(&as->running, 1);
	atomic_store(&c->busy, 0);
	return r;
}
