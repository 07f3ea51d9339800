/* SPDX-License-Identifier: MIT */
/* Hostile clients against one `ringfence serve` (under its filter): broken framing, malformed and
 * unknown messages, other connections' handles, bad ranges, a client that hangs up mid-switch, one
 * that sends descriptors. After each, a fresh connection must still get a good hello. Shutdown last.
 *
 *   test_proto_hostile RINGFENCE */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "raw.h"
#include "tap.h"

#define CODE(x) RINGFENCE__V1__ERROR_CODE__##x

static struct serve_proc srv;
/* The server's --max-connections: small, so the limit is reached with few threads. */
#define MAX_CONNS 6
#define MAX_CONNS_ARG "6"

#define expect_error(r, code, has, name) ok(error_is(r, code, has), "%s", name)

static void expect_alive(const char *after)
{
	int e = serve_alive(&srv);
	ok(e == 0, "after %s: a fresh connection gets a good hello (%d)", after, e);
}

static Response *hello_on(int fd)
{
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__Hello h = RINGFENCE__V1__HELLO__INIT;
	h.client_version = PROTO_VERSION;
	q.op_case = RINGFENCE__V1__REQUEST__OP_HELLO;
	q.hello = &h;
	return raw_request(fd, &q);
}

static bool good_hello(const Response *r)
{
	return r && !r->error && r->result_case == RINGFENCE__V1__RESPONSE__RESULT_HELLO &&
	       r->hello->protocol_version == PROTO_VERSION;
}

/* ---- framing ---- */

static bool nothing_unread(void *fd)
{
	return proc_unread_bytes(*(int *)fd) == 0;
}

static void test_framing(void)
{
	/* A frame cut short, then the client goes: the server just ends that connection. */
	int fd = raw_connect(&srv);
	const uint8_t cut[] = { 100, 0, 0, 0, 0x08, 0x01, 0x52 };
	raw_send(fd, cut, sizeof cut);
	close(fd);
	expect_alive("a truncated frame");

	/* Length 0: an empty Request, which has no operation. The framing is intact. */
	fd = raw_connect(&srv);
	Response *r = raw_call(fd, "", 0, -1);
	expect_error(r, CODE(BAD_REQUEST), "no operation", "length 0: BAD_REQUEST");
	rfc_free(r);
	r = hello_on(fd);
	ok(good_hello(r), "length 0: the connection still serves");
	rfc_free(r);
	close(fd);
	expect_alive("length 0");

	/* Lengths above the maximum: TOO_LARGE, then the connection ends, and nothing is allocated
	 * (VmPeak would grow by 4 GiB for a malloc of the length). */
	static const uint8_t huge[][4] = { { 0xff, 0xff, 0xff, 0xff }, { 0x01, 0x00, 0x00, 0x01 } };
	for (int i = 0; i < 2; i++) {
		long peak = proc_status_kb(srv.pid, "VmPeak");
		fd = raw_connect(&srv);
		raw_send(fd, huge[i], 4);
		int why;
		r = raw_recv(fd, &why);
		expect_error(r, CODE(TOO_LARGE), NULL, i ? "length max+1: TOO_LARGE" : "length 2^32-1: TOO_LARGE");
		rfc_free(r);
		r = raw_recv(fd, &why);
		ok(!r && (why == 1 || why == -ECONNRESET), "... then the connection is closed (%d)", why);
		rfc_free(r);
		close(fd);
		long grew = proc_status_kb(srv.pid, "VmPeak") - peak;
		ok(peak > 0 && grew < (1l << 20), "... and the server's VmPeak grew by %ld kB only", grew);
		expect_alive(i ? "length max+1" : "length 2^32-1");
	}

	/* The largest length there is, then a byte, then nothing: the server keeps what came, not 16 MiB
	 * per such connection. Measured on connections that already served a hello, so their threads,
	 * stacks and malloc arenas are in the first VmSize: 4 stalled frames would add 64 MiB to it. */
	enum { STALLED = 4 };
	int stalled[STALLED];
	bool all_read = true, served = true;
	for (int i = 0; i < STALLED; i++) {
		stalled[i] = raw_connect(&srv);
		r = hello_on(stalled[i]);
		served &= good_hello(r);
		rfc_free(r);
	}
	long size = proc_status_kb(srv.pid, "VmSize");
	const uint8_t max16[5] = { 0x00, 0x00, 0x00, 0x01, 0x08 };   /* 16 MiB, then the id's tag */
	for (int i = 0; i < STALLED; i++)
		raw_send(stalled[i], max16, sizeof max16);
	for (int i = 0; i < STALLED; i++)
		all_read &= eventually(nothing_unread, &stalled[i], 10000);
	long grew = proc_status_kb(srv.pid, "VmSize") - size;
	ok(served && all_read && size > 0 && grew < 4 * 1024,
	   "%d frames of 16 MiB stalled after a byte: the server read them, and its VmSize grew by %ld kB (under 4 MiB)",
	   STALLED, grew);
	for (int i = 0; i < STALLED; i++)
		close(stalled[i]);
	expect_alive("frames stalled after their length");

	/* Garbage as a message: BAD_REQUEST; the framing is intact, so the connection goes on. */
	static const struct { const char *b; uint32_t n; const char *name; } junk[] = {
		{ "\x0f\x00", 2, "garbage: wire type 7" },
		{ "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11, "garbage: an 11-byte varint tag" },
		{ "\x52\x10\x08", 3, "garbage: hello claiming 16 bytes, with 1" },
		{ "\x08", 1, "garbage: the id's tag without its value" },
	};
	fd = raw_connect(&srv);
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
		r = raw_call(fd, junk[i].b, junk[i].n, -1);
		expect_error(r, CODE(BAD_REQUEST), NULL, junk[i].name);
		rfc_free(r);
	}
	r = hello_on(fd);
	ok(good_hello(r), "garbage: the connection still serves");
	rfc_free(r);
	close(fd);
	expect_alive("garbage");
}

/* ---- unknown fields and operations ---- */

static void test_unknown(void)
{
	int fd = raw_connect(&srv);
	/* Request{id 7, hello{client_version 1, field 9: 5}, field 5: 42, field 1000: "abc"}. */
	static const uint8_t extra[] = { 0x08, 0x07, 0x52, 0x04, 0x08, 0x01, 0x48, 0x05,
	                                 0x28, 0x2a, 0xc2, 0x3e, 0x03, 'a', 'b', 'c' };
	Response *r = raw_call(fd, extra, sizeof extra, -1);
	ok(good_hello(r) && r->id == 7, "unknown fields (in Request and Hello) are ignored");
	rfc_free(r);
	/* An operation this server does not know (field 99; also 29, the next free number). */
	static const uint8_t op99[] = { 0x08, 0x05, 0x9a, 0x06, 0x00 };
	r = raw_call(fd, op99, sizeof op99, -1);
	expect_error(r, CODE(BAD_REQUEST), "no operation", "unknown op field 99: BAD_REQUEST \"no operation\"");
	ok(r && r->id == 5, "... answered with the request's id");
	rfc_free(r);
	static const uint8_t op29[] = { 0x08, 0x06, 0xea, 0x01, 0x00 };
	r = raw_call(fd, op29, sizeof op29, -1);
	expect_error(r, CODE(BAD_REQUEST), "no operation", "unknown op field 29: BAD_REQUEST");
	rfc_free(r);
	/* The schema's requests have no enum fields; protection is a uint32 of bits: unknown bits are
	 * refused rather than ignored. */
	struct rfc c;
	rfc_attach(&c, fd);
	uint64_t as = 0, mem = 0;
	int e = rfc_as_create(&c, &as);
	if (e == 0)
		e = rfc_memory_create(&c, GUEST_MEM, &mem, NULL);
	ok(e == 0, "as and memory for the protection check (%d)", e);
	e = rfc_as_map(&c, as, GUEST_VA, 0x1000, mem, 0, 0x80 | RF_PROT_READ);
	ok(e == -EINVAL && c.code == CODE(INVALID_ARGUMENT), "unknown protection bits: INVALID_ARGUMENT (%d)", e);
	close(fd);   /* as and memory go with the connection */
	expect_alive("unknown fields and operations");
}

/* ---- handles ---- */

static void test_handles(void)
{
	struct objs a;
	objs_make(&srv, &a, GUEST_VA);
	struct rfc b;
	if (serve_connect(&srv, &b))
		return;
	uint8_t byte;
	struct rf_regs regs = { 0 };
	struct rf_event ev;
	int e = rfc_memory_read(&b, 12345, 0, &byte, 1);
	ok(e == -ENOENT && b.code == CODE(NOT_FOUND), "unknown memory handle: NOT_FOUND (%d)", e);
	e = rfc_switch(&b, 0, 0, &ev, NULL);
	ok(e == -ENOENT && b.code == CODE(NOT_FOUND), "handle 0: NOT_FOUND (%d)", e);
	e = rfc_kick(&b, ~0ull);
	ok(e == -ENOENT && b.code == CODE(NOT_FOUND), "kick of an unknown context: NOT_FOUND (%d)", e);
	e = rfc_destroy(&a.c, H_AS, a.mem);
	ok(e == -ENOENT && a.c.code == CODE(NOT_FOUND), "a memory's handle as an address space: NOT_FOUND (%d)", e);
	e = rfc_get_regs(&a.c, a.as, &regs);
	ok(e == -ENOENT && a.c.code == CODE(NOT_FOUND), "an address space's handle as a context: NOT_FOUND (%d)", e);

	/* Connection A's handles used on connection B. */
	e = rfc_memory_read(&b, a.mem, 0, &byte, 1);
	ok(e == -ENOENT && b.code == CODE(NOT_FOUND), "foreign memory_read: NOT_FOUND (%d)", e);
	e = rfc_memory_write(&b, a.mem, 0, "x", 1);
	ok(e == -ENOENT && a.host[0] == guest_code[0], "foreign memory_write: NOT_FOUND, nothing written (%d)", e);
	uint64_t bas;
	if (rfc_as_create(&b, &bas) == 0) {
		e = rfc_as_map(&b, bas, GUEST_VA, 0x1000, a.mem, 0, RF_PROT_READ);
		ok(e == -ENOENT && b.code == CODE(NOT_FOUND), "mapping a foreign memory: NOT_FOUND (%d)", e);
	}
	e = rfc_as_map(&b, a.as, 0x10000000, 0x1000, a.mem, 0, RF_PROT_READ);
	ok(e == -ENOENT && b.code == CODE(NOT_FOUND), "as_map on a foreign address space: NOT_FOUND (%d)", e);
	e = rfc_as_unmap(&b, a.as, GUEST_VA, GUEST_MEM);
	ok(e == -ENOENT, "as_unmap on a foreign address space: NOT_FOUND (%d)", e);
	e = rfc_set_regs(&b, a.ctx, &regs);
	ok(e == -ENOENT, "set_regs on a foreign context: NOT_FOUND (%d)", e);
	e = rfc_get_regs(&b, a.ctx, &regs);
	ok(e == -ENOENT, "get_regs on a foreign context: NOT_FOUND (%d)", e);
	e = rfc_switch(&b, a.ctx, a.as, &ev, NULL);
	ok(e == -ENOENT, "switch of a foreign context in a foreign space: NOT_FOUND (%d)", e);
	e = rfc_switch(&b, a.ctx, bas, &ev, NULL);
	ok(e == -ENOENT, "switch of a foreign context in its own space: NOT_FOUND (%d)", e);
	e = rfc_destroy(&b, H_CONTEXT, a.ctx);
	ok(e == -ENOENT, "destroying a foreign context: NOT_FOUND (%d)", e);
	e = rfc_destroy(&b, H_MEMORY, a.mem);
	ok(e == -ENOENT, "destroying a foreign memory: NOT_FOUND (%d)", e);
	/* Kick is the one operation allowed across connections: A's next switch reports it at once. */
	e = rfc_kick(&b, a.ctx);
	ok(e == 0, "kick of a foreign context: allowed (%d %s)", e, b.error);
	struct rf_regs out;
	e = rfc_switch(&a.c, a.ctx, a.as, &ev, &out);
	ok(e == 0 && ev.type == RF_EVENT_INTERRUPTED && out.rip == GUEST_VA,
	   "... the owner's next switch: INTERRUPTED before the first instruction (%d, type %d, rip 0x%llx)", e,
	   ev.type, (unsigned long long)out.rip);
	e = rfc_switch(&a.c, a.ctx, a.as, &ev, &out);
	ok(e == 0 && ev.type == RF_EVENT_SYSCALL && out.rax == 39, "... and the one after runs it: a syscall");
	rfc_close(&b);
	objs_drop(&a);
	expect_alive("unknown and foreign handles");
}

/* ---- mappings and ranges ---- */

/* Runs the guest's "read 0x500000, syscall": the value read, or ~0 if the switch did not end in
 * that syscall (*ev says what it ended in). */
static uint64_t read_data(struct objs *o, uint64_t as, struct rf_event *ev)
{
	struct rf_regs r = { .rip = GUEST_VA + G_READ_DATA, .rflags = 0x202 }, out;
	if (rfc_set_regs(&o->c, o->ctx, &r) || rfc_switch(&o->c, o->ctx, as, ev, &out) ||
	    ev->type != RF_EVENT_SYSCALL)
		return ~0ull;
	return out.rax & 0xffffffff;
}

static void test_mappings(void)
{
	struct objs o;
	objs_make(&srv, &o, GUEST_VA);
	struct rfc *c = &o.c;
	for (uint32_t i = 0; i < 3; i++)
		memcpy(o.host + 0x2000 + 0x1000 * i, &(uint32_t){ 0x1111 * (i + 1) }, 4);
	uint64_t as;
	int e = rfc_as_create(c, &as);
	if (!e)
		e = rfc_as_map(c, as, GUEST_VA, 0x1000, o.mem, 0, RF_PROT_READ | RF_PROT_EXEC);
	if (!e)
		e = rfc_as_map(c, as, G_DATA_VA, 0x1000, o.mem, 0x2000, RF_PROT_READ);
	struct rf_event ev;
	ok(e == 0 && read_data(&o, as, &ev) == 0x1111, "a page mapped: the guest reads it");
	e = rfc_as_map(c, as, G_DATA_VA, 0x1000, o.mem, 0x3000, RF_PROT_READ);
	ok(e == 0 && read_data(&o, as, &ev) == 0x2222, "mapped again over the same page: replaced (%d)", e);
	e = rfc_as_map(c, as, G_DATA_VA - 0x1000, 0x2000, o.mem, 0x3000, RF_PROT_READ);
	ok(e == 0 && read_data(&o, as, &ev) == 0x3333, "a mapping overlapping half of it: replaced (%d)", e);
	e = rfc_as_unmap(c, as, G_DATA_VA, 0x1000);
	ok(e == 0 && read_data(&o, as, &ev) == ~0ull && ev.type == RF_EVENT_PAGE_FAULT &&
	   ev.fault_addr == G_DATA_VA && !ev.present, "unmapped: the read faults, not present (%d, type %d)", e, ev.type);

	static const struct { uint64_t va, len, off; unsigned prot, flags; const char *name; } bad[] = {
		{ RF_USER_END, 0x1000, 0, RF_PROT_READ, 0, "va at the end of the user half" },
		{ RF_USER_END - 0x1000, 0x2000, 0, RF_PROT_READ, 0, "a range crossing the end of the user half" },
		{ 0xffff800000000000ull, 0x1000, 0, RF_PROT_READ, 0, "va in the supervisor half" },
		{ GUEST_VA, 0xfffffffffffff000ull, 0, RF_PROT_READ, 0, "a length that overflows" },
		{ ~0ull & ~0xfffull, 0x2000, 0, RF_PROT_READ, 0, "va + length wraps" },
		{ GUEST_VA, 0x1000, GUEST_MEM, RF_PROT_READ, 0, "offset at the end of the memory" },
		{ GUEST_VA, 0x2000, GUEST_MEM - 0x1000, RF_PROT_READ, 0, "a range past the end of the memory" },
		{ GUEST_VA, 0x2000, ~0ull & ~0xfffull, RF_PROT_READ, 0, "offset + length wraps" },
		{ GUEST_VA + 0x800, 0x1000, 0, RF_PROT_READ, 0, "an unaligned va" },
		{ GUEST_VA, 0x1000, 0x800, RF_PROT_READ, 0, "an unaligned offset" },
		{ GUEST_VA, 0, 0, RF_PROT_READ, 0, "length 0" },
		{ GUEST_VA + 0x1000, RF_HUGE_SIZE, 0, RF_PROT_READ, 1, "huge pages at a va not 2 MiB aligned" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		Request q = RINGFENCE__V1__REQUEST__INIT;
		Ringfence__V1__AsMap m = RINGFENCE__V1__AS_MAP__INIT;
		m.space = as, m.va = bad[i].va, m.length = bad[i].len, m.memory = o.mem, m.offset = bad[i].off;
		m.prot = bad[i].prot, m.huge = bad[i].flags;
		q.op_case = RINGFENCE__V1__REQUEST__OP_AS_MAP;
		q.as_map = &m;
		Response *r = raw_request(c->fd, &q);
		char name[128];
		snprintf(name, sizeof name, "as_map, %s: INVALID_ARGUMENT", bad[i].name);
		expect_error(r, CODE(INVALID_ARGUMENT), NULL, name);
		rfc_free(r);
	}
	e = rfc_as_unmap(c, as, RF_USER_END - 0x1000, 0x2000);
	ok(e == -EINVAL, "as_unmap crossing the end of the user half: INVALID_ARGUMENT (%d)", e);
	ok(read_data(&o, as, &ev) == ~0ull && ev.type == RF_EVENT_PAGE_FAULT && ev.fault_addr == G_DATA_VA,
	   "... and none of them mapped anything (the code runs, its read faults)");

	/* Memories: sizes, reads and writes past the end, a read larger than one message. */
	uint64_t m2;
	e = rfc_memory_create(c, 3ull << 20, &m2, NULL);
	ok(e == -EINVAL && c->code == CODE(INVALID_ARGUMENT), "memory_create of 3 MiB: INVALID_ARGUMENT (%d)", e);
	e = rfc_memory_create(c, 0, &m2, NULL);
	ok(e < 0, "memory_create of 0 bytes: refused (%d, code %d)", e, c->code);
	e = rfc_memory_create(c, 128ull << 30, &m2, NULL);
	ok(e == -ENOMEM && c->code == CODE(NO_MEMORY), "memory_create of 128 GiB: NO_MEMORY, the server's limit (%d)", e);
	e = rfc_memory_create(c, ~0ull << 21, &m2, NULL);
	ok(e == -ENOMEM && c->code == CODE(NO_MEMORY), "memory_create of 2^64 - 2 MiB: NO_MEMORY (%d)", e);
	uint8_t buf[2];
	static const struct { uint64_t off, len; const char *name; } past[] = {
		{ GUEST_MEM, 1, "at the end" }, { GUEST_MEM - 1, 2, "across the end" },
		{ ~0ull, 2, "offset + length wraps" }, { 0, GUEST_MEM + 1, "longer than the memory" },
	};
	for (size_t i = 0; i < sizeof past / sizeof past[0]; i++) {
		Request q = RINGFENCE__V1__REQUEST__INIT;
		Ringfence__V1__MemoryRead m = RINGFENCE__V1__MEMORY_READ__INIT;
		m.memory = o.mem, m.offset = past[i].off, m.length = past[i].len;
		q.op_case = RINGFENCE__V1__REQUEST__OP_MEMORY_READ;
		q.memory_read = &m;
		Response *r = raw_request(c->fd, &q);
		char name[128];
		snprintf(name, sizeof name, "memory_read %s: OUT_OF_RANGE", past[i].name);
		expect_error(r, CODE(OUT_OF_RANGE), NULL, name);
		rfc_free(r);
		if (past[i].len <= 2) {
			e = rfc_memory_write(c, o.mem, past[i].off, "xy", past[i].len);
			ok(e == -ERANGE && c->code == CODE(OUT_OF_RANGE), "memory_write %s: OUT_OF_RANGE (%d)", past[i].name, e);
		}
	}
	ok(rfc_memory_read(c, o.mem, GUEST_MEM, buf, 0) == 0, "memory_read of 0 bytes at the end: fine");
	uint64_t big;
	e = rfc_memory_create(c, 32ull << 20, &big, NULL);
	if (e == 0) {
		Request q = RINGFENCE__V1__REQUEST__INIT;
		Ringfence__V1__MemoryRead m = RINGFENCE__V1__MEMORY_READ__INIT;
		m.memory = big, m.length = 20ull << 20;
		q.op_case = RINGFENCE__V1__REQUEST__OP_MEMORY_READ;
		q.memory_read = &m;
		Response *r = raw_request(c->fd, &q);
		expect_error(r, CODE(TOO_LARGE), NULL, "memory_read of 20 MiB: TOO_LARGE");
		rfc_free(r);
		size_t most = PROTO_MAX_MESSAGE - PROTO_HEADROOM;
		uint8_t *all = malloc(most);
		e = all ? rfc_memory_read(c, big, 0, all, most) : -ENOMEM;
		ok(e == 0, "memory_read of the most one message carries (%zu bytes): fine (%d)", most, e);
		free(all);
		ok(rfc_destroy(c, H_MEMORY, big) == 0, "the 32 MiB memory is destroyed");
	}
	objs_drop(&o);
	expect_alive("bad mappings and ranges");
}

/* ---- lifecycle: hanging up mid-switch, descriptors sent to the server ---- */

static bool switch_by_socket(struct objs *o)
{
	send_switch(o);
	return guest_wait_spinning(o->host);
}

static void test_hangup_mid_switch(void)
{
	struct rfc watcher;
	if (serve_connect(&srv, &watcher))
		return;
	ok(conns_eventually(&watcher, 1, 10000), "before: only the watching connection is open");
	struct hangup_round first, last;
	hangup_rounds(&srv, &watcher, switch_by_socket, &first, &last);
	ok(first.running, "round 0: the guest spins in the hung-up connection's switch");
	ok(first.freed, "round 0: the connection is gone (stats: 1 connection)");
	ok(last.running, "round %d: the guest spins in the hung-up connection's switch", HANGUP_ROUNDS - 1);
	ok(last.freed, "round %d: the connection is gone (stats: 1 connection)", HANGUP_ROUNDS - 1);
	ok(last.fds == first.fds, "round %d: the server holds %d descriptors, as after round 0 (%d)",
	   HANGUP_ROUNDS - 1, last.fds, first.fds);
	rfc_close(&watcher);
	expect_alive("clients hanging up mid-switch");
}

/* A half-close (shutdown(SHUT_WR)) is not a hang-up: that client still reads its answers, so its
 * running switch is left alone until another connection kicks it, and the answer reaches it. */
static void test_half_close_mid_switch(void)
{
	struct objs o;
	objs_make(&srv, &o, GUEST_VA + G_SPIN);
	send_switch(&o);
	ok(guest_wait_spinning(o.host), "half-close: the guest spins in the switch");
	ok(shutdown(o.c.fd, SHUT_WR) == 0, "half-close: the client shuts down its writing side");
	/* A whole round trip on another connection later, the switch must still be running. */
	struct rfc k;
	int e = serve_connect(&srv, &k);
	Ringfence__V1__HelloReply *h = NULL;
	if (!e)
		e = rfc_hello(&k, &h);
	rfc_free_hello(h);
	struct pollfd pf = { o.c.fd, POLLIN, 0 };
	ok(e == 0 && poll(&pf, 1, 0) == 0, "half-close: no answer yet, the switch was not taken back (%d)", e);
	ok(rfc_kick(&k, o.ctx) == 0, "half-close: another connection kicks the context");
	int why = 0;
	Response *r = raw_recv(o.c.fd, &why);
	ok(r && !r->error && r->result_case == RINGFENCE__V1__RESPONSE__RESULT_EVENT &&
	       r->event->type == RINGFENCE__V1__EVENT_TYPE__EVENT_INTERRUPTED,
	   "half-close: the client reads its switch's answer, an interrupted event (%d)", why);
	rfc_free(r);
	rfc_close(&k);
	objs_drop(&o);
	expect_alive("a client half-closing mid-switch");
}

/* One connection more than the server serves is told so (id 0, CONNECTION_LIMIT) and closed; the
 * others go on. The server runs with --max-connections MAX_CONNS. */
static void test_connection_limit(void)
{
	struct rfc watcher;
	if (serve_connect(&srv, &watcher))
		return;
	ok(conns_eventually(&watcher, 1, 10000), "limit: before, only the watching connection is open");
	int fds[MAX_CONNS - 1];
	bool served = true;
	for (int i = 0; i < MAX_CONNS - 1; i++) {
		fds[i] = raw_connect(&srv);
		Response *r = hello_on(fds[i]);
		served &= good_hello(r);
		rfc_free(r);
	}
	ok(served, "limit: %d connections at once are served", MAX_CONNS);
	int extra = raw_connect(&srv), why = 0;
	Response *r = raw_recv(extra, &why);
	expect_error(r, CODE(CONNECTION_LIMIT), "connections at once", "limit: one more is told CONNECTION_LIMIT");
	ok(r && r->id == 0, "limit: ... in a response with id 0");
	rfc_free(r);
	r = raw_recv(extra, &why);
	ok(!r && why == 1, "limit: ... and closed (%d)", why);
	rfc_free(r);
	close(extra);
	r = hello_on(fds[0]);
	ok(good_hello(r), "limit: the served connections go on");
	rfc_free(r);
	for (int i = 0; i < MAX_CONNS - 1; i++)
		close(fds[i]);
	ok(conns_eventually(&watcher, 1, 10000), "limit: after they close, only the watching connection is open");
	rfc_close(&watcher);
	expect_alive("a connection over the limit");
}

/* A client holds the memfds the server maps (a memory's, a channel's). Were it able to shrink one,
 * the server's next touch of a page past the new end would be a SIGBUS, killing every sandbox it
 * serves: both are sealed against shrinking and growing, and the seals sealed. */
static void test_memfd_shrink_cannot_crash_server(void)
{
	struct objs o;
	objs_make(&srv, &o, GUEST_VA);
	int e = ftruncate(o.mfd, 0) < 0 ? -errno : 0;
	ok(e == -EPERM, "a memory's memfd cannot be shrunk by the client (%d)", e);
	e = ftruncate(o.mfd, 2 * GUEST_MEM) < 0 ? -errno : 0;
	ok(e == -EPERM, "nor grown (%d)", e);
	e = fcntl(o.mfd, F_ADD_SEALS, F_SEAL_WRITE) < 0 ? -errno : 0;
	ok(e == -EPERM, "nor sealed further (%d)", e);
	uint8_t back[16];
	e = rfc_memory_read(&o.c, o.mem, 0, back, sizeof back);
	ok(e == 0 && !memcmp(back, guest_code, sizeof back), "the server still reads that memory (%d)", e);
	struct rf_event ev;
	e = rfc_switch(&o.c, o.ctx, o.as, &ev, NULL);
	ok(e == 0 && ev.type == RF_EVENT_SYSCALL, "and the guest still runs in it (%d)", e);

	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__Empty em = RINGFENCE__V1__EMPTY__INIT;
	q.op_case = RINGFENCE__V1__REQUEST__OP_CHANNEL_OPEN;
	q.channel_open = &em;
	Response *r = NULL;
	int cfd = -1;
	e = rfc_call(&o.c, &q, &r, &cfd);
	ok(e == 0 && r && !r->error && cfd >= 0, "channel_open: the channel's memfd (%d)", e);
	e = cfd >= 0 && ftruncate(cfd, 0) < 0 ? -errno : 0;
	ok(e == -EPERM, "a channel's memfd cannot be shrunk by the client (%d)", e);
	rfc_free(r);
	struct channel_page *pg = NULL;
	if (cfd >= 0 && channel_map(cfd, &pg) == 0) {
		o.c.chan = pg;
		e = rfc_switch(&o.c, o.ctx, o.as, &ev, NULL);
		ok(e == 0 && ev.type == RF_EVENT_PAGE_FAULT, "the channel still carries a switch (%d)", e);
	} else
		ok(false, "the channel's memfd maps");
	if (cfd >= 0)
		close(cfd);
	objs_drop(&o);
	expect_alive("clients resizing the memfds they were given");
}

static void test_scm_rights(void)
{
	int fd = raw_connect(&srv);
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return;
	/* Counted once earlier connections are gone on the server's side too (closed, then counted). */
	struct rfc c;
	rfc_attach(&c, fd);
	ok(conns_eventually(&c, 1, 10000), "only this connection is open");
	int before = proc_fd_count(srv.pid);
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__Hello h = RINGFENCE__V1__HELLO__INIT;
	q.op_case = RINGFENCE__V1__REQUEST__OP_HELLO;
	q.hello = &h;
	uint8_t buf[64];
	size_t n = ringfence__v1__request__pack(&q, buf);
	Response *r = raw_call(fd, buf, (uint32_t)n, p[1]);   /* the pipe's write end rides along */
	ok(good_hello(r), "a descriptor sent with a request: the request is served");
	rfc_free(r);
	close(p[1]);
	/* Nobody may hold the write end now: the read end hangs up at once. */
	struct pollfd pf = { p[0], POLLIN, 0 };
	int pr = poll(&pf, 1, 5000);
	ok(pr == 1 && (pf.revents & POLLHUP), "... and dropped by the server (the pipe's reader sees the hang-up)");
	ok_eq(proc_fd_count(srv.pid), before, "... the server's descriptor count is unchanged");
	close(p[0]);
	close(fd);
	expect_alive("a descriptor sent by a client");
}

/* Last: every connection's later requests get SHUT_DOWN; the server exits once they close. */
static void test_shutdown(void)
{
	int a = raw_connect(&srv), b = raw_connect(&srv);
	Response *r = hello_on(b);   /* b is being served before the shutdown */
	rfc_free(r);
	struct rfc c;
	rfc_attach(&c, a);
	ok(rfc_shutdown(&c) == 0, "shutdown");
	r = hello_on(a);
	expect_error(r, CODE(SHUT_DOWN), NULL, "after shutdown: a request on the same connection gets SHUT_DOWN");
	rfc_free(r);
	r = hello_on(b);
	expect_error(r, CODE(SHUT_DOWN), NULL, "after shutdown: a request on another connection gets SHUT_DOWN");
	rfc_free(r);
	close(a);
	close(b);
	int e = serve_wait(&srv, 30000);
	ok(e == 0 && WIFEXITED(srv.status) && WEXITSTATUS(srv.status) == 0,
	   "the server exits 0 once its connections close (%d, status 0x%x)", e, srv.status);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		printf("Bail out! usage: %s RINGFENCE\n", argv[0]);
		return 1;
	}
	kvm_or_skip();
	static const char *const args[] = { "--max-connections", MAX_CONNS_ARG, NULL };
	struct serve_opts so = { .args = args, .keep = { -1, -1 } };
	int e = serve_start(&srv, argv[1], &so);
	if (e) {
		printf("Bail out! starting ringfence serve: %s\n", strerror(-e));
		return 1;
	}
	expect_alive("start");
	test_framing();
	test_unknown();
	test_handles();
	test_mappings();
	test_hangup_mid_switch();
	test_half_close_mid_switch();
	test_connection_limit();
	test_memfd_shrink_cannot_crash_server();
	test_scm_rights();
	test_shutdown();
	serve_cleanup(&srv);
	return tap_done();
}
