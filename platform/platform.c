/* SPDX-License-Identifier: MIT */
/* Platform life cycle: open KVM, build the shared supervisor half, create the first vCPU, probe. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../ring0/ring0.h"
#include "../vcpu/vcpu.h"
#include "platform.h"

static int check_caps(rf_platform *p)
{
	int v = ioctl(p->kvm_fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION)
		return rf_error(-ENOTSUP, "KVM API version %d, need %d", v, KVM_API_VERSION);
	static const struct { long cap; const char *name; } need[] = {
		{ KVM_CAP_XSAVE, "XSAVE" }, { KVM_CAP_XCRS, "XCRS" },
		{ KVM_CAP_VCPU_EVENTS, "VCPU_EVENTS" }, { KVM_CAP_EXT_CPUID, "EXT_CPUID" },
	};
	for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
		if (ioctl(p->kvm_fd, KVM_CHECK_EXTENSION, need[i].cap) <= 0)
			return rf_error(-ENOTSUP, "KVM lacks KVM_CAP_%s", need[i].name);
	long sync = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS;
	if ((ioctl(p->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS) & sync) != sync)
		return rf_error(-ENOTSUP, "KVM lacks KVM_CAP_SYNC_REGS for regs, sregs and events");
	return 0;
}

static struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	return NULL;
}

/* Reads what the guest CPU may have: the CPUID table every vCPU gets, XCR0, CR4 extras, phys bits. */
static int read_cpuid(rf_platform *p)
{
	for (uint32_t n = 128;; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof *c + n * sizeof c->entries[0]);
		if (!c)
			return rf_error(-ENOMEM, "out of memory for CPUID");
		c->nent = n;
		if (KVM_IOCTL(p->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			p->cpuid = c;
			break;
		}
		free(c);
		if (errno != E2BIG || n > 4096)
			return rf_error(-errno, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
	}
	struct kvm_cpuid2 *c = p->cpuid;
	struct kvm_cpuid_entry2 *e;
	p->phys_bits = (e = cpuid_find(c, 0x80000008, 0)) ? (e->eax & 0xff) : 36;
	/* x87, SSE, AVX and the AVX-512 states: all fit the 4 KiB KVM_GET_XSAVE image. */
	p->xcr0 = (e = cpuid_find(c, 0xd, 0)) ? (e->eax & 0xe7) : 3;
	if ((p->xcr0 & 3) != 3)
		return rf_error(-ENOTSUP, "guest CPU lacks x87/SSE state in XSAVE");
	if ((e = cpuid_find(c, 7, 0))) {
		if (e->ebx & (1u << 0))
			p->cr4_extra |= 1ull << 16;   /* FSGSBASE: user code may set its own FS/GS */
		if (e->ebx & (1u << 7))
			p->cr4_extra |= 1ull << 20;   /* SMEP: the shim can never run user pages */
		if (e->ebx & (1u << 20))
			p->cr4_extra |= 1ull << 21;   /* SMAP */
		if (e->ecx & (1u << 2))
			p->cr4_extra |= 1ull << 11;   /* UMIP: no sgdt/sidt leaking shim addresses */
	}
	return 0;
}

static int map_shim(rf_platform *p)
{
	int r;
	uint64_t gpa;
	struct pt_mem m;
	as_sys_pt_mem(p, &m);
	if ((r = sysmem_alloc(&p->sys, &p->kernel_pdpt)) < 0 || (r = sysmem_alloc(&p->sys, &p->kernel_pd)) < 0)
		return r;
	uint64_t *pdpt = sysmem_ptr(&p->sys, p->kernel_pdpt), *pd = sysmem_ptr(&p->sys, p->kernel_pd);
	pdpt[511] = p->kernel_pd | PTE_P | PTE_RW;   /* no PTE_US anywhere: supervisor only */
	for (unsigned i = 0; i < 3; i++) {
		if ((r = sysmem_alloc(&p->sys, &p->kernel_pt[i])) < 0)
			return r;
		pd[i] = p->kernel_pt[i] | PTE_P | PTE_RW;
	}
	uint64_t *pt = sysmem_ptr(&p->sys, p->kernel_pt[0]);
	for (uint64_t off = 0; off < ring0_blob_size; off += 4096) {
		if ((r = sysmem_alloc(&p->sys, &gpa)) < 0)
			return r;
		uint64_t n = ring0_blob_size - off < 4096 ? ring0_blob_size - off : 4096;
		memcpy(sysmem_ptr(&p->sys, gpa), ring0_blob + off, n);
		pt[off >> 12] = gpa | PTE_P | PTE_A;   /* read + execute */
	}
	if ((r = sysmem_alloc(&p->sys, &gpa)) < 0)
		return r;
	ring0_write_idt(sysmem_ptr(&p->sys, gpa));
	pt[(RING0_IDT_VA - RING0_KERNEL_VA) >> 12] = gpa | PTE_P | PTE_A | PTE_NX;
	if ((r = sysmem_alloc(&p->sys, &p->idle_root)) < 0)
		return r;
	((uint64_t *)sysmem_ptr(&p->sys, p->idle_root))[511] = p->kernel_pdpt | PTE_P | PTE_RW;
	return 0;
}

/* kvm_fd > 0: the caller's open KVM, duplicated so that the platform closes only its own. */
static int open_vm(rf_platform *p, const char *path, int kvm_fd)
{
	p->kvm_fd = kvm_fd > 0 ? fcntl(kvm_fd, F_DUPFD_CLOEXEC, 3) : open(path, O_RDWR | O_CLOEXEC);
	if (p->kvm_fd < 0 && kvm_fd > 0)
		return rf_error(-errno, "cannot use KVM descriptor %d: %s", kvm_fd, strerror(errno));
	if (p->kvm_fd < 0)
		return rf_error(-errno, "cannot open %s: %s", path, strerror(errno));
	int r = check_caps(p);
	if (r < 0)
		return r;
	p->vm_fd = ioctl(p->kvm_fd, KVM_CREATE_VM, 0);
	if (p->vm_fd < 0)
		return rf_error(-errno, "KVM_CREATE_VM: %s", strerror(errno));
	p->run_size = ioctl(p->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (p->run_size <= 0)
		return rf_error(-EIO, "KVM_GET_VCPU_MMAP_SIZE failed");
	/* Intel without unrestricted guest wants these three pages below 4 GiB, outside any slot. */
	ioctl(p->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul);
	if ((r = sysmem_init(&p->sys, RF_SYS_SIZE)) < 0)
		return r;
	struct kvm_userspace_memory_region slot = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = p->sys.size,
		.userspace_addr = (uint64_t)(uintptr_t)p->sys.host,
	};
	if (KVM_IOCTL(p->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
		return rf_error(-errno, "KVM_SET_USER_MEMORY_REGION (system memory): %s", strerror(errno));
	p->slot_bitmap[0] = 1;
	return 0;
}

static void free_platform(rf_platform *p)
{
	for (unsigned i = 0; i < p->n_vcpus; i++)
		vcpu_destroy(p->vcpus[i]);
	free(p->vcpus);
	vcpu_destroy(p->zap_vcpu);
	pthread_mutex_destroy(&p->zap_lock);
	free(p->cpuid);
	free(p->fpu_init);
	free(p->gpa_free);
	if (p->sys.size)
		sysmem_fini(&p->sys);
	if (p->vm_fd >= 0)
		close(p->vm_fd);
	if (p->kvm_fd >= 0)
		close(p->kvm_fd);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->vcpu_free);
	pthread_mutex_destroy(&p->shoot_lock);
	pthread_cond_destroy(&p->shoot_cv);
	free(p);
}

static int first_vcpu(rf_platform *p)
{
	struct vcpu *v;
	int r = vcpu_create(p, 0, &v);
	if (r < 0)
		return r;
	p->vcpus[0] = v;
	p->n_vcpus = 1;
	/* A fresh vCPU's XSAVE image (FCW 0x37f, MXCSR 0x1f80) is every new context's FPU state. */
	if (!(p->fpu_init = aligned_alloc(64, sizeof(struct kvm_xsave))))
		return rf_error(-ENOMEM, "out of memory");
	if (KVM_IOCTL(v->fd, KVM_GET_XSAVE, (struct kvm_xsave *)p->fpu_init) < 0)
		return rf_error(-errno, "KVM_GET_XSAVE: %s", strerror(errno));
	return 0;
}

int rf_platform_create(const struct rf_platform_options *opts, rf_platform **out)
{
	struct rf_platform_options o = opts ? *opts : (struct rf_platform_options){ 0 };
	rf_platform *p = calloc(1, sizeof *p);
	if (!p)
		return rf_error(-ENOMEM, "out of memory");
	p->kvm_fd = p->vm_fd = -1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->vcpu_free, NULL);
	pthread_mutex_init(&p->shoot_lock, NULL);
	pthread_cond_init(&p->shoot_cv, NULL);
	pthread_mutex_init(&p->zap_lock, NULL);
	atomic_init(&p->next_id, 1);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	p->max_vcpus = o.max_vcpus ? o.max_vcpus : (unsigned)(ncpu > 1 ? 2 * ncpu : 2);
	p->gpa_next = RF_USER_GPA_BASE;
	p->kick_deadline_ns = o.kick_deadline_ns ? o.kick_deadline_ns : 20000000;
	p->exit_log_fd = o.exit_log_fd;
	p->kick_policy = o.kick_policy ? o.kick_policy : RF_KICK_TAKE_BACK;
	int r;
	if (o.kick_policy > RF_KICK_INJECT) {
		r = rf_error(-EINVAL, "unknown kick policy %d", o.kick_policy);
		goto fail;
	}
	if (p->max_vcpus > RING0_MAINT_VCPU) {
		r = rf_error(-EINVAL, "max_vcpus %u above the shim's %u", p->max_vcpus, RING0_MAINT_VCPU);
		goto fail;
	}
	if (!(p->vcpus = calloc(p->max_vcpus, sizeof *p->vcpus))) {
		r = rf_error(-ENOMEM, "out of memory");
		goto fail;
	}
	if ((r = open_vm(p, o.kvm_path ? o.kvm_path : "/dev/kvm", o.kvm_fd)) < 0 || (r = read_cpuid(p)) < 0 ||
	    (r = map_shim(p)) < 0 || (r = first_vcpu(p)) < 0)
		goto fail;
	/* The MMU first: until it is known, a table page freed by a probe could keep a shadow. */
	if ((r = platform_probe_mmu(p, o.mmu)) < 0)
		goto fail;
	p->mode = o.syscall_mode;
	if (p->mode == RF_SYSCALL_AUTO && (r = platform_probe_syscall(p)) < 0)
		goto fail;
	*out = p;
	return 0;
fail:
	free_platform(p);
	return r;
}

int rf_platform_destroy(rf_platform *p)
{
	if (!p)
		return 0;
	if (p->n_memories || p->n_spaces || p->n_contexts)
		return rf_error(-EBUSY, "platform still has %u memories, %u address spaces, %u contexts",
		                p->n_memories, p->n_spaces, p->n_contexts);
	free_platform(p);
	return 0;
}

void rf_platform_info(const rf_platform *p, struct rf_platform_info *info)
{
	*info = (struct rf_platform_info){
		.syscall_mode = p->mode, .mmu = p->mmu, .kick_policy = p->kick_policy, .max_vcpus = p->max_vcpus, .vcpus_created = p->n_vcpus,
		.mmu_flushes = atomic_load(&p->zap_batches), .mmu_pages_touched = atomic_load(&p->zap_pages),
		.fpu_size = sizeof(struct kvm_xsave), .xcr0 = p->xcr0,
	};
}
