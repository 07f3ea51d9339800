/* SPDX-License-Identifier: MIT */
/* The control plane end to end: `ringfence serve --socket` in its own process, under its syscall
 * filter (so every operation here also proves the filter lets it through), driven by the C client.
 * With --channel, the first connection opens the switch channel right after hello, so everything
 * after goes through it but memory_create (whose memfd only the socket can carry).
 *
 *   test_proto_e2e RINGFENCE [--channel] */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "serve_util.h"
#include "tap.h"

static struct serve_proc srv;
static bool channel;

static void bail(const char *what, int e)
{
	printf("Bail out! %s: %s\n", what, strerror(-e));
	serve_cleanup(&srv);
	exit(1);
}

static void check_hello(struct rfc *c)
{
	Ringfence__V1__HelloReply *h = NULL;
	int e = rfc_hello(c, &h);
	ok(e == 0, "hello (%d)", e);
	if (e)
		return;
	ok_eq(h->protocol_version, 1, "hello: protocol_version 1");
	ok_eq(h->max_message_size, PROTO_MAX_MESSAGE, "hello: max_message_size is 16 MiB");
	ok(h->mmu == RINGFENCE__V1__MMU__MMU_DIRECT || h->mmu == RINGFENCE__V1__MMU__MMU_SHADOW,
	   "hello: mmu is known (%d)", h->mmu);
	ok(h->syscall_mode == RINGFENCE__V1__SYSCALL_MODE__SYSCALL_NATIVE ||
	   h->syscall_mode == RINGFENCE__V1__SYSCALL_MODE__SYSCALL_VIA_FAULT,
	   "hello: syscall_mode is known (%d)", h->syscall_mode);
	ok(h->kick_policy == RINGFENCE__V1__KICK_POLICY__KICK_TAKE_BACK ||
	   h->kick_policy == RINGFENCE__V1__KICK_POLICY__KICK_INJECT, "hello: kick_policy is known (%d)",
	   h->kick_policy);
	ok(h->fpu_size >= 512 && h->max_vcpus > 0, "hello: fpu_size %u, max_vcpus %u", h->fpu_size, h->max_vcpus);
	bool fdcap = false, chancap = false;
	for (size_t i = 0; i < h->n_capabilities; i++) {
		fdcap |= !strcmp(h->capabilities[i], "memory-fd-passing");
		chancap |= !strcmp(h->capabilities[i], "switch-channel");
	}
	ok(fdcap && chancap, "hello: a Unix socket announces memory-fd-passing and switch-channel");
	rfc_free_hello(h);
}

static int protect(struct rfc *c, uint64_t as, unsigned prot)
{
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__AsProtect p = RINGFENCE__V1__AS_PROTECT__INIT;
	p.space = as, p.va = GUEST_VA, p.length = 0x1000, p.prot = prot;
	q.op_case = RINGFENCE__V1__REQUEST__OP_AS_PROTECT;
	q.as_protect = &p;
	Response *r;
	int e = rfc_call(c, &q, &r, NULL);
	if (e == 0 && (r->error || r->result_case != RINGFENCE__V1__RESPONSE__RESULT_DONE))
		e = -EPROTO;
	rfc_free(r);
	return e;
}

/* get_regs with the XSAVE image, set_regs giving it back: the same image comes back again. */
static void fpu_round_trip(struct rfc *c, uint64_t ctx)
{
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__GetRegs g = RINGFENCE__V1__GET_REGS__INIT;
	g.context = ctx, g.fpu = true;
	q.op_case = RINGFENCE__V1__REQUEST__OP_GET_REGS;
	q.get_regs = &g;
	Response *r = NULL, *r2 = NULL;
	int e = rfc_call(c, &q, &r, NULL);
	bool got = e == 0 && !r->error && r->result_case == RINGFENCE__V1__RESPONSE__RESULT_REGS &&
	           r->regs->fpu.len >= 512;
	ok(got, "get_regs with fpu: an XSAVE image (%zu bytes)", got ? r->regs->fpu.len : 0);
	if (got) {
		Request s = RINGFENCE__V1__REQUEST__INIT;
		Ringfence__V1__SetRegs sr = RINGFENCE__V1__SET_REGS__INIT;
		sr.context = ctx, sr.regs = r->regs;
		s.op_case = RINGFENCE__V1__REQUEST__OP_SET_REGS;
		s.set_regs = &sr;
		Response *d = NULL;
		e = rfc_call(c, &s, &d, NULL);
		ok(e == 0 && !d->error, "set_regs with that image");
		rfc_free(d);
		e = rfc_call(c, &q, &r2, NULL);
		ok(e == 0 && !r2->error && r2->regs->fpu.len == r->regs->fpu.len &&
		   !memcmp(r2->regs->fpu.data, r->regs->fpu.data, r->regs->fpu.len), "get_regs: the same image back");
	}
	rfc_free(r);
	rfc_free(r2);
}

struct blocked {
	struct rfc *c;
	uint64_t ctx, as;
	struct rf_event ev;
	struct rf_regs regs;
	int e;
};

static void *blocked_switch(void *arg)
{
	struct blocked *b = arg;
	b->e = rfc_switch(b->c, b->ctx, b->as, &b->ev, &b->regs);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 2 && !(argc == 3 && !strcmp(argv[2], "--channel"))) {
		printf("Bail out! usage: %s RINGFENCE [--channel]\n", argv[0]);
		return 1;
	}
	channel = argc == 3;
	kvm_or_skip();
	int e = serve_start(&srv, argv[1], NULL);
	if (e)
		bail("starting ringfence serve", e);
	struct rfc c1, c2;
	if ((e = serve_connect(&srv, &c1)) || (e = serve_connect(&srv, &c2)))
		bail("connecting", e);
	check_hello(&c1);
	if (channel) {
		e = rfc_channel_open(&c1);
		ok(e == 0 && c1.chan, "channel_open: the channel's memfd came and maps (%d %s)", e, c1.error);
		if (e)
			bail("channel_open", e);
	}

	/* Memory: the memfd comes with the reply; the guest code is written through our mapping. */
	uint64_t mem, as, ctx;
	int mfd = -1;
	e = rfc_memory_create(&c1, GUEST_MEM, &mem, &mfd);
	ok(e == 0 && mfd >= 0, "memory_create: a handle and the memfd (%d, fd %d)", e, mfd);
	if (e || mfd < 0)
		bail("memory_create", e ? e : -EBADF);
	uint8_t *host = mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	ok(host != MAP_FAILED, "the passed memfd maps");
	if (host == MAP_FAILED)
		bail("mmap", -errno);
	memcpy(host, guest_code, guest_code_size);
	uint8_t back[64];
	e = rfc_memory_read(&c1, mem, 0, back, guest_code_size);
	ok(e == 0 && !memcmp(back, guest_code, guest_code_size),
	   "memory_read sees what was written through the mapping (no copy)");
	static const char pattern[] = "written by memory_write";
	e = rfc_memory_write(&c1, mem, 0x2000, pattern, sizeof pattern);
	ok(e == 0 && !memcmp(host + 0x2000, pattern, sizeof pattern), "memory_write shows in the mapping");
	memset(back, 0, sizeof back);
	e = rfc_memory_read(&c1, mem, 0x2000, back, sizeof pattern);
	ok(e == 0 && !memcmp(back, pattern, sizeof pattern), "memory_write/memory_read round trip");

	/* An address space and a context. */
	e = rfc_as_create(&c1, &as);
	ok(e == 0, "as_create (%d)", e);
	e = rfc_as_map(&c1, as, GUEST_VA, GUEST_MEM, mem, 0, RF_PROT_READ | RF_PROT_WRITE | RF_PROT_EXEC);
	ok(e == 0, "as_map (%d %s)", e, c1.error);
	e = rfc_context_create(&c1, &ctx);
	ok(e == 0, "context_create (%d)", e);
	struct rf_regs r = { .rip = GUEST_VA, .rflags = 0x202, .r12 = 0x1234567890abcdefull,
	                     .rsp = GUEST_VA + GUEST_MEM - 64 };
	e = rfc_set_regs(&c1, ctx, &r);
	ok(e == 0, "set_regs (%d)", e);

	/* A syscall, then a resume into a write fault at 0, then #UD. */
	struct rf_event ev;
	struct rf_regs out;
	e = rfc_switch(&c1, ctx, as, &ev, &out);
	ok(e == 0 && ev.type == RF_EVENT_SYSCALL, "switch: a syscall (%d, type %d)", e, ev.type);
	ok_eq(out.rax, 39, "syscall: rax is the number");
	ok_eq(ev.rip, GUEST_VA + G_SYSCALL, "syscall: the event's rip is the instruction");
	ok_eq(out.rip, GUEST_VA + G_AFTER_SYSCALL, "syscall: the regs' rip is after it");
	ok_eq(out.r12, r.r12, "switch: the event carries set_regs' r12");
	e = rfc_switch(&c1, ctx, as, &ev, &out);
	ok(e == 0 && ev.type == RF_EVENT_PAGE_FAULT, "resume: a page fault (%d, type %d)", e, ev.type);
	ok_eq(ev.fault_addr, 0, "page fault: fault_addr 0");
	ok(ev.access & RF_ACCESS_WRITE, "page fault: a write (access %u)", ev.access);
	ok(!ev.present, "page fault: not present");
	ok_eq(ev.rip, GUEST_VA + G_AFTER_SYSCALL, "page fault: rip at the faulting mov");
	r = out;
	r.rip = GUEST_VA + G_UD2;
	e = rfc_set_regs(&c1, ctx, &r);
	ok(e == 0, "set_regs: move to the ud2");
	e = rfc_switch(&c1, ctx, as, &ev, &out);
	ok(e == 0 && ev.type == RF_EVENT_EXCEPTION && ev.vector == 6, "switch: #UD (%d, type %d, vector %u)", e,
	   ev.type, ev.vector);
	ok_eq(ev.rip, GUEST_VA + G_UD2, "#UD: rip at the ud2");
	struct rf_regs g;
	e = rfc_get_regs(&c1, ctx, &g);
	ok(e == 0 && g.rip == GUEST_VA + G_UD2 && g.r12 == r.r12 && g.rax == 39, "get_regs: rip, r12, rax");

	/* The calls the C client has no wrapper for: as_protect, and get_regs/set_regs with the FPU. */
	ok(protect(&c1, as, RF_PROT_READ) == 0, "as_protect: the code page read-only");
	e = rfc_switch(&c1, ctx, as, &ev, &out);
	ok(e == 0 && ev.type == RF_EVENT_PAGE_FAULT && ev.present && (ev.access & RF_ACCESS_EXEC) &&
	   ev.fault_addr == GUEST_VA + G_UD2, "... the next switch faults fetching it (present, exec; %d, type %d)", e,
	   ev.type);
	ok(protect(&c1, as, RF_PROT_READ | RF_PROT_WRITE | RF_PROT_EXEC) == 0, "as_protect: back to RWX");
	fpu_round_trip(&c1, ctx);

	/* A guest spinning forever, kicked from the second connection while the first is in switch. */
	g.rip = GUEST_VA + G_SPIN;
	host[G_MARKER] = 0;
	ok(rfc_set_regs(&c1, ctx, &g) == 0, "set_regs: move to the spin loop");
	struct blocked b = { .c = &c1, .ctx = ctx, .as = as, .e = -1 };
	pthread_t t;
	if (pthread_create(&t, NULL, blocked_switch, &b))
		bail("pthread_create", -EAGAIN);
	bool spinning = guest_wait_spinning(host);
	ok(spinning, "the guest runs (its marker is set) while connection 1 is in switch");
	check_hello(&c2);
	e = rfc_kick(&c2, ctx);
	ok(e == 0, "kick from connection 2 (%d %s)", e, c2.error);
	pthread_join(t, NULL);
	ok(b.e == 0 && b.ev.type == RF_EVENT_INTERRUPTED, "connection 1's switch: EVENT_INTERRUPTED (%d, type %d)",
	   b.e, b.ev.type);
	ok_eq(b.regs.rip, GUEST_VA + G_SPIN_LOOP, "interrupted: rip in the spin loop");

	Ringfence__V1__StatsReply *st = NULL;
	e = rfc_stats(&c2, &st);
	ok(e == 0, "stats (%d)", e);
	if (st) {
		uint64_t kicks = 0;
		for (size_t i = 0; i < st->n_vcpus; i++)
			kicks += st->vcpus[i]->kicks_requested;
		ok(st->vcpus_created >= 1 && st->n_vcpus >= 1, "stats: %u vCPUs created, %zu reported",
		   st->vcpus_created, st->n_vcpus);
		ok(kicks > 0, "stats: kicks_requested %llu", (unsigned long long)kicks);
		ok_eq(st->connections, 2, "stats: two connections open");
		/* Counted as each arrives, this stats request included; by the channel, all of connection
		 * 1's after channel_open but memory_create: 20 of them (connection 2's go by its socket). */
		ok_eq(st->requests, channel ? 26 : 25, "stats: the requests served on both connections");
		ok_eq(st->channel_requests, channel ? 20 : 0, "stats: the requests served by the channel");
		rfc_free_stats(st);
	}

	/* Everything destroyed, in an order the platform accepts; memory first is refused (mapped). */
	e = rfc_destroy(&c1, H_MEMORY, mem);
	ok(e == -EBUSY && c1.code == RINGFENCE__V1__ERROR_CODE__BUSY, "memory_destroy while mapped: BUSY (%d)", e);
	e = rfc_destroy(&c1, H_CONTEXT, ctx);
	ok(e == 0, "context_destroy (%d)", e);
	e = rfc_as_unmap(&c1, as, GUEST_VA, GUEST_MEM);
	ok(e == 0, "as_unmap (%d)", e);
	e = rfc_destroy(&c1, H_AS, as);
	ok(e == 0, "as_destroy (%d)", e);
	e = rfc_destroy(&c1, H_MEMORY, mem);
	ok(e == 0, "memory_destroy (%d)", e);
	e = rfc_destroy(&c1, H_MEMORY, mem);
	ok(e == -ENOENT && c1.code == RINGFENCE__V1__ERROR_CODE__NOT_FOUND, "a destroyed handle is gone (%d)", e);
	munmap(host, GUEST_MEM);
	close(mfd);

	e = rfc_shutdown(&c1);
	ok(e == 0, "shutdown (%d)", e);
	rfc_close(&c1);
	rfc_close(&c2);
	e = serve_wait(&srv, 30000);
	ok(e == 0, "the server exits once its connections close (%d)", e);
	ok(e == 0 && WIFEXITED(srv.status) && WEXITSTATUS(srv.status) == 0, "... with status 0 (0x%x)", srv.status);
	serve_cleanup(&srv);
	return tap_done();
}
