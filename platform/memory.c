/* SPDX-License-Identifier: MIT */
/* Guest memory objects: a memfd, mapped once in the host and registered as one KVM memslot. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../vcpu/vcpu.h"
#include "platform.h"

/* First fit over freed ranges, else the bump pointer; caller holds p->lock. */
static int gpa_alloc(rf_platform *p, uint64_t size, uint64_t *gpa)
{
	for (unsigned i = 0; i < p->gpa_free_n; i++) {
		struct gpa_range *g = &p->gpa_free[i];
		if (g->size < size)
			continue;
		*gpa = g->gpa;
		g->gpa += size;
		g->size -= size;
		if (!g->size)
			*g = p->gpa_free[--p->gpa_free_n];
		return 0;
	}
	uint64_t limit = p->phys_bits >= 63 ? ~0ull : 1ull << p->phys_bits;
	if (p->gpa_next + size > limit || p->gpa_next + size < p->gpa_next)
		return rf_error(-ENOSPC, "guest-physical space exhausted (%u address bits)", p->phys_bits);
	*gpa = p->gpa_next;
	p->gpa_next += size;
	return 0;
}

static void gpa_release(rf_platform *p, uint64_t gpa, uint64_t size)
{
	struct gpa_range *n = realloc(p->gpa_free, (p->gpa_free_n + 1) * sizeof *n);
	if (!n)
		return;   /* the range is lost to reuse, nothing else */
	p->gpa_free = n;
	n[p->gpa_free_n++] = (struct gpa_range){ gpa, size };
}

static int slot_alloc(rf_platform *p, unsigned *slot)
{
	unsigned max = 64 * (unsigned)(sizeof p->slot_bitmap / sizeof p->slot_bitmap[0]);
	long kvm_max = ioctl(p->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
	if (kvm_max > 0 && (unsigned)kvm_max < max)
		max = (unsigned)kvm_max;
	for (unsigned s = 1; s < max; s++)
		if (!(p->slot_bitmap[s / 64] & (1ull << (s % 64)))) {
			p->slot_bitmap[s / 64] |= 1ull << (s % 64);
			*slot = s;
			return 0;
		}
	return rf_error(-ENOSPC, "all %u KVM memory slots are in use", max);
}

static int set_slot(rf_memory *m, uint64_t size)
{
	struct kvm_userspace_memory_region r = {
		.slot = m->slot, .guest_phys_addr = m->gpa, .memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)m->host,
	};
	if (KVM_IOCTL(m->p->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return rf_error(-errno, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
	return 0;
}

int rf_memory_create(rf_platform *p, uint64_t size, rf_memory **out)
{
	if (!size || size % RF_HUGE_SIZE)
		return rf_error(-EINVAL, "memory size %llu is not a positive multiple of 2 MiB",
		                (unsigned long long)size);
	rf_memory *m = calloc(1, sizeof *m);
	if (!m)
		return rf_error(-ENOMEM, "out of memory");
	m->p = p;
	m->size = size;
	m->host = MAP_FAILED;
	int r;
	/* Sealed at its size: whoever the descriptor is given to (rf_memory_fd: a runtime, a control-plane
	 * client) can map it but not shrink it under our mapping, where the next touch would be a SIGBUS. */
	m->fd = memfd_create("ringfence", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (m->fd < 0 || ftruncate(m->fd, (off_t)size) < 0 ||
	    fcntl(m->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		r = rf_error(-errno, "memfd of %llu bytes: %s", (unsigned long long)size, strerror(errno));
		goto fail;
	}
	m->host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	if (m->host == MAP_FAILED) {
		r = rf_error(-errno, "mmap of guest memory: %s", strerror(errno));
		goto fail;
	}
	pthread_mutex_lock(&p->lock);
	r = slot_alloc(p, &m->slot);
	if (r == 0 && (r = gpa_alloc(p, size, &m->gpa)) < 0)
		p->slot_bitmap[m->slot / 64] &= ~(1ull << (m->slot % 64));
	if (r == 0 && (r = set_slot(m, size)) < 0) {
		p->slot_bitmap[m->slot / 64] &= ~(1ull << (m->slot % 64));
		gpa_release(p, m->gpa, size);
	}
	if (r == 0)
		p->n_memories++;
	pthread_mutex_unlock(&p->lock);
	if (r < 0)
		goto fail;
	*out = m;
	return 0;
fail:
	if (m->host != MAP_FAILED)
		munmap(m->host, size);
	if (m->fd >= 0)
		close(m->fd);
	free(m);
	return r;
}

int rf_memory_destroy(rf_memory *m)
{
	if (!m)
		return 0;
	rf_platform *p = m->p;
	if (atomic_load(&m->maps))
		return rf_error(-EBUSY, "memory is still mapped by %d address spaces", atomic_load(&m->maps));
	pthread_mutex_lock(&p->lock);
	int r = set_slot(m, 0);
	if (r == 0) {
		p->slot_bitmap[m->slot / 64] &= ~(1ull << (m->slot % 64));
		gpa_release(p, m->gpa, m->size);
		p->n_memories--;
	}
	pthread_mutex_unlock(&p->lock);
	if (r < 0)
		return r;
	munmap(m->host, m->size);
	close(m->fd);
	free(m);
	return 0;
}

int rf_memory_fd(const rf_memory *m) { return m->fd; }
void *rf_memory_host(const rf_memory *m) { return m->host; }
uint64_t rf_memory_size(const rf_memory *m) { return m->size; }
