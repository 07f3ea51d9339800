/* SPDX-License-Identifier: MIT */
/* vcpu: KVM vCPUs, the pool that lends them to switching threads, and the run loop.
 *
 * Contracts:
 * - Every KVM ioctl goes through KVM_IOCTL(), which checks at compile time that the argument's type
 *   has the size the request number encodes.
 * - A vCPU belongs to one thread between vcpu_acquire() and vcpu_release(); a thread gets back the
 *   vCPU it used last when it is free, because moving a vCPU between threads costs an RCU grace
 *   period in KVM.
 * - The run loop (run.c) writes guest registers only when the vCPU sits in the shim after an `out`
 *   exit, or at an EINTR exit with no event being delivered (KVM_SET_REGS would drop a pending
 *   exception); it never changes registers between an interrupt injection and the next KVM_RUN.
 * - exit decoding (decode.c) is pure: it turns what KVM reported plus the IST frame into an event,
 *   so unit tests feed it synthetic exits.
 */
#ifndef RINGFENCE_VCPU_H
#define RINGFENCE_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/types.h>

#include "../platform/platform.h"

#define KVM_IOCTL(fd, req, argp)                                                        \
	({                                                                              \
		_Static_assert(_IOC_SIZE(req) == sizeof(*(argp)), "ioctl argument size"); \
		ioctl((fd), (req), (argp));                                             \
	})
#define KVM_IOCTL_NOARG(fd, req, val)                                                   \
	({                                                                              \
		_Static_assert(_IOC_SIZE(req) == 0, "ioctl takes no struct");          \
		ioctl((fd), (req), (val));                                              \
	})

struct vcpu {
	rf_platform *p;
	unsigned id;
	int fd;
	struct kvm_run *run;
	uint8_t *tables;            /* host view of this vCPU's GDT+TSS page */
	uint8_t *stack;             /* host view of its IST stack page */
	uint64_t stack_top_va;

	/* What the guest currently has loaded, so unchanged state is not written again. */
	bool at_shim;               /* in ring 0 at a stub after its `out`: a frame resume is possible */
	uint64_t loaded_as_id;      /* 0: none */
	uint64_t loaded_gen;
	pthread_mutex_t fpu_lock;   /* fpu_owner and its fpu_live (see fpu.c) */
	rf_context *fpu_owner;      /* whose newest FPU state this vCPU holds, or NULL */
	struct kvm_sregs init_sregs; /* ring 0, idle root: what a reset vCPU starts from */
	pid_t sigmask_tid;          /* thread whose signal mask KVM_SET_SIGNAL_MASK was computed for */

	/* Shared with shootdowns in other threads. */
	_Atomic(rf_as *) running_as;
	atomic_uint_fast64_t ack_gen;
	atomic_int tid;

	bool busy;                  /* pool, under p->lock */
};

/* vcpu.c */
int vcpu_create(rf_platform *p, unsigned id, struct vcpu **out);
void vcpu_destroy(struct vcpu *v);
int vcpu_acquire(rf_platform *p, struct vcpu **out);
void vcpu_release(struct vcpu *v);
/* Makes the calling thread fit to run v: kick signal blocked, v's run-time signal mask set. */
int vcpu_bind_thread(struct vcpu *v);
pid_t vcpu_thread_id(void);   /* the calling thread's id, cached */
/* Puts v back into its initial state after a failed run (unknown guest state). */
int vcpu_reset(struct vcpu *v);

/* fpu.c: lazy FPU state. Load c's state into v (v owned by the caller, c busy); forget c's
 * ownership before c is freed. rf_context_fpu() (public) brings the state home. */
int vcpu_fpu_load(struct vcpu *v, rf_context *c);
void vcpu_fpu_forget(rf_context *c);

/* run.c */
int vcpu_run(struct vcpu *v, rf_context *c, rf_as *as, struct rf_event *ev);

/* decode.c */
struct exit_view {
	enum rf_syscall_mode mode;
	uint16_t port;              /* of the `out` that exited */
	uint64_t rip, rsp, rcx, r11;
	uint16_t cs;                /* selector at the exit */
	uint64_t cr2;
	const uint64_t *stack_top;  /* host pointer just past the IST stack */
	uint64_t stack_top_va;
};

enum exit_kind {
	EXIT_USER_EVENT,            /* *ev and the user rip/rsp/rflags below are valid */
	EXIT_USER_REJECTED,         /* iretq refused the user state: *ev valid, state is the context's */
	EXIT_SHIM_ERROR,            /* the shim itself failed: a platform bug or a broken host */
};

struct exit_decoded {
	enum exit_kind kind;
	struct rf_event ev;
	uint64_t rip, rsp, rflags;
	char why[96];               /* EXIT_SHIM_ERROR */
};

bool vector_has_error_code(unsigned vector);
void exit_decode(const struct exit_view *x, struct exit_decoded *d);

/* floor.c: benchmark floors on a raw vCPU borrowed from the pool (for `ringfence bench`). Each
 * runs warmup untimed round trips, then fills ns[0..n) with the CLOCK_MONOTONIC nanoseconds of
 * batch consecutive round trips per sample, and hands the vCPU back reset. 0 or -errno.
 * - out: ring 0 parked at ring0_bench_out, one KVM_RUN per `out` on RING0_PORT_BENCH.
 * - fault: a ring-3 fault -> vector stub `out` -> host points RIP/RSP at ring0_iret -> iretq.
 *   vector RF_VEC_DE is the floor (KVM never intercepts #DE); RF_VEC_UD shows what KVM's #UD
 *   intercept adds. */
int vcpu_floor_out(rf_platform *p, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n);
int vcpu_floor_fault(rf_platform *p, unsigned vector, unsigned warmup, unsigned batch, uint64_t *ns,
                     unsigned n);
/* end floor.c */

#endif
