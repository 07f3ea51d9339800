/* SPDX-License-Identifier: MIT */
/* The host system calls the platform makes once rf_platform_create() has returned, as allow rules
 * for a caller's libseccomp filter (rf_seccomp_allow). Each entry says who needs it. Whatever only
 * rf_platform_create() does (opening KVM, creating the VM, the probes) is not here: a caller
 * installs its filter after the platform exists. Keep this list in step with the code: the kvm
 * test `seccomp` runs every operation under a filter made of this list alone. */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <errno.h>
#include <linux/kvm.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "platform.h"

static const int plain[] = {
	/* ---- the run loop ---- */
	SCMP_SYS(rt_sigtimedwait),  /* consume_kick: drains the kick signal after KVM_RUN's EINTR */
	SCMP_SYS(rt_sigreturn),     /* the kick signal's (empty) handler returns when it interrupts KVM_RUN */
	SCMP_SYS(rt_sigprocmask),   /* vcpu_bind_thread: blocks the kick signal in a thread's first switch */
	SCMP_SYS(gettid),           /* vcpu_thread_id: where kicks and the deadline timer are sent (once a thread) */
	SCMP_SYS(clock_gettime),    /* vcpu_now_ns: kick deadlines (the vDSO's fallback where the clock is not in it) */
	/* ---- kicks and shootdowns ---- */
	SCMP_SYS(getpid),           /* rf_kick, shootdown: tgkill's first argument (glibc caches no pid) */
	/* ---- the kick deadline: a POSIX timer per switching thread (vcpu/inject.c) ---- */
	SCMP_SYS(timer_create),     /* a thread's first armed kick */
	SCMP_SYS(timer_settime),    /* arming and disarming it */
	SCMP_SYS(timer_delete),     /* the thread-exit destructor of that timer */
	/* ---- locks: platform, address space, vCPU pool, FPU ownership, maintenance vCPU ---- */
	SCMP_SYS(futex),            /* pthread mutexes and condition variables (also pthread_once) */
	/* ---- memories, vCPUs created on demand, and destroying everything ---- */
	SCMP_SYS(memfd_create),     /* rf_memory_create: the memory's file */
	SCMP_SYS(ftruncate),        /* rf_memory_create: its size */
	SCMP_SYS(fcntl),            /* rf_memory_create: its size sealed (F_ADD_SEALS) */
	SCMP_SYS(munmap),           /* rf_memory_destroy, a vCPU's kvm_run, system memory at destroy; free() */
	SCMP_SYS(close),            /* memfds, vCPU fds, the VM and KVM fds at rf_platform_destroy */
	/* ---- the C library's allocator (contexts, address spaces, vCPUs, table lists) ---- */
	SCMP_SYS(brk),              /* the main arena grows and shrinks */
	SCMP_SYS(madvise),          /* free() gives pages of other threads' arenas back */
	SCMP_SYS(mremap),           /* realloc() of a large block (retired and dirty table lists) */
	/* ---- the exit record ---- */
	SCMP_SYS(write),            /* a fatal exit's last 64 exits to exit_log_fd */
};

/* KVM ioctls by request number (the fd is not checked: vCPU fds come and go). */
static const unsigned long kvm_requests[] = {
	KVM_RUN,                    /* every switch; the maintenance vCPU's touches (shadow MMU) */
	KVM_GET_XSAVE,              /* rf_context_fpu, and a vCPU that loads another context saves the last */
	KVM_SET_XSAVE,              /* a context's FPU image into the vCPU before it runs */
	KVM_INTERRUPT,              /* a kick injected through the interrupt window */
	KVM_SET_VCPU_EVENTS,        /* cancelling an injection; vcpu_reset after a fatal exit or a new vCPU */
	KVM_SET_SREGS,              /* vcpu_reset; configuring a vCPU created on demand */
	KVM_SET_REGS,               /* vcpu_reset */
	KVM_SET_SIGNAL_MASK,        /* a vCPU's first switch on a thread: the kick is deliverable in KVM_RUN */
	KVM_SET_USER_MEMORY_REGION, /* rf_memory_create and rf_memory_destroy: the memory's slot */
	KVM_CHECK_EXTENSION,        /* rf_memory_create: KVM_CAP_NR_MEMSLOTS bounds the slot search */
	/* A vCPU created on demand: more threads switching at once than vCPUs so far. */
	KVM_CREATE_VCPU,            /* the vCPU itself */
	KVM_SET_CPUID2,             /* its CPUID table */
	KVM_GET_SREGS,              /* its initial segment registers, then edited */
	KVM_SET_MSRS,               /* SYSCALL's MSRs pointing at the shim */
	KVM_SET_XCRS,               /* XCR0 */
};

/* Argument n's lower 32 bits equal v: what the kernel reads of an int argument (or of ioctl's
 * request word), so upper bits a caller sets cannot make a match mean something else. */
#define LOW32_EQ(n, v) ((struct scmp_arg_cmp){ .arg = (n), .op = SCMP_CMP_MASKED_EQ, \
                                               .datum_a = 0xffffffffu, .datum_b = (uint32_t)(v) })

static int add(void *filter, int nr, unsigned n, const struct scmp_arg_cmp *cmp)
{
	int r = seccomp_rule_add_array(filter, SCMP_ACT_ALLOW, nr, n, cmp);
	if (r < 0) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
		rf_error(r, "seccomp: cannot allow %s: %s", name ? name : "a syscall", strerror(-r));
		free(name);
	}
	return r;
}

/* Sanitizer builds only (ASan, UBSan, LSan): what their runtime does at exit and in a report.
 * LeakSanitizer stops the world at exit: a clone that ptraces every thread, found in
 * /proc/self/task, and reads the memory map from /proc/self/maps. None of this is in a normal build. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_LEAK__)
#define RF_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define RF_SANITIZED 1
#endif
#endif
#ifdef RF_SANITIZED
static const int sanitizer[] = {
	SCMP_SYS(clone),            /* LSan: the stop-the-world tracer */
	SCMP_SYS(ptrace),           /* LSan: the tracer attaches to each thread and reads its registers */
	SCMP_SYS(wait4),            /* LSan: waiting for stopped threads and for the tracer */
	SCMP_SYS(prctl),            /* LSan: PR_SET_PTRACER for the tracer, PR_SET_PDEATHSIG in it */
	SCMP_SYS(sched_yield),      /* LSan: spinning while the tracer works */
	SCMP_SYS(sigaltstack),      /* LSan: the tracer's signal stack */
	SCMP_SYS(rt_sigaction),     /* LSan: the tracer's handlers */
	SCMP_SYS(openat),           /* /proc/self/task, /proc/self/maps, the binary for symbols */
	SCMP_SYS(open),
	SCMP_SYS(getdents),         /* LSan: listing /proc/self/task (the old call, on x86-64) */
	SCMP_SYS(getdents64),
	SCMP_SYS(read),             /* /proc/self/maps */
	SCMP_SYS(dup),              /* LSan: the tracer moves the files it opens off fds 0-2, which a
	                             * caller may have closed (serve --fd 0:1 at its connection's end);
	                             * without it the tracer dies and exit spins forever */
	SCMP_SYS(readlink),         /* the binary's path, for a report's symbols */
	SCMP_SYS(fstat),
	SCMP_SYS(newfstatat),
	SCMP_SYS(lseek),
	SCMP_SYS(pread64),
	SCMP_SYS(exit),             /* the tracer ends */
	SCMP_SYS(exit_group),
	SCMP_SYS(kill),             /* the tracer's watchdog and an aborting report (abort_on_error) */
	SCMP_SYS(tgkill),
	SCMP_SYS(getppid),          /* the tracer watches its parent */
	SCMP_SYS(mmap),             /* the sanitizer allocator and the tracer's stack: not ours to narrow */
	SCMP_SYS(mprotect),
	SCMP_SYS(sched_getaffinity),
	SCMP_SYS(getrlimit),
	SCMP_SYS(prlimit64),
};
#endif

int rf_seccomp_allow(void *filter)
{
	int r;
#ifdef RF_SANITIZED
	for (size_t i = 0; i < sizeof sanitizer / sizeof sanitizer[0]; i++)
		if ((r = add(filter, sanitizer[i], 0, NULL)) < 0)
			return r;
#endif
	for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
		if ((r = add(filter, plain[i], 0, NULL)) < 0)
			return r;
	for (size_t i = 0; i < sizeof kvm_requests / sizeof kvm_requests[0]; i++) {
		struct scmp_arg_cmp req = LOW32_EQ(1, kvm_requests[i]);
		if ((r = add(filter, SCMP_SYS(ioctl), 1, &req)) < 0)
			return r;
	}
	/* New mappings and protections are never executable: the platform maps only data (memfds,
	 * kvm_run, the allocator's arenas, which mprotect grows). */
	struct scmp_arg_cmp noexec = SCMP_A2_64(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	if ((r = add(filter, SCMP_SYS(mmap), 1, &noexec)) < 0 || (r = add(filter, SCMP_SYS(mprotect), 1, &noexec)) < 0)
		return r;
	/* rf_kick and shootdowns: the kick signal, to a thread of this process only. */
	struct scmp_arg_cmp kick[2] = {
		LOW32_EQ(0, getpid()),
		LOW32_EQ(2, RF_KICK_SIGNAL),
	};
	if ((r = add(filter, SCMP_SYS(tgkill), 2, kick)) < 0)
		return r;
	/* restore_host_selectors (kvm-pvm): reloads FS and GS through arch_prctl, keeping their bases. */
	static const int prctl_codes[] = { ARCH_GET_FS, ARCH_SET_FS, ARCH_GET_GS, ARCH_SET_GS };
	for (size_t i = 0; i < sizeof prctl_codes / sizeof prctl_codes[0]; i++) {
		struct scmp_arg_cmp code = LOW32_EQ(0, prctl_codes[i]);
		if ((r = add(filter, SCMP_SYS(arch_prctl), 1, &code)) < 0)
			return r;
	}
	return 0;
}
