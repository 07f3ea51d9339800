/* SPDX-License-Identifier: MIT */
/* Fixture for tests on real KVM (header-only, so TAP numbering stays in the test's own unit): a platform, one memory, an address space with code, data and a
 * stack, and guest snippets from guest.S copied in as position-independent user code. */
#ifndef RINGFENCE_KVMTEST_H
#define RINGFENCE_KVMTEST_H

#include <errno.h>
#include <string.h>

#include "ringfence.h"
#include "../tap.h"

#define KT_CODE_VA   0x400000ull     /* RX, memory offset 0, 1 MiB */
#define KT_DATA_VA   0x10000000ull   /* RW, memory offset 2 MiB, 2 MiB */
#define KT_STACK_VA  0x7ffff0000000ull /* RW, memory offset 4 MiB, 2 MiB */
#define KT_STACK_TOP (KT_STACK_VA + (2ull << 20))
#define KT_MEM_SIZE  (8ull << 20)     /* the last 2 MiB are spare, for tests to map */

struct kt {
	rf_platform *p;
	rf_memory *mem;
	rf_as *as;
	rf_context *c;
	unsigned char *host;             /* the memory's host mapping */
};


static inline void kt_init(struct kt *t, const struct rf_platform_options *opts)
{
	memset(t, 0, sizeof *t);
	/* A fatal exit in a test writes its vCPU's last exits to stderr (the test log). */
	struct rf_platform_options o = opts ? *opts : (struct rf_platform_options){ 0 };
	if (!o.exit_log_fd)
		o.exit_log_fd = 2;
	int r = rf_platform_create(&o, &t->p);
	if (r == -ENOENT || r == -EACCES || r == -ENODEV || r == -ENXIO)
		tap_skip_all(rf_last_error());
	if (r < 0) {
		printf("Bail out! rf_platform_create: %s\n", rf_last_error());
		exit(1);
	}
	if (rf_memory_create(t->p, KT_MEM_SIZE, &t->mem) < 0 || rf_as_create(t->p, &t->as) < 0 ||
	    rf_context_create(t->p, &t->c) < 0) {
		printf("Bail out! fixture: %s\n", rf_last_error());
		exit(1);
	}
	t->host = rf_memory_host(t->mem);
	if (rf_as_map(t->as, KT_CODE_VA, 1ull << 20, t->mem, 0, RF_PROT_READ | RF_PROT_EXEC, 0) < 0 ||
	    rf_as_map(t->as, KT_DATA_VA, 2ull << 20, t->mem, 2ull << 20, RF_PROT_READ | RF_PROT_WRITE, RF_MAP_HUGE) < 0 ||
	    rf_as_map(t->as, KT_STACK_VA, 2ull << 20, t->mem, 4ull << 20, RF_PROT_READ | RF_PROT_WRITE, 0) < 0) {
		printf("Bail out! fixture map: %s\n", rf_last_error());
		exit(1);
	}
}

static inline void kt_fini(struct kt *t)
{
	int r = rf_context_destroy(t->c) | rf_as_destroy(t->as) | rf_memory_destroy(t->mem) |
	        rf_platform_destroy(t->p);
	ok(r == 0, "fixture torn down cleanly");
}

static inline void kt_load(struct kt *t, const void *start, const void *end)
{
	size_t n = (size_t)((const unsigned char *)end - (const unsigned char *)start);
	memcpy(t->host, start, n);
	struct rf_regs *r = rf_context_regs(t->c);
	memset(r, 0, sizeof *r);
	r->rip = KT_CODE_VA;
	r->rsp = KT_STACK_TOP;
	r->rflags = 0x202;
}

static inline int kt_switch(struct kt *t, struct rf_event *ev)
{
	memset(ev, 0, sizeof *ev);
	int r = rf_switch(t->c, t->as, ev);
	if (r < 0)
		ok(0, "rf_switch failed: %d %s", r, rf_last_error());
	return r == 0;
}

#define GUEST(name) extern const unsigned char name##_start[], name##_end[]
#define KT_LOAD(t, name) kt_load((t), name##_start, name##_end)

#endif
