/* SPDX-License-Identifier: MIT */
/* Contexts: a user register file and an XSAVE image, owned by the caller between switches. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>

#include "../vcpu/vcpu.h"
#include "platform.h"

int rf_context_create(rf_platform *p, rf_context **out)
{
	rf_context *c = calloc(1, sizeof *c);
	if (!c || !(c->fpu = aligned_alloc(64, sizeof(struct kvm_xsave)))) {
		free(c);
		return rf_error(-ENOMEM, "out of memory");
	}
	memcpy(c->fpu, p->fpu_init, sizeof(struct kvm_xsave));
	c->p = p;
	c->id = atomic_fetch_add(&p->next_id, 1);
	c->regs.rflags = 0x202;
	pthread_mutex_lock(&p->lock);
	p->n_contexts++;
	pthread_mutex_unlock(&p->lock);
	*out = c;
	return 0;
}

int rf_context_destroy(rf_context *c)
{
	if (!c)
		return 0;
	if (atomic_load(&c->busy))
		return rf_error(-EBUSY, "context is being switched");
	rf_platform *p = c->p;
	vcpu_fpu_forget(c);
	pthread_mutex_lock(&p->lock);
	p->n_contexts--;
	pthread_mutex_unlock(&p->lock);
	free(c->fpu);
	free(c);
	return 0;
}

struct rf_regs *rf_context_regs(rf_context *c)
{
	return &c->regs;
}
