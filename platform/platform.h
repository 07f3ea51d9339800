/* SPDX-License-Identifier: MIT */
/* platform: internal contracts between the files of platform/ (the public API is ringfence.h).
 *
 * - Guest-physical memory: slot 0 is the platform's "system" memory at GPA 0 (shim text, IDT, vCPU
 *   tables and stacks, page tables), host-mapped privately and never visible to user code. Each
 *   rf_memory is its own memslot at or above RF_USER_GPA_BASE, 2 MiB aligned.
 * - Page tables (pagetable.c) are pure: they touch memory only through struct pt_mem, so unit tests
 *   run them on plain host memory.
 * - An address space has a generation that grows on every change that removes or narrows a
 *   translation. A vCPU acknowledges a generation before entering the guest and reloads CR3 before
 *   user code runs whenever its loaded generation or address space differs; rf_as_unmap() and
 *   rf_as_protect() return only after every vCPU running the address space has acknowledged.
 * - Errors: functions return 0 or -errno and call rf_error() to record the sentence for
 *   rf_last_error(); callers pass an error up unchanged.
 */
#ifndef RINGFENCE_PLATFORM_H
#define RINGFENCE_PLATFORM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ringfence.h"

#define RF_SYS_SIZE      (256ull << 20)     /* reserved, pages are touched only when used */
#define RF_USER_GPA_BASE (1ull << 32)

/* ---- errors ---- */
int rf_error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- page tables (pagetable.c) ---- */
#define PTE_P    (1ull << 0)
#define PTE_RW   (1ull << 1)
#define PTE_US   (1ull << 2)
#define PTE_A    (1ull << 5)
#define PTE_D    (1ull << 6)
#define PTE_PS   (1ull << 7)
#define PTE_NX   (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull

struct pt_mem {
	void *opaque;
	uint64_t *(*table)(void *opaque, uint64_t gpa);   /* host view of a 4 KiB table page */
	int (*alloc)(void *opaque, uint64_t *gpa);         /* a zeroed page, or -ENOMEM */
	void (*retire)(void *opaque, uint64_t gpa);        /* unreachable now; free after a TLB flush */
	/* Optional: a present entry of the table page at gpa was cleared, narrowed, replaced or
	 * split. A shadow MMU must be told about that page (see addrspace.c); NULL where it need not. */
	void (*changed)(void *opaque, uint64_t gpa);
};

/* Leaves are 4 KiB or 2 MiB. A 4 KiB edit inside a 2 MiB leaf splits it first (which can fail with
 * -ENOMEM half way; nothing else is partial). Tables that become unreachable go to pt_mem.retire. */
uint64_t pt_leaf_flags(unsigned prot);
int pt_map(const struct pt_mem *m, uint64_t root, uint64_t va, uint64_t gpa, uint64_t len,
           uint64_t leaf_flags, bool huge);
/* cleared() is called for every leaf removed, with its address and size. */
int pt_unmap(const struct pt_mem *m, uint64_t root, uint64_t va, uint64_t len,
             void (*cleared)(void *arg, uint64_t gpa, uint64_t size), void *arg);
/* All or nothing: -ENOENT if part of the range is unmapped, -ENOMEM if a needed split failed. */
int pt_protect(const struct pt_mem *m, uint64_t root, uint64_t va, uint64_t len, uint64_t leaf_flags);
uint64_t pt_lookup(const struct pt_mem *m, uint64_t root, uint64_t va, uint64_t *size);
void pt_destroy(const struct pt_mem *m, uint64_t root);
/* Every table page of the user half, the root last. */
void pt_tables(const struct pt_mem *m, uint64_t root, void (*fn)(void *arg, uint64_t gpa), void *arg);

/* ---- system memory (sysmem.c) ---- */
struct sysmem {
	uint8_t *host;
	uint64_t size;
	pthread_mutex_t lock;
	uint64_t bump;
	uint64_t free_head;   /* free pages linked through their first word; 0 = none (page 0 is the shim) */
};
int sysmem_init(struct sysmem *s, uint64_t size);
void sysmem_fini(struct sysmem *s);
int sysmem_alloc(struct sysmem *s, uint64_t *gpa);   /* zeroed page */
void sysmem_free(struct sysmem *s, uint64_t gpa);
void *sysmem_ptr(struct sysmem *s, uint64_t gpa);

struct vcpu;

struct rf_platform {
	int kvm_fd, vm_fd;
	int run_size;
	enum rf_syscall_mode mode;
	enum rf_mmu mmu;               /* AUTO while probing: edits are then not touched */
	unsigned max_vcpus;
	uint64_t kick_deadline_ns;
	int exit_log_fd;
	enum rf_kick_policy kick_policy;
	unsigned phys_bits;
	uint64_t xcr0;
	uint64_t cr4_extra;            /* SMEP/SMAP/UMIP/FSGSBASE where the guest CPU has them */
	void *cpuid;                   /* struct kvm_cpuid2 for every vCPU */
	void *fpu_init;                /* struct kvm_xsave of a fresh vCPU */
	struct sysmem sys;
	uint64_t kernel_pdpt;          /* shared supervisor half, PML4 slot 511 of every root */
	uint64_t kernel_pd;
	uint64_t kernel_pt[3];         /* text+IDT, vCPU areas 0-127, 128-255 */
	uint64_t idle_root;            /* a root with no user mappings, for probes and idle vCPUs */

	pthread_mutex_t lock;          /* memslots, counts, vCPU pool */
	pthread_cond_t vcpu_free;
	uint64_t slot_bitmap[8];       /* 512 memslots; slot 0 is system memory */
	struct gpa_range { uint64_t gpa, size; } *gpa_free;
	unsigned gpa_free_n;
	uint64_t gpa_next;
	unsigned n_memories, n_spaces, n_contexts;
	_Atomic(struct vcpu *) *vcpus; /* max_vcpus slots, created lazily, read by shootdowns */
	atomic_uint n_vcpus;
	atomic_uint_fast64_t next_id;  /* address-space and context ids */

	/* Shadow MMU only: the maintenance vCPU that touches changed table pages (vcpu/zap.c). */
	pthread_mutex_t zap_lock;
	struct vcpu *zap_vcpu;
	uint64_t zap_root;             /* idle root plus the system-memory alias */
	uint64_t zap_list;             /* one page: the alias addresses of the pages to touch */
	atomic_uint_fast64_t zap_batches, zap_pages;   /* for rf_platform_info */
	atomic_bool unsafe;            /* a touch failed: no switch may trust the tables any more */

	/* shootdown wake-ups: see addrspace.c */
	pthread_mutex_t shoot_lock;
	pthread_cond_t shoot_cv;
	atomic_int shoot_waiters;
};

struct rf_memory {
	rf_platform *p;
	int fd;
	unsigned slot;
	uint64_t gpa, size;
	void *host;
	atomic_int maps;               /* address spaces with at least one page of it mapped */
};

struct rf_as {
	rf_platform *p;
	uint64_t id;                   /* never reused, so a vCPU cannot mistake a new space for an old one */
	uint64_t root;
	pthread_mutex_t lock;
	atomic_uint_fast64_t gen;
	atomic_int running;            /* switches in progress */
	struct { rf_memory *m; unsigned pages; } *uses;   /* which memories it maps, with page counts */
	unsigned n_uses;
	uint64_t *retired;             /* tables to free after the next flush */
	unsigned n_retired, cap_retired;
	/* Shadow MMU only: table pages with a rewritten present entry since the last flush. */
	uint64_t *dirty;
	unsigned n_dirty, cap_dirty;
	bool dirty_lost;               /* out of memory for the list: touch every table instead */
	atomic_bool ran;               /* a vCPU has walked its tables: shadows of them may exist */
};

struct rf_context {
	rf_platform *p;
	struct rf_regs regs;
	atomic_int busy;
	uint64_t id;                   /* never reused */
	void *fpu;                     /* struct kvm_xsave; older than the vCPU's while fpu_live is set */
	_Atomic(struct vcpu *) fpu_live;
	atomic_uint_fast64_t kick_seq; /* rf_kick() calls */
	atomic_uint_fast64_t kick_done;/* kick_seq covered by the last report */
	_Atomic(struct vcpu *) vcpu;   /* the vCPU running it, for rf_kick() */
};

/* addrspace.c: wakes shootdowns waiting for a vCPU's acknowledgement (called by the run loop). */
void as_shootdown_wake(rf_platform *p);
/* The pt_mem over system memory that frees retired tables at once (no vCPU can see them). */
void as_sys_pt_mem(rf_platform *p, struct pt_mem *m);

/* probe.c */
int platform_probe_syscall(rf_platform *p);
int platform_probe_mmu(rf_platform *p, enum rf_mmu want);

#endif
