/* SPDX-License-Identifier: MIT */
/* protofuzz's seeds, built with protobuf-c from the schema (so they follow it when it changes): valid
 * sessions that reach every operation with live handles, and requests each server check must refuse.
 * Handle numbers are those a fresh server gives (1, 2, ... in creation order). */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "proto.h"

#define CODE_VA 0x400000ull
#define DATA_VA 0x10000000ull
#define MIB2    (2ull << 20)
/* struct kvm_xsave: the platform's fpu_size unless KVM offers a larger XSAVE image */
#define XSAVE_SIZE 4096

typedef Ringfence__V1__Request__OpCase Op;

struct buf {
	uint8_t *p;
	size_t n, cap;
	bool oom;
};

static void put(struct buf *b, const void *bytes, size_t n)
{
	if (!n)
		return;
	if (b->n + n > b->cap) {
		size_t cap = (b->n + n) * 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, bytes, n);
	b->n += n;
}

/* One record: the 2-byte length, then the bytes. */
static void raw(struct buf *b, const void *bytes, size_t n)
{
	uint8_t len[2] = { (uint8_t)n, (uint8_t)(n >> 8) };
	put(b, len, 2);
	put(b, bytes, n);
}

static void req(struct buf *b, Op op, void *msg)
{
	static uint64_t id;
	Request q = RINGFENCE__V1__REQUEST__INIT;
	q.id = ++id;
	q.op_case = op;
	q.hello = msg;   /* the oneof's members share one pointer */
	uint8_t tmp[8192];
	size_t n = ringfence__v1__request__get_packed_size(&q);
	if (n > sizeof tmp) {
		b->oom = true;
		return;
	}
	raw(b, tmp, ringfence__v1__request__pack(&q, tmp));
}

static Ringfence__V1__Empty empty = RINGFENCE__V1__EMPTY__INIT;

static void hello(struct buf *b)
{
	Ringfence__V1__Hello h = RINGFENCE__V1__HELLO__INIT;
	h.client_version = PROTO_VERSION;
	req(b, RINGFENCE__V1__REQUEST__OP_HELLO, &h);
}

static void memory_create(struct buf *b, uint64_t size)
{
	Ringfence__V1__MemoryCreate m = RINGFENCE__V1__MEMORY_CREATE__INIT;
	m.size = size;
	req(b, RINGFENCE__V1__REQUEST__OP_MEMORY_CREATE, &m);
}

static void destroy(struct buf *b, Op op, uint64_t handle)
{
	Ringfence__V1__Destroy d = RINGFENCE__V1__DESTROY__INIT;
	d.handle = handle;
	req(b, op, &d);
}

static void memory_write(struct buf *b, uint64_t mem, uint64_t offset, const void *data, size_t len)
{
	Ringfence__V1__MemoryWrite w = RINGFENCE__V1__MEMORY_WRITE__INIT;
	w.memory = mem;
	w.offset = offset;
	w.data = (ProtobufCBinaryData){ len, (uint8_t *)data };
	req(b, RINGFENCE__V1__REQUEST__OP_MEMORY_WRITE, &w);
}

static void memory_read(struct buf *b, uint64_t mem, uint64_t offset, uint64_t len)
{
	Ringfence__V1__MemoryRead r = RINGFENCE__V1__MEMORY_READ__INIT;
	r.memory = mem;
	r.offset = offset;
	r.length = len;
	req(b, RINGFENCE__V1__REQUEST__OP_MEMORY_READ, &r);
}

static void as_map(struct buf *b, uint64_t as, uint64_t va, uint64_t len, uint64_t mem, uint64_t off,
                   uint32_t prot, bool huge)
{
	Ringfence__V1__AsMap m = RINGFENCE__V1__AS_MAP__INIT;
	m.space = as, m.va = va, m.length = len, m.memory = mem, m.offset = off, m.prot = prot, m.huge = huge;
	req(b, RINGFENCE__V1__REQUEST__OP_AS_MAP, &m);
}

static void as_unmap(struct buf *b, uint64_t as, uint64_t va, uint64_t len)
{
	Ringfence__V1__AsRange r = RINGFENCE__V1__AS_RANGE__INIT;
	r.space = as, r.va = va, r.length = len;
	req(b, RINGFENCE__V1__REQUEST__OP_AS_UNMAP, &r);
}

static void as_protect(struct buf *b, uint64_t as, uint64_t va, uint64_t len, uint32_t prot)
{
	Ringfence__V1__AsProtect p = RINGFENCE__V1__AS_PROTECT__INIT;
	p.space = as, p.va = va, p.length = len, p.prot = prot;
	req(b, RINGFENCE__V1__REQUEST__OP_AS_PROTECT, &p);
}

static void get_regs(struct buf *b, uint64_t ctx, bool fpu)
{
	Ringfence__V1__GetRegs g = RINGFENCE__V1__GET_REGS__INIT;
	g.context = ctx;
	g.fpu = fpu;
	req(b, RINGFENCE__V1__REQUEST__OP_GET_REGS, &g);
}

/* The registers of a guest at CODE_VA; fpu_len > 0: with an FPU image of that many bytes. */
static void set_regs(struct buf *b, uint64_t ctx, size_t fpu_len)
{
	static uint8_t fpu[4096];
	Ringfence__V1__Regs r = RINGFENCE__V1__REGS__INIT;
	r.rip = CODE_VA, r.rsp = CODE_VA + 4096, r.rflags = 0x202, r.rax = 39;
	if (fpu_len && fpu_len <= sizeof fpu) {
		fpu[0] = 0x7f, fpu[1] = 0x03;   /* FCW: the reset value */
		fpu[24] = 0x80, fpu[25] = 0x1f; /* MXCSR: the reset value */
		r.fpu = (ProtobufCBinaryData){ fpu_len, fpu };
	}
	Ringfence__V1__SetRegs s = RINGFENCE__V1__SET_REGS__INIT;
	s.context = ctx;
	s.regs = &r;
	req(b, RINGFENCE__V1__REQUEST__OP_SET_REGS, &s);
}

static void switch_to(struct buf *b, uint64_t ctx, uint64_t as)
{
	Ringfence__V1__SwitchTo s = RINGFENCE__V1__SWITCH_TO__INIT;
	s.context = ctx, s.space = as;
	req(b, RINGFENCE__V1__REQUEST__OP_SWITCH_TO, &s);
}

static void kick(struct buf *b, uint64_t ctx)
{
	Ringfence__V1__Kick k = RINGFENCE__V1__KICK__INIT;
	k.context = ctx;
	req(b, RINGFENCE__V1__REQUEST__OP_KICK, &k);
}

static const uint8_t syscall_loop[] = { 0x0f, 0x05, 0xeb, 0xfc };   /* 1: syscall; jmp 1b */

/* memory 1 with the code, space 2 mapping it, context 3 set to run it. */
static void guest(struct buf *b)
{
	memory_create(b, 2 * MIB2);
	memory_write(b, 1, 0, syscall_loop, sizeof syscall_loop);
	req(b, RINGFENCE__V1__REQUEST__OP_AS_CREATE, &empty);
	as_map(b, 2, CODE_VA, 4096, 1, 0, RF_PROT_READ | RF_PROT_EXEC, false);
	as_map(b, 2, DATA_VA, MIB2, 1, MIB2, RF_PROT_READ | RF_PROT_WRITE, true);
	req(b, RINGFENCE__V1__REQUEST__OP_CONTEXT_CREATE, &empty);
	set_regs(b, 3, 0);
}

static void make(struct buf *b, int which)
{
	switch (which) {
	case 0:
		hello(b);
		break;
	case 1:
		memory_create(b, MIB2);
		memory_write(b, 1, 0, syscall_loop, sizeof syscall_loop);
		memory_read(b, 1, 0, 16);
		memory_read(b, 1, MIB2 - 8, 8);
		destroy(b, RINGFENCE__V1__REQUEST__OP_MEMORY_DESTROY, 1);
		break;
	case 2:
		memory_create(b, 2 * MIB2);
		req(b, RINGFENCE__V1__REQUEST__OP_AS_CREATE, &empty);
		as_map(b, 2, CODE_VA, 4096, 1, 0, RF_PROT_READ | RF_PROT_EXEC, false);
		as_map(b, 2, DATA_VA, MIB2, 1, MIB2, RF_PROT_READ | RF_PROT_WRITE, true);
		as_protect(b, 2, DATA_VA, 4096, RF_PROT_READ);
		as_unmap(b, 2, CODE_VA, 4096);
		as_unmap(b, 2, DATA_VA, MIB2);
		destroy(b, RINGFENCE__V1__REQUEST__OP_AS_DESTROY, 2);
		destroy(b, RINGFENCE__V1__REQUEST__OP_MEMORY_DESTROY, 1);
		break;
	case 3:
		req(b, RINGFENCE__V1__REQUEST__OP_CONTEXT_CREATE, &empty);
		set_regs(b, 1, 0);
		get_regs(b, 1, false);
		get_regs(b, 1, true);
		destroy(b, RINGFENCE__V1__REQUEST__OP_CONTEXT_DESTROY, 1);
		break;
	case 4:
		hello(b);
		guest(b);
		switch_to(b, 3, 2);
		kick(b, 3);
		switch_to(b, 3, 2);
		get_regs(b, 3, true);
		req(b, RINGFENCE__V1__REQUEST__OP_STATS, &empty);
		memory_read(b, 1, 0, sizeof syscall_loop);
		break;
	case 5:
		hello(b);
		req(b, RINGFENCE__V1__REQUEST__OP_STATS, &empty);
		req(b, RINGFENCE__V1__REQUEST__OP_SHUTDOWN, &empty);
		break;
	case 6:   /* an FPU image of the usual size, then of a wrong one */
		req(b, RINGFENCE__V1__REQUEST__OP_CONTEXT_CREATE, &empty);
		set_regs(b, 1, XSAVE_SIZE);
		get_regs(b, 1, true);
		set_regs(b, 1, 100);
		break;
	case 7: { /* bytes that are no Request, or one with no operation */
		static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
		static const uint8_t unknown_op[] = { 0x08, 0x05, 0x98, 0x06, 0x00 };   /* id 5, field 99 */
		static const uint8_t cut[] = { 0x08, 0x05, 0x5a, 0x10, 0x08 };          /* memory_create, cut short */
		raw(b, NULL, 0);
		raw(b, junk, sizeof junk);
		raw(b, unknown_op, sizeof unknown_op);
		raw(b, cut, sizeof cut);
		break;
	}
	case 8:   /* sizes and ranges the server or the platform must refuse */
		memory_create(b, 1);
		memory_create(b, 0);
		memory_create(b, 1ull << 50);                /* above the server's memory limit */
		memory_create(b, ~0ull - MIB2 + 1);
		memory_create(b, MIB2);                      /* 1 */
		memory_read(b, 1, MIB2, 1);
		memory_read(b, 1, 1, ~0ull);
		memory_write(b, 1, ~0ull, syscall_loop, sizeof syscall_loop);
		req(b, RINGFENCE__V1__REQUEST__OP_AS_CREATE, &empty);   /* 2 */
		as_map(b, 2, CODE_VA, 4096, 1, 0, 8, false);
		as_map(b, 2, CODE_VA, ~0ull - 4095, 1, 0, RF_PROT_READ, false);
		as_map(b, 2, RF_USER_END - 4096, 8192, 1, 0, RF_PROT_READ, false);
		as_map(b, 2, CODE_VA, 4096, 1, MIB2, RF_PROT_READ, false);
		as_protect(b, 2, CODE_VA, 4096, 0x10);
		as_unmap(b, 2, 1, 4096);
		break;
	case 9:   /* handles of another kind, unknown ones, and a memory destroyed while mapped */
		guest(b);
		switch_to(b, 2, 3);
		switch_to(b, 3, 1);
		switch_to(b, 99, 2);
		get_regs(b, 2, false);
		kick(b, 1);
		kick(b, 0);
		destroy(b, RINGFENCE__V1__REQUEST__OP_MEMORY_DESTROY, 1);   /* BUSY: space 2 maps it */
		destroy(b, RINGFENCE__V1__REQUEST__OP_AS_DESTROY, 1);
		destroy(b, RINGFENCE__V1__REQUEST__OP_CONTEXT_DESTROY, 3);
		get_regs(b, 3, false);
		destroy(b, RINGFENCE__V1__REQUEST__OP_CONTEXT_DESTROY, 3);
		break;
	case 10:  /* the largest read a reply carries, and one byte more */
		memory_create(b, 16 * MIB2);
		memory_read(b, 1, 0, PROTO_MAX_MESSAGE - PROTO_HEADROOM);
		memory_read(b, 1, 0, PROTO_MAX_MESSAGE - PROTO_HEADROOM + 1);
		break;
	case 11:  /* everything after a shutdown is refused */
		req(b, RINGFENCE__V1__REQUEST__OP_SHUTDOWN, &empty);
		hello(b);
		req(b, RINGFENCE__V1__REQUEST__OP_CONTEXT_CREATE, &empty);
		break;
	}
}

static const char *const names[] = {
	"valid-hello", "valid-memory", "valid-as", "valid-context", "valid-switch", "valid-shutdown",
	"fpu-image", "bad-bytes", "bad-ranges", "bad-handles", "big-read", "after-shutdown",
};

int pf_seeds(struct pf_seed *seeds, int max)
{
	int n = 0;
	for (int i = 0; i < (int)(sizeof names / sizeof names[0]) && n < max; i++) {
		struct buf b = { 0 };
		make(&b, i);
		if (b.oom) {
			free(b.p);
			while (n > 0)
				free(seeds[--n].data);
			return -1;
		}
		seeds[n++] = (struct pf_seed){ names[i], b.p, b.n };
	}
	return n;
}
