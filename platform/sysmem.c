/* SPDX-License-Identifier: MIT */
/* The platform's private guest-physical pages (shim, tables, stacks): a page allocator over one slot. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "platform.h"

int sysmem_init(struct sysmem *s, uint64_t size)
{
	/* Reserved, not committed: only pages actually handed out cost memory. */
	s->host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (s->host == MAP_FAILED)
		return rf_error(-errno, "cannot reserve %llu MiB of system memory", (unsigned long long)(size >> 20));
	s->size = size;
	s->bump = 4096;   /* page 0 stays unused so that 0 can mean "no page" */
	s->free_head = 0;
	pthread_mutex_init(&s->lock, NULL);
	return 0;
}

void sysmem_fini(struct sysmem *s)
{
	if (s->host && s->host != MAP_FAILED)
		munmap(s->host, s->size);
	pthread_mutex_destroy(&s->lock);
}

int sysmem_alloc(struct sysmem *s, uint64_t *gpa)
{
	pthread_mutex_lock(&s->lock);
	uint64_t g = s->free_head;
	if (g)
		s->free_head = *(uint64_t *)(s->host + g);
	else if (s->bump < s->size)
		g = s->bump, s->bump += 4096;
	pthread_mutex_unlock(&s->lock);
	if (!g)
		return rf_error(-ENOMEM, "system memory exhausted (%llu MiB of page tables and shim pages)",
		                (unsigned long long)(s->size >> 20));
	memset(s->host + g, 0, 4096);
	*gpa = g;
	return 0;
}

void sysmem_free(struct sysmem *s, uint64_t gpa)
{
	pthread_mutex_lock(&s->lock);
	*(uint64_t *)(s->host + gpa) = s->free_head;
	s->free_head = gpa;
	pthread_mutex_unlock(&s->lock);
}

void *sysmem_ptr(struct sysmem *s, uint64_t gpa)
{
	return s->host + gpa;
}
