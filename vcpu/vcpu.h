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

/* kick.c: the guarded interrupt-window state machine. Pure (no system calls, no clock): the run
 * loop reports what it observed at an exit, the machine answers with actions, the loop applies them
 * (KA_INJECT last, then KVM_RUN with nothing written in between). Under the take-back policy it
 * first takes the user state straight from an exit where that is exact (KA_TAKE_CLEAN: the
 * predicate of docs/interrupt-injection.md, plus no single-step trap and no NMI waiting). Otherwise
 * it injects only when the injection predicate holds, never twice for one kick, requests the window
 * otherwise, and gives up on the guest at the deadline (KA_TAKE_BACK). */
enum kick_exit {
	KX_EINTR,        /* KVM_RUN returned EINTR (a signal or immediate_exit) */
	KX_WINDOW,       /* KVM_EXIT_IRQ_WINDOW_OPEN */
	KX_HLT,          /* KVM_EXIT_HLT */
	KX_EVENT,        /* the shim reported a user event: the switch is about to return it */
	KX_KICK,         /* the kick vector reached the shim from ring 3 */
	KX_KICK_RING0,   /* the kick vector interrupted ring 0 (a kernel that injected too early) */
	KX_OTHER,        /* any other exit: the predicate is not evaluated there */
};

struct kick_obs {
	enum kick_exit exit;
	bool ready;          /* kvm_run.ready_for_interrupt_injection */
	bool if_flag;        /* kvm_run.if_flag */
	bool cpl3;           /* the guest is in ring 3 and stays there if run now */
	bool shadow;         /* STI or MOV SS shadow (events.interrupt.shadow) */
	bool exc_injected, exc_pending, nmi_injected, nmi_pending, irq_injected, triple_fault;
	bool tf;             /* RFLAGS.TF in ring 3: a single-step trap may be pending */
	bool kick_wanted;    /* a kick for the running context has not been reported yet */
	bool progress;       /* the guest moved (RIP or CPL changed) since the previous exit */
	uint64_t now_ns;
};

enum kick_act {
	KA_INJECT = 1 << 0,        /* KVM_INTERRUPT(RING0_KICK_VECTOR) */
	KA_WINDOW_ON = 1 << 1,     /* request_interrupt_window = 1 */
	KA_WINDOW_OFF = 1 << 2,    /* request_interrupt_window = 0 */
	KA_REPORT = 1 << 3,        /* return RF_EVENT_INTERRUPTED, user state from the kick's frame */
	KA_TAKE_BACK = 1 << 4,     /* deadline passed: take the state without the guest, report */
	KA_CANCEL = 1 << 5,        /* drop our queued interrupt: the switch returns something else */
	KA_RESUME_RING0 = 1 << 6,  /* iretq to the ring-0 code the kick interrupted */
	KA_TIMER_ON = 1 << 7,      /* arm the deadline timer (it makes KVM_RUN return EINTR) */
	KA_TIMER_OFF = 1 << 8,
	KA_TAKE_CLEAN = 1 << 9,    /* take the user state from this exit (ring 3, nothing in flight), report */
};

struct kick_counts {
	atomic_uint_fast64_t injected, delivered, window_requests, window_exits, ring0_arrivals,
	                     cancelled;
	atomic_uint_fast64_t takebacks;   /* counted by the run loop when a take-back reports */
	atomic_uint_fast64_t clean;       /* KA_TAKE_CLEAN decisions */
};

struct kick_sm {
	bool take_back_clean;      /* the policy: take the state at a clean exit before injecting */
	bool armed;                /* working on a kick since armed_ns */
	bool timer;                /* the deadline timer is armed (whenever armed) */
	bool in_flight;            /* injected; not yet seen leaving KVM's queue */
	bool window;               /* request_interrupt_window is 1 */
	unsigned idle_windows;     /* window exits in a row without guest progress */
	uint64_t armed_ns, deadline_ns;
	struct kick_counts *counts;
};

void kick_sm_init(struct kick_sm *sm, uint64_t deadline_ns, bool take_back_clean, struct kick_counts *counts);
/* Returns KA_* bits. Call once per exit, in exit order. */
unsigned kick_sm_step(struct kick_sm *sm, const struct kick_obs *o);
/* The loop could not take the state cleanly at KA_TAKE_BACK: work on the kick for one more
 * deadline (returns KA_TIMER_ON). */
unsigned kick_sm_rearm(struct kick_sm *sm, uint64_t now_ns);
/* The injection predicate and the clean take-back predicate alone (for tests). */
bool kick_can_inject(const struct kick_sm *sm, const struct kick_obs *o);
bool kick_can_take_back(const struct kick_sm *sm, const struct kick_obs *o);

/* record.c: each vCPU's last EXIT_LOG_SIZE exits. Written only by the thread running the vCPU;
 * read when that thread reports a fatal exit. */
#define EXIT_LOG_SIZE 64
struct exit_rec {
	uint64_t seq, t_ns;
	int err;                    /* KVM_RUN's errno (EINTR), or 0 with reason */
	uint32_t reason;
	uint16_t port, cs;
	uint64_t rip, rsp, cr2, rflags, cr3;
	uint64_t tables;            /* GDT, IDT and TR bases xor the vCPU's own: 0 unless corrupted */
	uint8_t exc_nr, irq_nr, exc_injected, exc_pending, nmi_injected, nmi_pending, irq_injected, shadow;
	uint8_t ready, if_flag, kick_armed, kick_in_flight;
	unsigned kick_acts;         /* KA_* the kick machine answered at this exit */
};
struct exit_log {
	struct exit_rec r[EXIT_LOG_SIZE];
	uint64_t n;                 /* exits recorded; r[(n - 1) % SIZE] is the newest */
};
void exit_log_add(struct exit_log *log, const struct kvm_run *run, int err, const struct kvm_sregs *init);
void exit_log_kick(struct exit_log *log, unsigned acts, bool armed, bool in_flight);
int exit_rec_format(const struct exit_rec *e, uint64_t t0, char *buf, size_t len);
void exit_log_summary(const struct exit_log *log, char *buf, size_t len);
/* Writes a header naming `why` and every record, one line each, to fd (nothing if fd <= 0). */
void exit_log_dump(const struct exit_log *log, int fd, unsigned vcpu, const char *why);

struct vcpu {
	rf_platform *p;
	unsigned id;
	int fd;
	struct kvm_run *run;
	uint8_t *tables;            /* host view of this vCPU's GDT+TSS page */
	uint8_t *stack;             /* host view of its IST stack page */
	uint8_t *df_stack;          /* host view of its #DF stack page (IST2) */
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

	/* Kicks (run.c, kick.c); counters are read by rf_vcpu_stats() from any thread. */
	struct kick_sm sm;
	struct kick_counts kc;
	bool takeback_declined;     /* a take-back found no clean state: the next one resets */
	uint64_t last_rip;          /* at the last observed exit, to tell guest progress */
	unsigned last_cpl;
	struct exit_log log;
	struct {
		atomic_uint_fast64_t io, intr, window, other, requested, coalesced, immediate;
		atomic_uint_fast64_t syscall_ring0, syscall_fault;
	} ctr;
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

/* inject.c: kicks on a real vCPU. vcpu_kick_exit steps the machine at an exit (x) and applies
 * its actions: 1 = report RF_EVENT_INTERRUPTED now (*ev set), 0 = run on, <0 = error. *fresh says
 * the loop will load the context before the next entry (and may be set by a take-back). */
uint64_t vcpu_now_ns(void);   /* CLOCK_MONOTONIC in ns (the machine's clock, the floors' too) */
bool vcpu_kick_wanted(const rf_context *c);
void vcpu_kick_report(rf_context *c, struct rf_event *ev);
bool vcpu_kick_active(const struct vcpu *v, const rf_context *c);
int vcpu_kick_exit(struct vcpu *v, rf_context *c, enum kick_exit x, bool *fresh, struct rf_event *ev);
void vcpu_kick_quiesce(struct vcpu *v);

/* run.c */
int vcpu_run(struct vcpu *v, rf_context *c, rf_as *as, struct rf_event *ev);
bool vcpu_events_quiet(const struct kvm_vcpu_events *e);
/* At an exit with nothing being delivered: true when c now holds the user state (taken from ring 3,
 * or still in the frame the shim is about to iretq from). */
bool vcpu_take_back(struct vcpu *v, rf_context *c);
/* At an exit in ring 3 that the kick machine found clean: c takes the user state from it. */
void vcpu_take_user(struct vcpu *v, rf_context *c);

/* decode.c */
struct exit_view {
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
	EXIT_KICK_RING0,            /* the kick vector interrupted the shim: resume it, report later */
	EXIT_SHIM_ERROR,            /* the shim itself failed: a platform bug or a broken host */
};

/* How a syscall event reached the shim (both are decoded in every mode; counted for the probe). */
enum syscall_arrival {
	SYSCALL_NONE,
	SYSCALL_RING0,              /* SYSCALL entered ring 0 at LSTAR (its `out`, or a step trap there) */
	SYSCALL_FAULT,              /* SYSCALL stayed in ring 3 and faulted on LSTAR's page (kvm-pvm) */
};

struct exit_decoded {
	enum exit_kind kind;
	enum syscall_arrival arrival;
	struct rf_event ev;
	uint64_t rip, rsp, rflags;
	char why[96];               /* EXIT_SHIM_ERROR */
};

bool vector_has_error_code(unsigned vector);
void exit_decode(const struct exit_view *x, struct exit_decoded *d);

/* zap.c: the maintenance vCPU of a shadow-MMU platform (RING0_MAINT_VCPU, its own root with the
 * system-memory alias). A batch holds p->zap_lock from begin to end; pages are touched in the order
 * added, 512 per guest entry, each once per run of equal neighbours. end returns 0 or -errno (the
 * touch may not have happened: the caller must not trust the tables it meant to publish). */
struct zap_batch {
	rf_platform *p;
	uint64_t *list;             /* host view of the list page */
	unsigned n;
	uint64_t pages;
	int err;
};
int vcpu_zap_init(rf_platform *p);
void vcpu_zap_begin(rf_platform *p, struct zap_batch *b);
void vcpu_zap_add(struct zap_batch *b, uint64_t gpa);
int vcpu_zap_end(struct zap_batch *b);

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
