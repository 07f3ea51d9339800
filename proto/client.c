/* SPDX-License-Identifier: MIT */
/* A small C client of the control plane: one request at a time on one connection, the framing of
 * frame.c, and convenience calls that turn replies back into ringfence.h's structs. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto.h"

typedef Ringfence__V1__Regs Regs;

static int call(struct rfc *c, Request *req, Response **resp, int *fd_out);

void rfc_attach(struct rfc *c, int fd)
{
	memset(c, 0, sizeof *c);
	c->fd = fd;
	c->next_id = 1;
	c->max = PROTO_MAX_MESSAGE;
	c->spin_cap_ns = spin_default(PROTO_SPIN_CAP_NS);
	c->chan_spin_cap_ns = spin_default(CHANNEL_SPIN_CAP_NS);
}

int rfc_connect(struct rfc *c, const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof a.sun_path)
		return -ENAMETOOLONG;
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	rfc_attach(c, fd);
	return 0;
}

void rfc_close(struct rfc *c)
{
	channel_unmap(c->chan);
	c->chan = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

int rfc_channel_open(struct rfc *c)
{
	if (c->chan)
		return -EBUSY;
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__Empty em = RINGFENCE__V1__EMPTY__INIT;
	q.op_case = RINGFENCE__V1__REQUEST__OP_CHANNEL_OPEN;
	q.channel_open = &em;
	Response *r;
	int fd = -1;
	int e = call(c, &q, &r, &fd);
	if (e < 0)
		return e;
	if (r->result_case != RINGFENCE__V1__RESPONSE__RESULT_CHANNEL || fd < 0)
		e = -EBADMSG;
	else
		e = channel_map(fd, &c->chan);
	if (fd >= 0)
		close(fd);   /* the mapping keeps the memory */
	rfc_free(r);
	return e;
}

void rfc_free(Response *resp)
{
	if (resp)
		ringfence__v1__response__free_unpacked(resp, NULL);
}

/* Whether req may go by the channel: no descriptor comes back with its reply, and the reply fits. */
static bool by_channel(const struct rfc *c, const Request *req, size_t n)
{
	if (!c->chan || n > CHANNEL_MAX_MESSAGE)
		return false;
	switch (req->op_case) {
	case RINGFENCE__V1__REQUEST__OP_MEMORY_CREATE:
	case RINGFENCE__V1__REQUEST__OP_CHANNEL_OPEN:
		return false;
	case RINGFENCE__V1__REQUEST__OP_MEMORY_READ:
		return req->memory_read->length <= CHANNEL_MAX_MESSAGE - PROTO_HEADROOM;
	default:
		return true;
	}
}

/* The server's end of the socket, seen while asleep on the channel (it closes the channel too, but
 * a server killed outright says nothing there). */
static bool server_gone(void *arg)
{
	struct pollfd p = { *(int *)arg, POLLRDHUP, 0 };
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL));
}

/* One round trip on the channel: the request's bytes in buf (n of them), the reply's out. */
static int channel_call(struct rfc *c, const uint8_t *buf, size_t n, uint8_t **in, uint32_t *len)
{
	struct channel_page *pg = c->chan;
	/* The server may still hold the turn after a call that ended early (a transport error). */
	struct spin none = { 0 };
	int e = channel_wait(pg, CHANNEL_CLIENT, &none, 0, server_gone, &c->fd);
	if (e < 0)
		return e;
	memcpy(pg->data, buf, n);
	pg->len = (uint32_t)n;
	channel_give(pg, CHANNEL_SERVER, &c->spin);
	e = channel_wait(pg, CHANNEL_CLIENT, &c->spin, atomic_load_explicit(&c->chan_spin_cap_ns, memory_order_relaxed),
	                 server_gone, &c->fd);
	if (e < 0)
		return e;
	uint32_t m = *(volatile uint32_t *)&pg->len;
	if (m > CHANNEL_MAX_MESSAGE)
		return -EBADMSG;
	*in = malloc(m ? m : 1);
	if (!*in)
		return -ENOMEM;
	memcpy(*in, pg->data, m);
	*len = m;
	return 0;
}

/* One round trip on the socket: the request's bytes in buf, the reply's out (fd: a descriptor that
 * came with it, or NULL not to take one). */
static int socket_call(struct rfc *c, const uint8_t *buf, size_t n, uint8_t **in, uint32_t *len, int *fd)
{
	int e = frame_write(c->fd, buf, (uint32_t)n, -1);
	if (e < 0)
		return e;
	/* A switch into a guest that soon makes a syscall answers within microseconds: wait awake for
	 * the answer a while (see struct spin). */
	spin_sent(&c->spin);
	spin_wait(&c->spin, c->fd, atomic_load_explicit(&c->spin_cap_ns, memory_order_relaxed));
	e = frame_read(c->fd, PROTO_MAX_MESSAGE, in, len, fd);
	spin_arrived(&c->spin);
	return e == 1 ? -ECONNRESET : e;
}

int rfc_call(struct rfc *c, Request *req, Response **resp, int *fd_out)
{
	*resp = NULL;
	req->id = c->next_id++;
	size_t n = ringfence__v1__request__get_packed_size(req);
	if (n > c->max)
		return -EMSGSIZE;
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	ringfence__v1__request__pack(req, buf);
	uint8_t *in;
	uint32_t len;
	int fd = -1;
	int e = by_channel(c, req, n) ? channel_call(c, buf, n, &in, &len)
	                              : socket_call(c, buf, n, &in, &len, fd_out ? &fd : NULL);
	free(buf);
	if (e < 0)
		return e;
	*resp = ringfence__v1__response__unpack(NULL, len, in);
	free(in);
	if (!*resp || (*resp)->id != req->id) {
		rfc_free(*resp);
		*resp = NULL;
		if (fd >= 0)
			close(fd);
		return -EBADMSG;
	}
	if (fd_out)
		*fd_out = fd;
	return 0;
}

/* The call, with a remote Error turned into its negative errno (message in c->error). */
static int call(struct rfc *c, Request *req, Response **resp, int *fd_out)
{
	int e = rfc_call(c, req, resp, fd_out);
	if (e < 0)
		return e;
	if ((*resp)->error) {
		const Ringfence__V1__Error *er = (*resp)->error;
		snprintf(c->error, sizeof c->error, "%s", er->message ? er->message : "");
		c->code = er->code;
		e = er->errno_value < 0 ? er->errno_value : -EPROTO;
		rfc_free(*resp);
		*resp = NULL;
		if (fd_out && *fd_out >= 0) {
			close(*fd_out);
			*fd_out = -1;
		}
		return e;
	}
	return 0;
}

/* A call whose reply says nothing but that it was done. */
static int simple(struct rfc *c, Request *req)
{
	Response *r;
	int e = call(c, req, &r, NULL);
	rfc_free(r);
	return e;
}

int rfc_hello(struct rfc *c, Ringfence__V1__HelloReply **reply)
{
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__Hello h = RINGFENCE__V1__HELLO__INIT;
	h.client_version = PROTO_VERSION;
	q.op_case = RINGFENCE__V1__REQUEST__OP_HELLO;
	q.hello = &h;
	Response *r;
	int e = call(c, &q, &r, NULL);
	if (e < 0)
		return e;
	if (r->result_case != RINGFENCE__V1__RESPONSE__RESULT_HELLO) {
		rfc_free(r);
		return -EBADMSG;
	}
	c->max = r->hello->max_message_size;
	/* The reply is handed over: detach it from the response before freeing that. */
	*reply = r->hello;
	r->hello = NULL;
	r->result_case = RINGFENCE__V1__RESPONSE__RESULT__NOT_SET;
	rfc_free(r);
	return 0;
}

void rfc_free_hello(Ringfence__V1__HelloReply *reply)
{
	if (reply)
		ringfence__v1__hello_reply__free_unpacked(reply, NULL);
}

static int handle_of(struct rfc *c, Request *q, uint64_t *handle, int *fd)
{
	Response *r;
	int e = call(c, q, &r, fd);
	if (e < 0)
		return e;
	e = r->result_case == RINGFENCE__V1__RESPONSE__RESULT_HANDLE ? 0 : -EBADMSG;
	if (!e)
		*handle = r->handle->handle;
	rfc_free(r);
	return e;
}

int rfc_memory_create(struct rfc *c, uint64_t size, uint64_t *handle, int *fd)
{
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__MemoryCreate m = RINGFENCE__V1__MEMORY_CREATE__INIT;
	m.size = size;
	q.op_case = RINGFENCE__V1__REQUEST__OP_MEMORY_CREATE;
	q.memory_create = &m;
	int dummy = -1, e = handle_of(c, &q, handle, fd ? fd : &dummy);
	if (!fd && dummy >= 0)
		close(dummy);
	return e;
}

int rfc_memory_write(struct rfc *c, uint64_t memory, uint64_t offset, const void *data, size_t len)
{
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__MemoryWrite w = RINGFENCE__V1__MEMORY_WRITE__INIT;
	w.memory = memory;
	w.offset = offset;
	w.data = (ProtobufCBinaryData){ len, (uint8_t *)data };
	q.op_case = RINGFENCE__V1__REQUEST__OP_MEMORY_WRITE;
	q.memory_write = &w;
	return simple(c, &q);
}

int rfc_memory_read(struct rfc *c, uint64_t memory, uint64_t offset, void *data, size_t len)
{
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__MemoryRead m = RINGFENCE__V1__MEMORY_READ__INIT;
	m.memory = memory;
	m.offset = offset;
	m.length = len;
	q.op_case = RINGFENCE__V1__REQUEST__OP_MEMORY_READ;
	q.memory_read = &m;
	Response *r;
	int e = call(c, &q, &r, NULL);
	if (e < 0)
		return e;
	e = r->result_case == RINGFENCE__V1__RESPONSE__RESULT_DATA && r->data.len == len ? 0 : -EBADMSG;
	if (!e && len) /* an empty bytes field may carry no pointer at all */
		memcpy(data, r->data.data, len);
	rfc_free(r);
	return e;
}

int rfc_as_create(struct rfc *c, uint64_t *handle)
{
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__Empty em = RINGFENCE__V1__EMPTY__INIT;
	q.op_case = RINGFENCE__V1__REQUEST__OP_AS_CREATE;
	q.as_create = &em;
	return handle_of(c, &q, handle, NULL);
}

int rfc_as_map(struct rfc *c, uint64_t as, uint64_t va, uint64_t len, uint64_t memory, uint64_t offset,
               unsigned prot)
{
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__AsMap m = RINGFENCE__V1__AS_MAP__INIT;
	m.space = as, m.va = va, m.length = len, m.memory = memory, m.offset = offset, m.prot = prot;
	q.op_case = RINGFENCE__V1__REQUEST__OP_AS_MAP;
	q.as_map = &m;
	return simple(c, &q);
}

int rfc_as_unmap(struct rfc *c, uint64_t as, uint64_t va, uint64_t len)
{
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__AsRange m = RINGFENCE__V1__AS_RANGE__INIT;
	m.space = as, m.va = va, m.length = len;
	q.op_case = RINGFENCE__V1__REQUEST__OP_AS_UNMAP;
	q.as_unmap = &m;
	return simple(c, &q);
}

int rfc_context_create(struct rfc *c, uint64_t *handle)
{
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__Empty em = RINGFENCE__V1__EMPTY__INIT;
	q.op_case = RINGFENCE__V1__REQUEST__OP_CONTEXT_CREATE;
	q.context_create = &em;
	return handle_of(c, &q, handle, NULL);
}

int rfc_destroy(struct rfc *c, enum handle_kind kind, uint64_t handle)
{
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__Destroy d = RINGFENCE__V1__DESTROY__INIT;
	d.handle = handle;
	q.op_case = kind == H_MEMORY ? RINGFENCE__V1__REQUEST__OP_MEMORY_DESTROY
	          : kind == H_AS ? RINGFENCE__V1__REQUEST__OP_AS_DESTROY : RINGFENCE__V1__REQUEST__OP_CONTEXT_DESTROY;
	q.memory_destroy = &d;   /* one union: the same pointer for each of the three */
	return simple(c, &q);
}

static void regs_in(const Regs *m, struct rf_regs *g)
{
	g->rax = m->rax, g->rbx = m->rbx, g->rcx = m->rcx, g->rdx = m->rdx;
	g->rsi = m->rsi, g->rdi = m->rdi, g->rbp = m->rbp, g->rsp = m->rsp;
	g->r8 = m->r8, g->r9 = m->r9, g->r10 = m->r10, g->r11 = m->r11;
	g->r12 = m->r12, g->r13 = m->r13, g->r14 = m->r14, g->r15 = m->r15;
	g->rip = m->rip, g->rflags = m->rflags, g->fs_base = m->fs_base, g->gs_base = m->gs_base;
}

int rfc_get_regs(struct rfc *c, uint64_t context, struct rf_regs *regs)
{
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__GetRegs g = RINGFENCE__V1__GET_REGS__INIT;
	g.context = context;
	q.op_case = RINGFENCE__V1__REQUEST__OP_GET_REGS;
	q.get_regs = &g;
	Response *r;
	int e = call(c, &q, &r, NULL);
	if (e < 0)
		return e;
	e = r->result_case == RINGFENCE__V1__RESPONSE__RESULT_REGS ? 0 : -EBADMSG;
	if (!e)
		regs_in(r->regs, regs);
	rfc_free(r);
	return e;
}

int rfc_set_regs(struct rfc *c, uint64_t context, const struct rf_regs *g)
{
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__SetRegs s = RINGFENCE__V1__SET_REGS__INIT;
	Regs m = RINGFENCE__V1__REGS__INIT;
	m.rax = g->rax, m.rbx = g->rbx, m.rcx = g->rcx, m.rdx = g->rdx;
	m.rsi = g->rsi, m.rdi = g->rdi, m.rbp = g->rbp, m.rsp = g->rsp;
	m.r8 = g->r8, m.r9 = g->r9, m.r10 = g->r10, m.r11 = g->r11;
	m.r12 = g->r12, m.r13 = g->r13, m.r14 = g->r14, m.r15 = g->r15;
	m.rip = g->rip, m.rflags = g->rflags, m.fs_base = g->fs_base, m.gs_base = g->gs_base;
	s.context = context;
	s.regs = &m;
	q.op_case = RINGFENCE__V1__REQUEST__OP_SET_REGS;
	q.set_regs = &s;
	return simple(c, &q);
}

int rfc_switch(struct rfc *c, uint64_t context, uint64_t as, struct rf_event *ev, struct rf_regs *regs)
{
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__SwitchTo s = RINGFENCE__V1__SWITCH_TO__INIT;
	s.context = context;
	s.space = as;
	q.op_case = RINGFENCE__V1__REQUEST__OP_SWITCH_TO;
	q.switch_to = &s;
	Response *r;
	int e = call(c, &q, &r, NULL);
	if (e < 0)
		return e;
	e = r->result_case == RINGFENCE__V1__RESPONSE__RESULT_EVENT ? 0 : -EBADMSG;
	if (!e) {
		const Ringfence__V1__Event *m = r->event;
		*ev = (struct rf_event){ .type = (enum rf_event_type)m->type, .vector = (uint8_t)m->vector,
		                         .has_error_code = m->has_error_code, .error_code = m->error_code,
		                         .fault_addr = m->fault_addr, .access = m->access, .present = m->present,
		                         .rip = m->rip };
		if (regs && m->regs)
			regs_in(m->regs, regs);
	}
	rfc_free(r);
	return e;
}

int rfc_kick(struct rfc *c, uint64_t context)
{
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__Kick k = RINGFENCE__V1__KICK__INIT;
	k.context = context;
	q.op_case = RINGFENCE__V1__REQUEST__OP_KICK;
	q.kick = &k;
	return simple(c, &q);
}

int rfc_stats(struct rfc *c, Ringfence__V1__StatsReply **reply)
{
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__Empty em = RINGFENCE__V1__EMPTY__INIT;
	q.op_case = RINGFENCE__V1__REQUEST__OP_STATS;
	q.stats = &em;
	Response *r;
	int e = call(c, &q, &r, NULL);
	if (e < 0)
		return e;
	if (r->result_case != RINGFENCE__V1__RESPONSE__RESULT_STATS) {
		rfc_free(r);
		return -EBADMSG;
	}
	*reply = r->stats;
	r->stats = NULL;
	r->result_case = RINGFENCE__V1__RESPONSE__RESULT__NOT_SET;
	rfc_free(r);
	return 0;
}

void rfc_free_stats(Ringfence__V1__StatsReply *reply)
{
	if (reply)
		ringfence__v1__stats_reply__free_unpacked(reply, NULL);
}

int rfc_shutdown(struct rfc *c)
{
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__Empty em = RINGFENCE__V1__EMPTY__INIT;
	q.op_case = RINGFENCE__V1__REQUEST__OP_SHUTDOWN;
	q.shutdown = &em;
	return simple(c, &q);
}
