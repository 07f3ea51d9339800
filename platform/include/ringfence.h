/* SPDX-License-Identifier: MIT */
/* ringfence: run untrusted native code in guest ring 3 on KVM and get back its syscalls and faults.
 *
 * Contracts (the whole public API; nothing of KVM shows here):
 * - Every function that can fail returns 0 or a negative errno; rf_last_error() then gives a
 *   sentence saying what failed, for the calling thread. Nothing here exits or aborts.
 * - Handles are opaque. A platform outlives everything made from it: destroy memories, address
 *   spaces and contexts first (destroying a platform with any left is refused with -EBUSY).
 * - Threads: any number of threads may call rf_switch() at once on different contexts; one context
 *   is switched by at most one thread at a time (-EBUSY otherwise). Address-space calls may come from
 *   any thread at any time, also while the address space is running: when rf_as_unmap() or
 *   rf_as_protect() returns, no vCPU can still use the old translation.
 * - A context's registers (rf_context_regs) and FPU state (rf_context_fpu) belong to the caller
 *   between switches and must not be touched while a switch of that context is running.
 * - Threads that call rf_switch() keep ringfence's kick signal (RF_KICK_SIGNAL) blocked; it is only
 *   deliverable inside KVM_RUN, so it can never be lost between two runs.
 */
#ifndef RINGFENCE_H
#define RINGFENCE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rf_platform rf_platform;
typedef struct rf_memory rf_memory;
typedef struct rf_as rf_as;
typedef struct rf_context rf_context;

/* The host signal used to take a vCPU back from the guest (address-space shootdowns, kicks). */
#define RF_KICK_SIGNAL (SIGRTMIN + 3)

/* How a ring-3 SYSCALL reaches the shim on this host (decided by a probe guest at start-up). */
enum rf_syscall_mode {
	RF_SYSCALL_AUTO = 0,     /* option only: probe and pick */
	RF_SYSCALL_NATIVE,       /* hardware KVM: SYSCALL enters ring 0 at LSTAR */
	RF_SYSCALL_VIA_FAULT,    /* kvm-pvm: SYSCALL jumps to LSTAR in ring 3 and faults on its page */
};

/* Whether KVM sees ringfence's page-table edits by itself (decided by a probe guest at start-up). */
enum rf_mmu {
	RF_MMU_AUTO = 0,     /* option only: probe and pick */
	RF_MMU_DIRECT,       /* EPT/NPT: the CPU walks the guest's tables; an edit plus a TLB flush is seen */
	RF_MMU_SHADOW,       /* KVM's shadow MMU (kvm-pvm, npt=0/ept=0): host edits are invisible until
	                      * guest ring 0 touches each changed table page; ringfence does that before
	                      * rf_as_map/unmap/protect return. As an option: do it even where not needed */
};

/* How rf_kick takes a running context back (see rf_kick). */
enum rf_kick_policy {
	RF_KICK_DEFAULT = 0,     /* option only: RF_KICK_TAKE_BACK */
	RF_KICK_TAKE_BACK,       /* at the kick's exit, take the user state straight from the vCPU when
	                          * that is exact; inject through the interrupt window otherwise */
	RF_KICK_INJECT,          /* always inject through the interrupt window and report from the
	                          * kick's frame (one more guest entry and exit) */
};

struct rf_platform_options {
	unsigned max_vcpus;                /* 0: twice the host CPUs, at least 2 */
	enum rf_syscall_mode syscall_mode; /* AUTO unless a test forces one path */
	const char *kvm_path;              /* NULL: /dev/kvm */
	uint64_t kick_deadline_ns;         /* 0: 20 ms. A kick the guest cannot take by then is
	                                    * completed without it (see rf_kick) */
	enum rf_mmu mmu;                   /* AUTO, or SHADOW to force the shadow-MMU path (tests);
	                                    * DIRECT cannot be forced: it would be unsafe where wrong */
	enum rf_kick_policy kick_policy;
	int exit_log_fd;                   /* > 0: a fatal exit (triple fault, failed entry, KVM internal
	                                    * error, shim error) writes its vCPU's last 64 exits here, one
	                                    * line each; 0: none. The error sentence always has the last 3 */
	int kvm_fd;                        /* > 0: an open /dev/kvm to use instead of opening kvm_path, so
	                                    * a caller can drop the right to open it first. The platform
	                                    * works on its own duplicate: the caller keeps kvm_fd and may
	                                    * close it once rf_platform_create has returned */
};

struct rf_platform_info {
	enum rf_syscall_mode syscall_mode; /* how the probe saw SYSCALL arrive (both ways are decoded) */
	enum rf_mmu mmu;
	enum rf_kick_policy kick_policy;
	unsigned max_vcpus;
	unsigned vcpus_created;
	uint64_t mmu_flushes;              /* SHADOW: guest ring-0 runs that touched changed tables */
	uint64_t mmu_pages_touched;        /* SHADOW: table pages touched by them */
	size_t fpu_size;                   /* bytes of the XSAVE image behind rf_context_fpu() */
	uint64_t xcr0;                     /* FPU/SSE/AVX state components enabled in the guest */
};

int rf_platform_create(const struct rf_platform_options *opts, rf_platform **out);
int rf_platform_destroy(rf_platform *p);
void rf_platform_info(const rf_platform *p, struct rf_platform_info *info);

/* Adds to a libseccomp filter (a scmp_filter_ctx, which libseccomp defines as void *, so this
 * header needs no libseccomp) allow rules for every host syscall the platform makes after
 * rf_platform_create has returned: switches, kicks, shootdowns, creating and destroying memories,
 * address spaces and contexts, vCPUs created on demand, the kick deadline timer, statistics and
 * rf_platform_destroy. KVM ioctls are allowed by request number; mmap and mprotect only without
 * PROT_EXEC; tgkill only with the kick signal to the calling process (build the filter in the
 * process that loads it). Creating a platform is not covered: create first, then load the filter.
 * The caller adds its own syscalls (exit_group, thread exits, its I/O) and chooses the default
 * action. In a sanitizer build (ASan, UBSan, LSan) it also allows what the sanitizer runtime needs
 * to report and check for leaks at exit. 0, or a negative errno (see rf_last_error). */
int rf_seccomp_allow(void *filter);

/* The calling thread's description of the last error ringfence returned to it. */
const char *rf_last_error(void);

/* ---- memory: guest-physical memory backed by a memfd the caller may also map and write ---- */
int rf_memory_create(rf_platform *p, uint64_t size, rf_memory **out);  /* size: multiple of 2 MiB */
int rf_memory_destroy(rf_memory *m);      /* -EBUSY while any address space maps it */
/* Sealed at its size (F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_SEAL): safe to hand to a less trusted
 * process, which can map it and write it but cannot shrink it under the platform's mapping. */
int rf_memory_fd(const rf_memory *m);
void *rf_memory_host(const rf_memory *m); /* the platform's shared mapping of the whole file */
uint64_t rf_memory_size(const rf_memory *m);

/* ---- address spaces: user half only (0 .. 2^47); everything above is the supervisor shim ---- */
#define RF_PROT_READ  1u
#define RF_PROT_WRITE 2u   /* implies read (x86 paging has no write-only pages) */
#define RF_PROT_EXEC  4u   /* implies read */
#define RF_MAP_HUGE   1u   /* use 2 MiB pages: va, offset and length 2 MiB aligned */
#define RF_PAGE_SIZE  4096ull
#define RF_HUGE_SIZE  (2ull << 20)
#define RF_USER_END   0x800000000000ull

int rf_as_create(rf_platform *p, rf_as **out);
int rf_as_destroy(rf_as *as);             /* -EBUSY while a switch runs in it */
/* Maps [va, va+len) to [offset, offset+len) of m. Replaces what was there (like MAP_FIXED). */
int rf_as_map(rf_as *as, uint64_t va, uint64_t len, rf_memory *m, uint64_t offset,
              unsigned prot, unsigned flags);
int rf_as_unmap(rf_as *as, uint64_t va, uint64_t len);
/* Changes protection of mapped pages; -ENOMEM if part of the range is not mapped (nothing changed). */
int rf_as_protect(rf_as *as, uint64_t va, uint64_t len, unsigned prot);

/* ---- contexts: a user register state ---- */
/* The user state a context carries. CS and SS are always the platform's 64-bit user selectors. DS,
 * ES, FS and GS selectors are not carried: in 64-bit mode they hold nothing but the FS/GS bases,
 * which are; whatever user code loads into them is reset to the platform's at every switch, so no
 * context ever sees another's. rf_switch refuses non-canonical FS/GS bases (-EINVAL), as WRFSBASE
 * and WRMSR would. Reported RFLAGS hold only bits user code can own, with IF and bit 1 set. */
struct rf_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
	uint64_t fs_base, gs_base;
};

int rf_context_create(rf_platform *p, rf_context **out);
int rf_context_destroy(rf_context *c);    /* -EBUSY while it is being switched */
struct rf_regs *rf_context_regs(rf_context *c);
/* The FPU/SSE/AVX state in standard (non-compacted) XSAVE layout, fpu_size bytes. Switches leave the
 * state in the vCPU (no copy per round trip); this call brings it home, and the caller may then read
 * and write the image until the next switch of c, which loads it. Call it again after every switch
 * rather than keeping the pointer's contents. NULL if the state could not be read (rf_last_error). */
void *rf_context_fpu(rf_context *c);

/* ---- switching ---- */
enum rf_event_type {
	RF_EVENT_SYSCALL = 1,  /* rax = number, rdi..r9 = args; rip is after the instruction; rcx/r11 clobbered */
	RF_EVENT_PAGE_FAULT,   /* fault_addr, access, present */
	RF_EVENT_EXCEPTION,    /* any other vector, with error code where the CPU pushes one */
	RF_EVENT_INTERRUPTED,  /* taken back by a kick */
};

#define RF_ACCESS_READ  1u
#define RF_ACCESS_WRITE 2u
#define RF_ACCESS_EXEC  4u

/* Exception vectors (x86 numbering). */
enum {
	RF_VEC_DE = 0, RF_VEC_DB = 1, RF_VEC_NMI = 2, RF_VEC_BP = 3, RF_VEC_OF = 4, RF_VEC_BR = 5,
	RF_VEC_UD = 6, RF_VEC_NM = 7, RF_VEC_DF = 8, RF_VEC_TS = 10, RF_VEC_NP = 11, RF_VEC_SS = 12,
	RF_VEC_GP = 13, RF_VEC_PF = 14, RF_VEC_MF = 16, RF_VEC_AC = 17, RF_VEC_MC = 18, RF_VEC_XM = 19,
	RF_VEC_VE = 20, RF_VEC_CP = 21,
};

/* Events are reported as hardware reports them. Where a host does not let the platform tell, the
 * host's event is passed on as it is (docs/kvm-hosts.md):
 * - kvm-pvm raises #UD (error 0, RIP at the instruction) for `int n` with n other than 3 and 4,
 *   where hardware raises #GP(n * 8 + 2); either way no gate was entered.
 * - kvm-pvm reports `icebp` (0xf1) as #DB with RIP at the instruction, not after it.
 * - QEMU's TCG (the test VM) raises no #AC and no #XM, and #GP where hardware raises #SS.
 * Translated, so callers see the hardware's event: kvm-pvm's #PF in the non-canonical hole is #GP(0);
 * its SYSCALL from 32-bit code that a ring-3 iretq loaded is the #UD Intel raises there. */
struct rf_event {
	enum rf_event_type type;
	uint8_t vector;          /* for PAGE_FAULT and EXCEPTION */
	bool has_error_code;
	uint32_t error_code;
	uint64_t fault_addr;     /* PAGE_FAULT: the address (CR2) */
	unsigned access;         /* PAGE_FAULT: RF_ACCESS_* of the faulting access */
	bool present;            /* PAGE_FAULT: true for a protection fault, false for not-present */
	uint64_t rip;            /* where the event happened (for a syscall: the syscall instruction) */
};

/* Runs c in as on a vCPU until the next event. On return 0, *ev says what happened and c's registers
 * (and, through rf_context_fpu, its FPU state) are the user's state at the event: for faults at the
 * faulting instruction, so a plain re-switch retries it; for traps (#BP, #OF, a single-step #DB) and
 * syscalls after the instruction, as the CPU reports them. Negative errno: the platform failed (see
 * rf_last_error); c's state is then the state it was switched in with. */
int rf_switch(rf_context *c, rf_as *as, struct rf_event *ev);

const char *rf_vector_name(unsigned vector);

/* ---- kicks: taking a context back from the guest ---- */
/* Makes the switch running c return RF_EVENT_INTERRUPTED as soon as the guest can take an
 * interrupt; if c is not running, its next switch returns RF_EVENT_INTERRUPTED at once without
 * entering the guest. Callable from any thread and from a signal handler (async-signal-safe).
 * Kicks coalesce: one report covers every kick made before it, and none made before it is
 * reported again. A kick is only ever reported by c's switches. Returns 0.
 * The kick is an interrupt injected only when the guest is in ring 3 with IF=1 and nothing is
 * being delivered; a guest that cannot take one within kick_deadline_ns is taken back without its
 * help. Either way the state reported is the user's exact state at an instruction boundary. */
int rf_kick(rf_context *c);

/* Per-vCPU statistics, counted since the vCPU was created. */
struct rf_vcpu_stats {
	uint64_t exits_io, exits_intr, exits_window, exits_other;  /* KVM_RUN returns by reason */
	uint64_t kicks_requested;    /* rf_kick() calls that found a context running on this vCPU */
	uint64_t kicks_coalesced;    /* ... of which a kick was still outstanding */
	uint64_t kicks_injected;     /* KVM_INTERRUPT calls */
	uint64_t kicks_delivered;    /* kick interrupts reaching the shim from ring 3 */
	uint64_t kicks_immediate;    /* reported at switch start, without entering the guest */
	uint64_t window_requests, window_exits;
	uint64_t ring0_arrivals;     /* kick interrupts delivered in ring 0: 0 on a correct kernel */
	uint64_t deadline_takebacks; /* kicks completed without the guest's help */
	uint64_t kicks_taken_clean;  /* kicks reported from a clean exit, without an injection */
	uint64_t injections_cancelled;
	uint64_t syscalls_ring0;     /* SYSCALL entered ring 0 at LSTAR (hardware; kvm-pvm emulating ring 3) */
	uint64_t syscalls_fault;     /* SYSCALL faulted at LSTAR in ring 3 (kvm-pvm), or a jump there */
};
/* -ENOENT if vCPU `vcpu` has not been created (see rf_platform_info().vcpus_created). */
int rf_vcpu_stats(const rf_platform *p, unsigned vcpu, struct rf_vcpu_stats *out);

#ifdef __cplusplus
}
#endif

#endif
