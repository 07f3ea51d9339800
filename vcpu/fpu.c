/* SPDX-License-Identifier: MIT */
/* Lazy FPU state: a context's XSAVE image stays in the vCPU that ran it until someone needs it, so
 * a syscall round trip costs no KVM_GET_XSAVE.
 *
 * Invariant, under v->fpu_lock: v->fpu_owner == c exactly when c->fpu_live == v, and then the vCPU
 * holds c's newest FPU state while c->fpu may be older. A vCPU that loads another context first
 * saves its owner's state; so a vCPU running some context never owns another one, and nobody ever
 * needs an ioctl on a vCPU that is inside KVM_RUN. */
#include <errno.h>
#include <string.h>

#include "vcpu.h"

#define XSAVE_MXCSR     24    /* legacy area offsets (standard format) */
#define XSAVE_XMM       160
#define XSAVE_XSTATE_BV 512
#define XFEATURE_SSE    2ull
#define XFEATURE_YMM    4ull
#define MXCSR_INIT      0x1f80u
#define MXCSR_RESERVED  0xffff0000u   /* reserved on every x86 CPU */

/* On hardware a guest cannot give MXCSR a reserved bit (ldmxcsr, fxrstor and xrstor raise #GP), but
 * QEMU's TCG CPU loads one from an fxrstor/xrstor image (seen in the test VM: guest_fuzz). KVM then
 * hands the bits out in KVM_GET_XSAVE and refuses them in KVM_SET_XSAVE (EINVAL), so the context
 * could never run again. They are dropped where the image is saved. */
static void fpu_drop_reserved(unsigned char *img)
{
	uint32_t mxcsr;
	memcpy(&mxcsr, img + XSAVE_MXCSR, 4);
	mxcsr &= ~MXCSR_RESERVED;
	memcpy(img + XSAVE_MXCSR, &mxcsr, 4);
}

/* Saves v's owner into its image and drops the ownership. Caller holds v->fpu_lock. */
static int save_owner(struct vcpu *v)
{
	rf_context *o = v->fpu_owner;
	if (!o)
		return 0;
	int r = 0;
	if (KVM_IOCTL(v->fd, KVM_GET_XSAVE, (struct kvm_xsave *)o->fpu) < 0)
		r = rf_error(-errno, "KVM_GET_XSAVE: %s", strerror(errno));
	else
		fpu_drop_reserved(o->fpu);
	atomic_store(&o->fpu_live, NULL);
	v->fpu_owner = NULL;
	return r;
}

/* Brings c's newest state home from whatever vCPU holds it (never a running one: see above). */
static int fetch(rf_context *c)
{
	for (;;) {
		struct vcpu *w = atomic_load(&c->fpu_live);
		if (!w)
			return 0;
		pthread_mutex_lock(&w->fpu_lock);
		int r = 0;
		if (atomic_load(&c->fpu_live) == w)
			r = save_owner(w);
		pthread_mutex_unlock(&w->fpu_lock);
		if (r < 0)
			return r;
	}
}

/* MXCSR is loaded whenever SSE or AVX is enabled, but KVM_SET_XSAVE copies it into the vCPU only
 * when the image's XSTATE_BV marks SSE or AVX state: otherwise the vCPU keeps the MXCSR of the
 * context it ran before. Spell an image's init SSE state out so that MXCSR always comes from it. */
static void fpu_sse_explicit(unsigned char *img)
{
	uint64_t bv;
	memcpy(&bv, img + XSAVE_XSTATE_BV, 8);
	if (bv & (XFEATURE_SSE | XFEATURE_YMM))
		return;
	uint32_t mxcsr = MXCSR_INIT;
	memcpy(img + XSAVE_MXCSR, &mxcsr, 4);
	memset(img + XSAVE_XMM, 0, 16 * 16);
	bv |= XFEATURE_SSE;
	memcpy(img + XSAVE_XSTATE_BV, &bv, 8);
}

int vcpu_fpu_load(struct vcpu *v, rf_context *c)
{
	if (atomic_load(&c->fpu_live) == v)
		return 0;   /* only this thread can change that now: c is busy and v is ours */
	int r = fetch(c);
	if (r < 0)
		return r;
	pthread_mutex_lock(&v->fpu_lock);
	r = save_owner(v);
	fpu_sse_explicit(c->fpu);
	if (r == 0 && KVM_IOCTL(v->fd, KVM_SET_XSAVE, (struct kvm_xsave *)c->fpu) < 0) {
		/* What KVM checks in an image, so a refusal on a host we cannot reach says which. */
		uint64_t bv, comp;
		uint32_t mxcsr;
		memcpy(&bv, (unsigned char *)c->fpu + XSAVE_XSTATE_BV, 8);
		memcpy(&comp, (unsigned char *)c->fpu + XSAVE_XSTATE_BV + 8, 8);
		memcpy(&mxcsr, (unsigned char *)c->fpu + XSAVE_MXCSR, 4);
		r = rf_error(-errno, "KVM_SET_XSAVE: %s (XSTATE_BV 0x%llx, XCOMP_BV 0x%llx, MXCSR 0x%x, XCR0 0x%llx)",
		             strerror(errno), (unsigned long long)bv, (unsigned long long)comp, mxcsr,
		             (unsigned long long)v->p->xcr0);
	}
	if (r == 0) {
		v->fpu_owner = c;
		atomic_store(&c->fpu_live, v);
	}
	pthread_mutex_unlock(&v->fpu_lock);
	return r;
}

void *rf_context_fpu(rf_context *c)
{
	/* The caller may now read or write the image, so the vCPU's copy stops being the truth. */
	if (fetch(c) < 0)
		return NULL;
	return c->fpu;
}

void vcpu_fpu_forget(rf_context *c)
{
	struct vcpu *w = atomic_load(&c->fpu_live);
	if (!w)
		return;
	pthread_mutex_lock(&w->fpu_lock);
	if (atomic_load(&c->fpu_live) == w) {
		w->fpu_owner = NULL;
		atomic_store(&c->fpu_live, NULL);
	}
	pthread_mutex_unlock(&w->fpu_lock);
}
