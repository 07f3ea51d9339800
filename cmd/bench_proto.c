/* SPDX-License-Identifier: MIT */
/* The control plane's cost for ringfence bench: one `switch` round trip through it (rfc_switch ->
 * server_one on a socketpair -> the guest's SYSCALL -> the server -> the client), by the switch
 * channel and by the socket; the same through rf_switch; and a bare Unix-socket ping-pong of frames
 * the sizes of that request and response, all in this process on the caller's platform. What the
 * control plane adds is proto - capi; the ping-pong is the least any socket transport of those bytes
 * could cost, which the channel, sending no byte through a socket, can undercut. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cmd.h"
#include "proto.h"

#define CODE_VA 0x400000ull

static const unsigned char syscall_loop[] = { 0x0f, 0x05, 0xeb, 0xfc };   /* 1: syscall; jmp 1b */

struct bench_proto {
	rf_platform *p;
	/* the control plane: a server on one end of a socketpair, our client on the other */
	struct server srv;
	bool srv_init, srv_up;
	int srv_fd;
	pthread_t srv_thread;
	struct rfc cl;
	uint64_t mem, as, ctx;                /* the server's handles */
	/* the C API's guest, the same code */
	rf_memory *mem_c;
	rf_as *as_c;
	rf_context *ctx_c, *ctx_relay;
	/* the ping-pong: an echo thread answering each frame with one of the response's size; and the
	 * relay, the same but for an rf_switch of its own context before it answers (no protobuf) */
	struct echo {
		struct bench_proto *bp;
		int fd[2];
		bool up;
		pthread_t thread;
		rf_context *ctx;              /* the relay's; NULL for the echo */
	} echo, relay;
	uint32_t req_len, resp_len;
	uint8_t *req_buf, *resp_buf;
};

static int say(int err, const char *what, const char *why)
{
	fprintf(stderr, "ringfence bench: control plane: %s: %s\n", what, why && *why ? why : strerror(-err));
	return err;
}

static void *serve_main(void *arg)
{
	struct bench_proto *bp = arg;
	server_one(&bp->srv, bp->srv_fd, bp->srv_fd);   /* closes the fd as the connection ends */
	return NULL;
}

static void *echo_main(void *arg)
{
	struct echo *e = arg;
	struct bench_proto *bp = e->bp;
	for (;;) {
		uint8_t *in;
		uint32_t len;
		struct rf_event ev;
		if (frame_read(e->fd[1], PROTO_MAX_MESSAGE, &in, &len, NULL))
			return NULL;
		free(in);
		if (e->ctx && rf_switch(e->ctx, bp->as_c, &ev) < 0)
			return NULL;   /* the sampler sees the hang-up */
		if (frame_write(e->fd[1], bp->resp_buf, bp->resp_len, -1) < 0)
			return NULL;
	}
}

static int echo_start(struct bench_proto *bp, struct echo *e, rf_context *ctx)
{
	e->bp = bp;
	e->ctx = ctx;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, e->fd) < 0)
		return say(-errno, "socketpair", NULL);
	int r = -pthread_create(&e->thread, NULL, echo_main, e);
	if (r < 0)
		return say(r, ctx ? "relay thread" : "echo thread", NULL);
	e->up = true;
	return 0;
}

static void echo_stop(struct echo *e)
{
	if (e->fd[0] >= 0)
		shutdown(e->fd[0], SHUT_RDWR);
	if (e->up)
		pthread_join(e->thread, NULL);
	for (int i = 0; i < 2; i++)
		if (e->fd[i] >= 0)
			close(e->fd[i]);
}

/* The server's guest, made through the client. */
static int remote_guest(struct bench_proto *bp)
{
	struct rf_regs regs = { .rip = CODE_VA, .rsp = CODE_VA + RF_PAGE_SIZE, .rflags = 0x202 };
	Ringfence__V1__HelloReply *hello;
	int r;
	if ((r = rfc_hello(&bp->cl, &hello)) < 0)
		return say(r, "hello", bp->cl.error);
	rfc_free_hello(hello);
	if ((r = rfc_channel_open(&bp->cl)) < 0)
		return say(r, "channel_open", bp->cl.error);
	if ((r = rfc_memory_create(&bp->cl, RF_HUGE_SIZE, &bp->mem, NULL)) < 0 ||
	    (r = rfc_memory_write(&bp->cl, bp->mem, 0, syscall_loop, sizeof syscall_loop)) < 0 ||
	    (r = rfc_as_create(&bp->cl, &bp->as)) < 0 ||
	    (r = rfc_as_map(&bp->cl, bp->as, CODE_VA, RF_PAGE_SIZE, bp->mem, 0, RF_PROT_READ | RF_PROT_EXEC)) < 0 ||
	    (r = rfc_context_create(&bp->cl, &bp->ctx)) < 0 || (r = rfc_set_regs(&bp->cl, bp->ctx, &regs)) < 0)
		return say(r, "setting up the guest", bp->cl.error);
	return 0;
}

static int local_guest(struct bench_proto *bp)
{
	int r;
	if ((r = rf_memory_create(bp->p, RF_HUGE_SIZE, &bp->mem_c)) < 0 || (r = rf_as_create(bp->p, &bp->as_c)) < 0 ||
	    (r = rf_context_create(bp->p, &bp->ctx_c)) < 0)
		return say(r, "the C API's guest", rf_last_error());
	memcpy(rf_memory_host(bp->mem_c), syscall_loop, sizeof syscall_loop);
	if ((r = rf_as_map(bp->as_c, CODE_VA, RF_PAGE_SIZE, bp->mem_c, 0, RF_PROT_READ | RF_PROT_EXEC, 0)) < 0)
		return say(r, "the C API's guest", rf_last_error());
	*rf_context_regs(bp->ctx_c) = (struct rf_regs){ .rip = CODE_VA, .rsp = CODE_VA + RF_PAGE_SIZE, .rflags = 0x202 };
	return 0;
}

/* The packed sizes of one switch request and its response, taken from a real one. */
static int measure_sizes(struct bench_proto *bp)
{
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__SwitchTo s = RINGFENCE__V1__SWITCH_TO__INIT;
	s.context = bp->ctx;
	s.space = bp->as;
	q.op_case = RINGFENCE__V1__REQUEST__OP_SWITCH_TO;
	q.switch_to = &s;
	Response *resp;
	int r = rfc_call(&bp->cl, &q, &resp, NULL);
	if (r < 0)
		return say(r, "switch", NULL);
	if (resp->error || resp->result_case != RINGFENCE__V1__RESPONSE__RESULT_EVENT) {
		r = say(-EPROTO, "switch", resp->error ? resp->error->message : "no event in the reply");
		rfc_free(resp);
		return r;
	}
	bp->req_len = (uint32_t)ringfence__v1__request__get_packed_size(&q);
	bp->resp_len = (uint32_t)ringfence__v1__response__get_packed_size(resp);
	rfc_free(resp);
	bp->req_buf = calloc(1, bp->req_len);
	bp->resp_buf = calloc(1, bp->resp_len);
	return bp->req_buf && bp->resp_buf ? 0 : -ENOMEM;
}

int bench_proto_open(struct rf_platform *p, struct bench_proto **out)
{
	struct bench_proto *bp = calloc(1, sizeof *bp);
	int sv[2], r;
	*out = bp;
	if (!bp)
		return -ENOMEM;
	bp->p = p;
	bp->cl.fd = bp->echo.fd[0] = bp->echo.fd[1] = bp->relay.fd[0] = bp->relay.fd[1] = -1;
	if ((r = server_init(&bp->srv, p)) < 0)
		return say(r, "server_init", NULL);
	bp->srv_init = true;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return say(-errno, "socketpair", NULL);
	bp->srv_fd = sv[1];
	if ((r = -pthread_create(&bp->srv_thread, NULL, serve_main, bp)) < 0) {
		close(sv[0]);
		close(sv[1]);
		return say(r, "server thread", NULL);
	}
	bp->srv_up = true;
	rfc_attach(&bp->cl, sv[0]);
	if ((r = remote_guest(bp)) < 0 || (r = local_guest(bp)) < 0 || (r = measure_sizes(bp)) < 0)
		return r;
	if ((r = rf_context_create(p, &bp->ctx_relay)) < 0)
		return say(r, "the relay's context", rf_last_error());
	*rf_context_regs(bp->ctx_relay) = *rf_context_regs(bp->ctx_c);
	if ((r = echo_start(bp, &bp->echo, NULL)) < 0 || (r = echo_start(bp, &bp->relay, bp->ctx_relay)) < 0)
		return r;
	return 0;
}

void bench_proto_close(struct bench_proto *bp)
{
	if (!bp)
		return;
	/* Hanging up ends each thread: the server releases what the connection made, then returns. */
	rfc_close(&bp->cl);
	if (bp->srv_up)
		pthread_join(bp->srv_thread, NULL);
	echo_stop(&bp->echo);
	echo_stop(&bp->relay);
	if (bp->ctx_relay)
		rf_context_destroy(bp->ctx_relay);
	if (bp->srv_init)
		server_destroy(&bp->srv);
	if (bp->ctx_c)
		rf_context_destroy(bp->ctx_c);
	if (bp->as_c)
		rf_as_destroy(bp->as_c);
	if (bp->mem_c)
		rf_memory_destroy(bp->mem_c);
	free(bp->req_buf);
	free(bp->resp_buf);
	free(bp);
}

void bench_proto_sizes(const struct bench_proto *bp, unsigned *request, unsigned *response)
{
	*request = bp->req_len;
	*response = bp->resp_len;
}

typedef int (*trip_fn)(struct bench_proto *bp);

static int sample(struct bench_proto *bp, trip_fn trip, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n)
{
	int r;
	for (unsigned i = 0; i < warmup; i++)
		if ((r = trip(bp)) < 0)
			return r;
	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = bench_now_ns();
		for (unsigned j = 0; j < batch; j++)
			if ((r = trip(bp)) < 0)
				return r;
		ns[i] = bench_now_ns() - t0;
	}
	return 0;
}

static int expect_syscall(const struct rf_event *ev)
{
	if (ev->type == RF_EVENT_SYSCALL)
		return 0;
	fprintf(stderr, "ringfence bench: control plane: event %d at 0x%llx, expected a syscall\n", ev->type,
	        (unsigned long long)ev->rip);
	return -EPROTO;
}

static int proto_trip(struct bench_proto *bp)
{
	struct rf_event ev;
	struct rf_regs regs;
	int r = rfc_switch(&bp->cl, bp->ctx, bp->as, &ev, &regs);
	if (r < 0)
		return say(r, "rfc_switch", bp->cl.error);
	return expect_syscall(&ev);
}

static int capi_trip(struct bench_proto *bp)
{
	struct rf_event ev;
	int r = rf_switch(bp->ctx_c, bp->as_c, &ev);
	if (r < 0)
		return say(r, "rf_switch", rf_last_error());
	return expect_syscall(&ev);
}

/* One request-sized frame to e's thread, one response-sized frame back. */
static int frame_trip(struct bench_proto *bp, struct echo *e)
{
	uint8_t *in;
	uint32_t len;
	int r = frame_write(e->fd[0], bp->req_buf, bp->req_len, -1);
	if (r == 0)
		r = frame_read(e->fd[0], PROTO_MAX_MESSAGE, &in, &len, NULL);
	if (r)
		return say(r > 0 ? -ECONNRESET : r, e->ctx ? "relay" : "ping-pong", NULL);
	free(in);
	return 0;
}

static int pingpong_trip(struct bench_proto *bp)
{
	return frame_trip(bp, &bp->echo);
}

static int relay_trip(struct bench_proto *bp)
{
	return frame_trip(bp, &bp->relay);
}

static int channel_trip(struct bench_proto *bp)
{
	return proto_trip(bp);   /* rfc_call takes the channel: bench_proto_open opened it */
}

/* Without the channel (hidden from the client a while), rfc_switch goes by the socket. */
static int socket_trip(struct bench_proto *bp)
{
	struct channel_page *ch = bp->cl.chan;
	bp->cl.chan = NULL;
	int r = proto_trip(bp);
	bp->cl.chan = ch;
	return r;
}

int bench_proto_measure(struct bench_proto *bp, enum bench_proto_trip trip, unsigned warmup, unsigned batch,
                        uint64_t *ns, unsigned n)
{
	switch (trip) {
	case BP_CHANNEL: return sample(bp, channel_trip, warmup, batch, ns, n);
	case BP_SOCKET: return sample(bp, socket_trip, warmup, batch, ns, n);
	case BP_SLEEP: {
		uint64_t srv = atomic_exchange(&bp->srv.spin_cap_ns, 0), cl = atomic_exchange(&bp->cl.spin_cap_ns, 0);
		int r = sample(bp, socket_trip, warmup, batch, ns, n);
		atomic_store(&bp->srv.spin_cap_ns, srv);
		atomic_store(&bp->cl.spin_cap_ns, cl);
		return r;
	}
	case BP_RELAY: return sample(bp, relay_trip, warmup, batch, ns, n);
	case BP_CAPI: return sample(bp, capi_trip, warmup, batch, ns, n);
	case BP_PINGPONG: return sample(bp, pingpong_trip, warmup, batch, ns, n);
	}
	return -EINVAL;
}
