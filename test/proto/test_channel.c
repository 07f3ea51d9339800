/* SPDX-License-Identifier: MIT */
/* The switch channel against `ringfence serve` (under its filter): clients that misuse the shared
 * page (lengths past it, garbage, the turn word set by hand, requests that cannot go that way), that
 * hang up with a switch running on it or with it idle, and socket requests racing a channel switch
 * on the same connection: a kick, which must reach it, and anything else, which must wait for it. After each, the server serves others and holds nothing of that client.
 *
 *   test_proto_channel RINGFENCE */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raw.h"
#include "tap.h"

#define CODE(x) RINGFENCE__V1__ERROR_CODE__##x

static struct serve_proc srv;

static void expect_alive(const char *after)
{
	int e = serve_alive(&srv);
	ok(e == 0, "after %s: a fresh connection gets a good hello (%d)", after, e);
}

static void open_channel(struct rfc *c)
{
	int e = rfc_channel_open(c);
	if (e) {
		printf("Bail out! channel_open: %s (%s)\n", strerror(-e), c->error);
		serve_cleanup(&srv);
		exit(1);
	}
}

static bool never(void *arg)
{
	(void)arg;
	return false;
}

/* Puts len (as given) and n bytes in c's channel and hands the turn to the server. */
static void chan_post(struct rfc *c, uint32_t len, const void *body, size_t n)
{
	memcpy(c->chan->data, body, n);
	c->chan->len = len;
	channel_give(c->chan, CHANNEL_SERVER, NULL);
}

/* The server's answer on c's channel (NULL if it closed the channel or the answer does not decode). */
static Response *chan_answer(struct rfc *c)
{
	struct spin none = { 0 };
	if (channel_wait(c->chan, CHANNEL_CLIENT, &none, 0, never, NULL) < 0)
		return NULL;
	return ringfence__v1__response__unpack(NULL, c->chan->len, c->chan->data);
}

static Response *chan_raw(struct rfc *c, uint32_t len, const void *body, size_t n)
{
	chan_post(c, len, body, n);
	return chan_answer(c);
}

static size_t pack(Request *q, uint8_t *buf)
{
	q->id = 77;
	return ringfence__v1__request__pack(q, buf);
}

/* ---- requests the channel cannot carry, and bytes that are no request ---- */

static void test_misuse(void)
{
	struct objs o;
	objs_make(&srv, &o, GUEST_VA);
	open_channel(&o.c);
	int e = rfc_channel_open(&o.c);
	ok(e == -EBUSY, "a second channel_open by the client library: EBUSY (%d)", e);
	/* The same asked of the server, on the socket. */
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__Empty em = RINGFENCE__V1__EMPTY__INIT;
	q.op_case = RINGFENCE__V1__REQUEST__OP_CHANNEL_OPEN;
	q.channel_open = &em;
	Response *r = raw_request(o.c.fd, &q);
	ok(error_is(r, CODE(BUSY), "already open"), "a second channel_open on the socket: BUSY");
	rfc_free(r);

	uint8_t buf[256];
	size_t n = pack(&q, buf);
	r = chan_raw(&o.c, (uint32_t)n, buf, n);
	ok(error_is(r, CODE(BAD_REQUEST), "by the socket") && r->id == 77,
	   "channel_open sent on the channel: BAD_REQUEST, with the request's id");
	rfc_free(r);

	r = chan_raw(&o.c, 0xffffffffu, buf, 0);
	ok(error_is(r, CODE(BAD_REQUEST), "channel message"), "a length of 2^32-1 on the channel: BAD_REQUEST");
	rfc_free(r);
	r = chan_raw(&o.c, CHANNEL_MAX_MESSAGE + 1, buf, 0);
	ok(error_is(r, CODE(BAD_REQUEST), "channel message"), "a length one past the page: BAD_REQUEST");
	rfc_free(r);
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x80 };
	r = chan_raw(&o.c, sizeof garbage, garbage, sizeof garbage);
	ok(error_is(r, CODE(BAD_REQUEST), "not a Request"), "garbage bytes on the channel: BAD_REQUEST");
	rfc_free(r);

	/* A reply larger than the page: TOO_LARGE there; the client library sends it by the socket. */
	Ringfence__V1__MemoryRead mr = RINGFENCE__V1__MEMORY_READ__INIT;
	mr.memory = o.mem, mr.offset = 0, mr.length = 1 << 20;
	Request rq = RINGFENCE__V1__REQUEST__INIT;
	rq.op_case = RINGFENCE__V1__REQUEST__OP_MEMORY_READ;
	rq.memory_read = &mr;
	n = pack(&rq, buf);
	r = chan_raw(&o.c, (uint32_t)n, buf, n);
	ok(error_is(r, CODE(TOO_LARGE), NULL), "a 1 MiB memory_read on the channel: TOO_LARGE");
	rfc_free(r);
	uint8_t *big = malloc(1 << 20);
	e = big ? rfc_memory_read(&o.c, o.mem, 0, big, 1 << 20) : -ENOMEM;
	ok(e == 0 && !memcmp(big, guest_code, guest_code_size), "... which rfc_memory_read sends by the socket (%d)", e);
	free(big);

	/* After all that, the channel still carries a switch, and the socket a hello. */
	struct rf_event ev;
	struct rf_regs regs;
	e = rfc_switch(&o.c, o.ctx, o.as, &ev, &regs);
	ok(e == 0 && ev.type == RF_EVENT_SYSCALL && regs.rax == 39, "then a switch on the channel: the syscall (%d)", e);
	Ringfence__V1__Hello h = RINGFENCE__V1__HELLO__INIT;
	Request hq = RINGFENCE__V1__REQUEST__INIT;
	hq.op_case = RINGFENCE__V1__REQUEST__OP_HELLO;
	hq.hello = &h;
	r = raw_request(o.c.fd, &hq);
	ok(r && !r->error && r->result_case == RINGFENCE__V1__RESPONSE__RESULT_HELLO, "and a hello on the socket");
	rfc_free(r);
	objs_drop(&o);
	expect_alive("misused channels");
}

/* Sends a switch of o's guest on its channel and returns once the guest spins in it. */
static bool channel_switch_spinning(struct objs *o)
{
	uint8_t buf[64];
	size_t n = switch_request(o, 77, buf);
	chan_post(&o->c, (uint32_t)n, buf, n);
	return guest_wait_spinning(o->host);
}

/* hangup_rounds' start: the channel opened, then a switch on it. */
static bool switch_by_channel(struct objs *o)
{
	open_channel(&o->c);
	return channel_switch_spinning(o);
}

/* ---- a kick on the socket for a switch running on the same connection's channel ---- */

static void test_socket_kicks_channel_switch(void)
{
	struct objs o;
	objs_make(&srv, &o, GUEST_VA + G_SPIN);
	open_channel(&o.c);
	ok(channel_switch_spinning(&o), "own kick: the guest spins in a channel switch");
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__Kick k = RINGFENCE__V1__KICK__INIT;
	k.context = o.ctx;
	q.op_case = RINGFENCE__V1__REQUEST__OP_KICK;
	q.kick = &k;
	Response *r = raw_request(o.c.fd, &q);
	ok(r && !r->error && r->result_case == RINGFENCE__V1__RESPONSE__RESULT_DONE,
	   "own kick: the same connection's socket kicks it (a kick does not wait for the switch)");
	rfc_free(r);
	r = chan_answer(&o.c);
	ok(r && !r->error && r->result_case == RINGFENCE__V1__RESPONSE__RESULT_EVENT &&
	       r->event->type == RINGFENCE__V1__EVENT_TYPE__EVENT_INTERRUPTED,
	   "own kick: the channel's switch answers, interrupted");
	rfc_free(r);
	objs_drop(&o);
	expect_alive("a connection kicking its own channel switch");
}

/* ---- any other socket request while a channel switch runs: it waits for the switch ---- */

static void test_socket_waits_for_channel_switch(void)
{
	struct objs o;
	objs_make(&srv, &o, GUEST_VA + G_SPIN);
	open_channel(&o.c);
	ok(channel_switch_spinning(&o), "serial: the guest spins in a channel switch");
	uint8_t buf[64];
	size_t n;
	Request g = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__GetRegs gr = RINGFENCE__V1__GET_REGS__INIT;
	gr.context = o.ctx;
	g.id = 78;
	g.op_case = RINGFENCE__V1__REQUEST__OP_GET_REGS;
	g.get_regs = &gr;
	n = ringfence__v1__request__pack(&g, buf);
	ok(frame_write(o.c.fd, buf, (uint32_t)n, -1) == 0, "serial: get_regs sent on the socket meanwhile");
	/* A whole round trip on another connection later, get_regs must still wait. */
	struct rfc k;
	int e = serve_connect(&srv, &k);
	Ringfence__V1__HelloReply *h = NULL;
	if (!e)
		e = rfc_hello(&k, &h);
	rfc_free_hello(h);
	struct pollfd pf = { o.c.fd, POLLIN, 0 };
	ok(e == 0 && poll(&pf, 1, 0) == 0, "serial: no answer to get_regs while the switch runs (%d)", e);
	ok(rfc_kick(&k, o.ctx) == 0, "serial: another connection kicks the context");
	Response *r = chan_answer(&o.c);
	ok(r && !r->error && r->result_case == RINGFENCE__V1__RESPONSE__RESULT_EVENT &&
	       r->event->type == RINGFENCE__V1__EVENT_TYPE__EVENT_INTERRUPTED,
	   "serial: the channel's switch answers, interrupted");
	rfc_free(r);
	r = raw_recv(o.c.fd, NULL);
	ok(r && !r->error && r->id == 78 && r->result_case == RINGFENCE__V1__RESPONSE__RESULT_REGS &&
	       r->regs->rip == GUEST_VA + G_SPIN_LOOP,
	   "serial: then get_regs answers with the registers the switch left (rip in the spin loop)");
	rfc_free(r);
	rfc_close(&k);
	objs_drop(&o);
	expect_alive("a socket request racing a channel switch");
}

/* ---- hanging up: with a switch running on the channel, with it idle, after closing it by hand ---- */

static void test_hangups(void)
{
	struct rfc watcher;
	if (serve_connect(&srv, &watcher))
		return;
	ok(conns_eventually(&watcher, 1, 10000), "before: only the watching connection is open");
	struct hangup_round first, last;
	hangup_rounds(&srv, &watcher, switch_by_channel, &first, &last);
	ok(first.running, "mid-switch round 0: the guest spins in the channel's switch");
	ok(first.freed, "mid-switch round 0: the connection is gone (stats: 1 connection)");
	ok(last.running, "mid-switch round %d: the guest spins in the channel's switch", HANGUP_ROUNDS - 1);
	ok(last.freed, "mid-switch round %d: the connection is gone (stats: 1 connection)", HANGUP_ROUNDS - 1);
	ok(last.fds == first.fds, "mid-switch round %d: the server holds %d descriptors, as after round 0 (%d)",
	   HANGUP_ROUNDS - 1, last.fds, first.fds);
	int fds_after_first = first.fds;

	struct objs o;
	objs_make(&srv, &o, GUEST_VA);
	open_channel(&o.c);
	struct rf_event ev;
	int e = rfc_switch(&o.c, o.ctx, o.as, &ev, NULL);
	ok(e == 0 && ev.type == RF_EVENT_SYSCALL, "idle: a switch on the channel (%d)", e);
	objs_drop(&o);   /* the channel's thread is waiting for the next request */
	ok(conns_eventually(&watcher, 1, 10000), "idle: the connection is gone after its hang-up");
	ok(proc_fd_count(srv.pid) == fds_after_first, "idle: the server holds no descriptor of it");

	/* The client closes the channel by hand (the turn word set to closed): the channel's thread
	 * ends, the connection goes on by its socket, and the library says the channel is gone. */
	objs_make(&srv, &o, GUEST_VA);
	open_channel(&o.c);
	channel_give(o.c.chan, CHANNEL_CLOSED, NULL);
	e = rfc_switch(&o.c, o.ctx, o.as, &ev, NULL);
	ok(e == -ECONNRESET, "closed by hand: a switch on the channel says ECONNRESET (%d)", e);
	Ringfence__V1__HelloReply *h = NULL;
	struct channel_page *ch = o.c.chan;
	o.c.chan = NULL;   /* the socket alone */
	e = rfc_hello(&o.c, &h);
	rfc_free_hello(h);
	ok(e == 0, "closed by hand: the socket still serves (%d)", e);
	e = rfc_switch(&o.c, o.ctx, o.as, &ev, NULL);
	ok(e == 0 && ev.type == RF_EVENT_SYSCALL, "closed by hand: a switch on the socket (%d)", e);
	o.c.chan = ch;
	objs_drop(&o);
	ok(conns_eventually(&watcher, 1, 10000), "closed by hand: the connection is gone after its hang-up");
	rfc_close(&watcher);
	expect_alive("clients hanging up with a channel");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		printf("Bail out! usage: %s RINGFENCE\n", argv[0]);
		return 1;
	}
	kvm_or_skip();
	int e = serve_start(&srv, argv[1], NULL);
	if (e) {
		printf("Bail out! starting ringfence serve: %s\n", strerror(-e));
		return 1;
	}
	expect_alive("start");
	test_misuse();
	test_socket_kicks_channel_switch();
	test_socket_waits_for_channel_switch();
	test_hangups();
	serve_cleanup(&srv);
	return tap_done();
}
