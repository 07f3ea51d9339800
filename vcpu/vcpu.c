/* SPDX-License-Identifier: MIT */
/* KVM vCPUs: creation in 64-bit ring 0 at the shim, reset, and the pool that lends them to threads. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../ring0/ring0.h"
#include "vcpu.h"

#define MSR_STAR           0xc0000081
#define MSR_LSTAR          0xc0000082
#define MSR_CSTAR          0xc0000083
#define MSR_SFMASK         0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102

#define CR0_PE (1ull << 0)
#define CR0_MP (1ull << 1)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_AM (1ull << 18)
#define CR0_PG (1ull << 31)
#define CR4_PAE        (1ull << 5)
#define CR4_OSFXSR     (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define CR4_OSXSAVE    (1ull << 18)
#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)

/* RFLAGS bits SYSCALL clears: as Linux, so ring 0 never runs with TF, IF, DF, AC, NT or IOPL. */
#define SFMASK_BITS 0x47700ull

static void segment(struct kvm_segment *s, uint16_t sel, unsigned type, bool code64)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = (uint8_t)type,
		.present = 1, .dpl = sel & 3, .db = !code64, .s = 1, .l = code64, .g = 1,
	};
}

static void initial_sregs(const struct vcpu *v, struct kvm_sregs *s)
{
	const rf_platform *p = v->p;
	uint64_t tables_va = RING0_VCPU_VA + (uint64_t)v->id * RING0_VCPU_STRIDE;
	segment(&s->cs, RING0_SEL_KCODE, 0xb, true);
	segment(&s->ss, RING0_SEL_KDATA, 0x3, false);
	/* User data selectors everywhere else: their DPL 3 survives the iretq to ring 3, which
	 * would otherwise null them (and, on some CPUs, the FS/GS bases with them). */
	segment(&s->ds, RING0_SEL_UDATA, 0x3, false);
	s->es = s->fs = s->gs = s->ds;
	s->tr = (struct kvm_segment){
		.base = tables_va + RING0_TSS_OFF, .limit = 103, .selector = RING0_SEL_TSS,
		.type = 0xb, .present = 1,
	};
	s->ldt = (struct kvm_segment){ .type = 2, .unusable = 1 };
	s->gdt.base = tables_va + RING0_VCPU_TABLES;
	s->gdt.limit = RING0_GDT_ENTRIES * 8 - 1;
	s->idt.base = RING0_IDT_VA;
	s->idt.limit = 4095;
	s->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
	s->cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE | p->cr4_extra;
	s->efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
	s->cr3 = p->idle_root;
}

static int set_msrs(struct vcpu *v)
{
	/* kvm_msrs ends in a flexible array: give it room in a union rather than a struct after it. */
	union {
		struct kvm_msrs hdr;
		uint8_t room[sizeof(struct kvm_msrs) + 5 * sizeof(struct kvm_msr_entry)];
	} m = { .hdr.nmsrs = 5 };
	struct kvm_msr_entry *e = m.hdr.entries;
	e[0] = (struct kvm_msr_entry){ .index = MSR_STAR,
	                                 .data = (uint64_t)RING0_SEL_KCODE << 32 | (uint64_t)(RING0_SEL_UDATA - 8 - 3) << 48 };
	e[1] = (struct kvm_msr_entry){ .index = MSR_LSTAR, .data = RING0_VA(RING0_OFF_syscall) };
	e[2] = (struct kvm_msr_entry){ .index = MSR_CSTAR, .data = RING0_VA(RING0_OFF_syscall) };
	e[3] = (struct kvm_msr_entry){ .index = MSR_SFMASK, .data = SFMASK_BITS };
	e[4] = (struct kvm_msr_entry){ .index = MSR_KERNEL_GS_BASE, .data = 0 };
	int r = KVM_IOCTL(v->fd, KVM_SET_MSRS, &m.hdr);
	if (r != 5)
		return rf_error(r < 0 ? -errno : -EIO, "KVM_SET_MSRS set %d of 5 MSRs", r);
	return 0;
}

int vcpu_reset(struct vcpu *v)
{
	struct kvm_vcpu_events ev = { 0 };
	if (KVM_IOCTL(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		return rf_error(-errno, "KVM_SET_VCPU_EVENTS: %s", strerror(errno));
	if (KVM_IOCTL(v->fd, KVM_SET_SREGS, &v->init_sregs) < 0)
		return rf_error(-errno, "KVM_SET_SREGS: %s", strerror(errno));
	struct kvm_regs regs = { .rflags = 2, .rip = RING0_VA(RING0_OFF_iret) };
	if (KVM_IOCTL(v->fd, KVM_SET_REGS, &regs) < 0)
		return rf_error(-errno, "KVM_SET_REGS: %s", strerror(errno));
	/* The sync-regs copy is what the run loop edits: start it from the same state. */
	v->run->s.regs.regs = regs;
	v->run->s.regs.sregs = v->init_sregs;
	v->run->kvm_dirty_regs = 0;
	v->at_shim = false;
	v->loaded_as_id = 0;
	return 0;
}

static int map_kernel_page(rf_platform *p, uint64_t va, uint64_t gpa, uint64_t flags)
{
	uint64_t idx = (va - RING0_KERNEL_VA) >> 12;
	if (idx / 512 >= sizeof p->kernel_pt / sizeof p->kernel_pt[0])
		return rf_error(-ENOSPC, "supervisor address 0x%llx outside the shim area", (unsigned long long)va);
	uint64_t *pt = sysmem_ptr(&p->sys, p->kernel_pt[idx / 512]);
	pt[idx % 512] = gpa | flags;
	return 0;
}

static int setup_area(struct vcpu *v)
{
	rf_platform *p = v->p;
	uint64_t va = RING0_VCPU_VA + (uint64_t)v->id * RING0_VCPU_STRIDE, tables, stack, df;
	int r;
	if ((r = sysmem_alloc(&p->sys, &tables)) < 0 || (r = sysmem_alloc(&p->sys, &stack)) < 0 ||
	    (r = sysmem_alloc(&p->sys, &df)) < 0)
		return r;
	uint64_t f = PTE_P | PTE_RW | PTE_A | PTE_D | PTE_NX;
	if ((r = map_kernel_page(p, va + RING0_VCPU_TABLES, tables, f)) < 0 ||
	    (r = map_kernel_page(p, va + RING0_VCPU_DFSTACK, df, f)) < 0 ||
	    (r = map_kernel_page(p, va + RING0_VCPU_STACK, stack, f)) < 0)
		return r;
	v->tables = sysmem_ptr(&p->sys, tables);
	v->stack = sysmem_ptr(&p->sys, stack);
	v->df_stack = sysmem_ptr(&p->sys, df);
	v->stack_top_va = va + RING0_STACK_TOP_OFF;
	ring0_write_gdt_tss(v->tables, va + RING0_VCPU_TABLES, v->stack_top_va, va + RING0_DF_TOP_OFF);
	return 0;
}

static int configure(struct vcpu *v)
{
	rf_platform *p = v->p;
	int r;
	if ((r = setup_area(v)) < 0)
		return r;
	if (KVM_IOCTL(v->fd, KVM_SET_CPUID2, (struct kvm_cpuid2 *)p->cpuid) < 0)
		return rf_error(-errno, "KVM_SET_CPUID2: %s", strerror(errno));
	if (KVM_IOCTL(v->fd, KVM_GET_SREGS, &v->init_sregs) < 0)
		return rf_error(-errno, "KVM_GET_SREGS: %s", strerror(errno));
	initial_sregs(v, &v->init_sregs);
	if ((r = set_msrs(v)) < 0)
		return r;
	struct kvm_xcrs xcrs = { .nr_xcrs = 1, .xcrs[0] = { .xcr = 0, .value = p->xcr0 } };
	if (KVM_IOCTL(v->fd, KVM_SET_XCRS, &xcrs) < 0)
		return rf_error(-errno, "KVM_SET_XCRS (XCR0=0x%llx): %s", (unsigned long long)p->xcr0, strerror(errno));
	if ((r = vcpu_reset(v)) < 0)
		return r;
	kick_sm_init(&v->sm, p->kick_deadline_ns, p->kick_policy == RF_KICK_TAKE_BACK, &v->kc);   /* vcpu_kick_quiesce resets it after each run */
	v->run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS;
	return 0;
}

int vcpu_create(rf_platform *p, unsigned id, struct vcpu **out)
{
	struct vcpu *v = calloc(1, sizeof *v);
	if (!v)
		return rf_error(-ENOMEM, "out of memory for a vCPU");
	v->p = p;
	v->id = id;
	pthread_mutex_init(&v->fpu_lock, NULL);
	v->run = MAP_FAILED;
	v->fd = ioctl(p->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	int r;
	if (v->fd < 0) {
		r = rf_error(-errno, "KVM_CREATE_VCPU %u: %s", id, strerror(errno));
		goto fail;
	}
	v->run = mmap(NULL, (size_t)p->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		r = rf_error(-errno, "mmap of kvm_run: %s", strerror(errno));
		goto fail;
	}
	if ((r = configure(v)) < 0)
		goto fail;
	*out = v;
	return 0;
fail:
	vcpu_destroy(v);
	return r;
}

void vcpu_destroy(struct vcpu *v)
{
	if (!v)
		return;
	if (v->run != MAP_FAILED)
		munmap(v->run, (size_t)v->p->run_size);
	if (v->fd >= 0)
		close(v->fd);
	pthread_mutex_destroy(&v->fpu_lock);
	free(v);
}

/* The vCPU this thread used last, so it gets it back (see the header). */
static __thread const rf_platform *last_platform;
static __thread unsigned last_vcpu;

int vcpu_acquire(rf_platform *p, struct vcpu **out)
{
	int r = 0;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct vcpu *v = NULL;
		if (last_platform == p && last_vcpu < p->n_vcpus && !p->vcpus[last_vcpu]->busy)
			v = p->vcpus[last_vcpu];
		for (unsigned i = 0; !v && i < p->n_vcpus; i++)
			if (!p->vcpus[i]->busy)
				v = p->vcpus[i];
		if (!v && p->n_vcpus < p->max_vcpus) {
			if ((r = vcpu_create(p, p->n_vcpus, &v)) < 0)
				break;
			atomic_store(&p->vcpus[p->n_vcpus], v);
			atomic_fetch_add(&p->n_vcpus, 1);
		}
		if (v) {
			v->busy = true;
			last_platform = p;
			last_vcpu = v->id;
			*out = v;
			break;
		}
		pthread_cond_wait(&p->vcpu_free, &p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return r;
}

void vcpu_release(struct vcpu *v)
{
	rf_platform *p = v->p;
	pthread_mutex_lock(&p->lock);
	v->busy = false;
	pthread_cond_signal(&p->vcpu_free);
	pthread_mutex_unlock(&p->lock);
}

static void kick_handler(int sig)
{
	(void)sig;   /* only there so the signal interrupts KVM_RUN; consumed by sigtimedwait */
}

static void install_handler(void)
{
	struct sigaction sa = { .sa_handler = kick_handler, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	sigaction(RF_KICK_SIGNAL, &sa, NULL);
}

static __thread bool thread_bound;
static __thread pid_t thread_id;

pid_t vcpu_thread_id(void)
{
	/* glibc does not cache it, and it is needed on every switch. */
	if (!thread_id)
		thread_id = gettid();
	return thread_id;
}

int vcpu_bind_thread(struct vcpu *v)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, install_handler);
	sigset_t kick, cur;
	sigemptyset(&kick);
	sigaddset(&kick, RF_KICK_SIGNAL);
	if (!thread_bound) {
		pthread_sigmask(SIG_BLOCK, &kick, NULL);
		thread_bound = true;
	}
	pid_t tid = vcpu_thread_id();
	if (v->sigmask_tid == tid)
		return 0;
	/* During KVM_RUN the thread keeps its own mask, except that the kick becomes deliverable. */
	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	sigdelset(&cur, RF_KICK_SIGNAL);
	union {
		struct kvm_signal_mask hdr;
		uint8_t room[sizeof(struct kvm_signal_mask) + 8];
	} m = { .hdr.len = 8 };
	memcpy(m.hdr.sigset, &cur, 8);   /* the kernel's sigset: 64 bits */
	if (KVM_IOCTL(v->fd, KVM_SET_SIGNAL_MASK, &m.hdr) < 0)
		return rf_error(-errno, "KVM_SET_SIGNAL_MASK: %s", strerror(errno));
	v->sigmask_tid = tid;
	return 0;
}
