/* SPDX-License-Identifier: MIT */
/* The dispatcher: one request's bytes to one response's bytes. Every operation is the platform's own
 * call on objects found through the handle table; every failure is an Error, never a crash. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"

typedef Ringfence__V1__Error Error;
typedef Ringfence__V1__Regs Regs;

struct reply {
	Response r;
	Error err;
	char msg[512];
	union {
		Ringfence__V1__HelloReply hello;
		Ringfence__V1__Handle handle;
		Ringfence__V1__Event event;
		Ringfence__V1__StatsReply stats;
		Ringfence__V1__Empty done;
	} u;
	Regs regs;
	Ringfence__V1__VcpuStats *vstats, **vptrs;
	const char *caps[4];
	uint8_t *data;              /* memory_read's bytes, fpu image copies: freed after packing */
	Ringfence__V1__Channel channel;
	bool can_pass;              /* a descriptor can go with the reply (a Unix socket, not the channel) */
	int pass_fd;
};

static void fail(struct reply *rp, Ringfence__V1__ErrorCode code, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void fail(struct reply *rp, Ringfence__V1__ErrorCode code, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rp->msg, sizeof rp->msg, fmt, ap);
	va_end(ap);
	rp->err.code = code;
	rp->err.errno_value = err;
	rp->err.message = rp->msg;
	rp->r.error = &rp->err;
	rp->r.result_case = RINGFENCE__V1__RESPONSE__RESULT__NOT_SET;
}

/* A platform call's failure: its errno as a code, its sentence as the message. */
static void platform_fail(struct reply *rp, int e, const char *what)
{
	Ringfence__V1__ErrorCode code = e == -EINVAL ? RINGFENCE__V1__ERROR_CODE__INVALID_ARGUMENT
	                              : e == -ENOMEM ? RINGFENCE__V1__ERROR_CODE__NO_MEMORY
	                              : e == -EBUSY ? RINGFENCE__V1__ERROR_CODE__BUSY
	                                            : RINGFENCE__V1__ERROR_CODE__PLATFORM;
	fail(rp, code, e, "%s: %s", what, rf_last_error());
}

static void done(struct reply *rp)
{
	ringfence__v1__empty__init(&rp->u.done);
	rp->r.result_case = RINGFENCE__V1__RESPONSE__RESULT_DONE;
	rp->r.done = &rp->u.done;
}

static void *get(struct conn *c, uint64_t id, enum handle_kind kind)
{
	pthread_mutex_lock(&c->srv->lock);
	void *o = handles_get(c->srv->handles, id, kind, c);
	pthread_mutex_unlock(&c->srv->lock);
	return o;
}

static void not_found(struct reply *rp, const char *kind, uint64_t id)
{
	fail(rp, RINGFENCE__V1__ERROR_CODE__NOT_FOUND, -ENOENT, "no %s %llu on this connection", kind,
	     (unsigned long long)id);
}

static bool add(struct conn *c, struct reply *rp, enum handle_kind kind, void *obj, uint64_t size)
{
	pthread_mutex_lock(&c->srv->lock);
	uint64_t id = handles_add(c->srv->handles, kind, obj, c);
	pthread_mutex_unlock(&c->srv->lock);
	if (!id) {
		fail(rp, RINGFENCE__V1__ERROR_CODE__NO_MEMORY, -ENOMEM, "the server's handle table is full");
		return false;
	}
	ringfence__v1__handle__init(&rp->u.handle);   /* the union's other members share its bytes */
	rp->u.handle.handle = id;
	rp->u.handle.size = size;
	rp->r.result_case = RINGFENCE__V1__RESPONSE__RESULT_HANDLE;
	rp->r.handle = &rp->u.handle;
	return true;
}

/* dispatch_release's: srv->lock held. */
static void destroy_obj(enum handle_kind kind, void *o, void *srv)
{
	struct server *s = srv;
	if (kind == H_CONTEXT) {
		rf_context_destroy(o);
	} else if (kind == H_AS) {
		rf_as_destroy(o);
	} else {
		uint64_t size = rf_memory_size(o);
		if (rf_memory_destroy(o) == 0)
			s->memory_used -= size;
	}
}

/* ---- operations ---- */

static void op_hello(struct conn *c, struct reply *rp)
{
	const struct rf_platform_info *i = &c->srv->info;
	Ringfence__V1__HelloReply *h = &rp->u.hello;
	ringfence__v1__hello_reply__init(h);
	h->protocol_version = PROTO_VERSION;
	h->max_message_size = PROTO_MAX_MESSAGE;
	size_t n = 0;
	rp->caps[n++] = "switch-returns-regs";
	if (c->unix_socket) {
		rp->caps[n++] = "memory-fd-passing";
		rp->caps[n++] = "switch-channel";
	}
	h->capabilities = (char **)rp->caps;
	h->n_capabilities = n;
	h->mmu = i->mmu == RF_MMU_DIRECT ? RINGFENCE__V1__MMU__MMU_DIRECT : RINGFENCE__V1__MMU__MMU_SHADOW;
	h->syscall_mode = i->syscall_mode == RF_SYSCALL_NATIVE ? RINGFENCE__V1__SYSCALL_MODE__SYSCALL_NATIVE
	                                                       : RINGFENCE__V1__SYSCALL_MODE__SYSCALL_VIA_FAULT;
	h->kick_policy = i->kick_policy == RF_KICK_INJECT ? RINGFENCE__V1__KICK_POLICY__KICK_INJECT
	                                                  : RINGFENCE__V1__KICK_POLICY__KICK_TAKE_BACK;
	h->fpu_size = (uint32_t)i->fpu_size;
	h->xcr0 = i->xcr0;
	h->max_vcpus = i->max_vcpus;
	rp->r.result_case = RINGFENCE__V1__RESPONSE__RESULT_HELLO;
	rp->r.hello = h;
}

static void op_memory_create(struct conn *c, struct reply *rp, const Ringfence__V1__MemoryCreate *m)
{
	struct server *s = c->srv;
	rf_memory *mem;
	/* Reserved before it is created: KVM's cost comes with the creation (see PROTO_MAX_MEMORY). */
	pthread_mutex_lock(&s->lock);
	bool room = m->size <= s->memory_limit - s->memory_used;
	if (room)
		s->memory_used += m->size;
	pthread_mutex_unlock(&s->lock);
	if (!room)
		return fail(rp, RINGFENCE__V1__ERROR_CODE__NO_MEMORY, -ENOMEM,
		            "memory of %llu bytes: the server's memories would exceed its limit of %llu bytes",
		            (unsigned long long)m->size, (unsigned long long)s->memory_limit);
	int e = rf_memory_create(s->p, m->size, &mem);
	if (e == 0 && !add(c, rp, H_MEMORY, mem, m->size)) {
		rf_memory_destroy(mem);
		e = -ENOMEM;
	}
	if (e < 0) {
		pthread_mutex_lock(&s->lock);
		s->memory_used -= m->size;
		pthread_mutex_unlock(&s->lock);
		if (!rp->r.error)
			platform_fail(rp, e, "memory_create");
		return;
	}
	/* The memfd rides along on a Unix socket: the client maps it and copies nothing. */
	if (rp->can_pass) {
		rp->pass_fd = rf_memory_fd(mem);
		rp->u.handle.fd_attached = true;
	}
}

/* [offset, offset+len) inside m, without overflow. */
static bool in_memory(rf_memory *m, uint64_t offset, uint64_t len)
{
	uint64_t size = rf_memory_size(m);
	return offset <= size && len <= size - offset;
}

static void op_memory_write(struct conn *c, struct reply *rp, const Ringfence__V1__MemoryWrite *w)
{
	rf_memory *m = get(c, w->memory, H_MEMORY);
	if (!m)
		return not_found(rp, "memory", w->memory);
	if (!in_memory(m, w->offset, w->data.len))
		return fail(rp, RINGFENCE__V1__ERROR_CODE__OUT_OF_RANGE, -ERANGE,
		            "write of %zu bytes at %llu: past the end of the memory (%llu bytes)", w->data.len,
		            (unsigned long long)w->offset, (unsigned long long)rf_memory_size(m));
	if (w->data.len) /* an empty bytes field may carry no pointer at all */
		memcpy((uint8_t *)rf_memory_host(m) + w->offset, w->data.data, w->data.len);
	done(rp);
}

static void op_memory_read(struct conn *c, struct reply *rp, const Ringfence__V1__MemoryRead *r)
{
	rf_memory *m = get(c, r->memory, H_MEMORY);
	if (!m)
		return not_found(rp, "memory", r->memory);
	if (!in_memory(m, r->offset, r->length))
		return fail(rp, RINGFENCE__V1__ERROR_CODE__OUT_OF_RANGE, -ERANGE,
		            "read of %llu bytes at %llu: past the end of the memory (%llu bytes)",
		            (unsigned long long)r->length, (unsigned long long)r->offset,
		            (unsigned long long)rf_memory_size(m));
	if (r->length > PROTO_MAX_MESSAGE - PROTO_HEADROOM)
		return fail(rp, RINGFENCE__V1__ERROR_CODE__TOO_LARGE, -EMSGSIZE,
		            "read of %llu bytes: more than one message carries (%u)", (unsigned long long)r->length,
		            PROTO_MAX_MESSAGE - PROTO_HEADROOM);
	/* Copied out first: the reply is packed after the lock-free part, and the guest may run. */
	rp->data = malloc(r->length ? r->length : 1);
	if (!rp->data)
		return fail(rp, RINGFENCE__V1__ERROR_CODE__NO_MEMORY, -ENOMEM, "out of memory");
	memcpy(rp->data, (uint8_t *)rf_memory_host(m) + r->offset, r->length);
	rp->r.result_case = RINGFENCE__V1__RESPONSE__RESULT_DATA;
	rp->r.data = (ProtobufCBinaryData){ r->length, rp->data };
}

static void op_destroy(struct conn *c, struct reply *rp, uint64_t id, enum handle_kind kind, const char *name)
{
	pthread_mutex_lock(&c->srv->lock);
	void *o = handles_get(c->srv->handles, id, kind, c);
	int e = 0;
	if (o) {
		uint64_t size = kind == H_MEMORY ? rf_memory_size(o) : 0;
		e = kind == H_CONTEXT ? rf_context_destroy(o) : kind == H_AS ? rf_as_destroy(o) : rf_memory_destroy(o);
		if (e == 0) {
			handles_del(c->srv->handles, id);
			c->srv->memory_used -= size;
		}
	}
	pthread_mutex_unlock(&c->srv->lock);
	if (!o)
		return not_found(rp, name, id);
	if (e < 0)
		return platform_fail(rp, e, name);
	done(rp);
}

static void op_as_map(struct conn *c, struct reply *rp, const Ringfence__V1__AsMap *m)
{
	rf_as *as = get(c, m->space, H_AS);
	rf_memory *mem = get(c, m->memory, H_MEMORY);
	if (!as)
		return not_found(rp, "address space", m->space);
	if (!mem)
		return not_found(rp, "memory", m->memory);
	if (m->prot & ~(RF_PROT_READ | RF_PROT_WRITE | RF_PROT_EXEC))
		return fail(rp, RINGFENCE__V1__ERROR_CODE__INVALID_ARGUMENT, -EINVAL, "unknown protection bits 0x%x",
		            m->prot);
	int e = rf_as_map(as, m->va, m->length, mem, m->offset, m->prot, m->huge ? RF_MAP_HUGE : 0);
	if (e < 0)
		return platform_fail(rp, e, "as_map");
	done(rp);
}

static void op_as_unmap(struct conn *c, struct reply *rp, const Ringfence__V1__AsRange *u)
{
	rf_as *as = get(c, u->space, H_AS);
	if (!as)
		return not_found(rp, "address space", u->space);
	int e = rf_as_unmap(as, u->va, u->length);
	if (e < 0)
		return platform_fail(rp, e, "as_unmap");
	done(rp);
}

static void op_as_protect(struct conn *c, struct reply *rp, const Ringfence__V1__AsProtect *p)
{
	rf_as *as = get(c, p->space, H_AS);
	if (!as)
		return not_found(rp, "address space", p->space);
	if (p->prot & ~(RF_PROT_READ | RF_PROT_WRITE | RF_PROT_EXEC))
		return fail(rp, RINGFENCE__V1__ERROR_CODE__INVALID_ARGUMENT, -EINVAL, "unknown protection bits 0x%x",
		            p->prot);
	int e = rf_as_protect(as, p->va, p->length, p->prot);
	if (e < 0)
		return platform_fail(rp, e, "as_protect");
	done(rp);
}

static void regs_to_msg(const struct rf_regs *g, Regs *m)
{
	ringfence__v1__regs__init(m);
	m->rax = g->rax, m->rbx = g->rbx, m->rcx = g->rcx, m->rdx = g->rdx;
	m->rsi = g->rsi, m->rdi = g->rdi, m->rbp = g->rbp, m->rsp = g->rsp;
	m->r8 = g->r8, m->r9 = g->r9, m->r10 = g->r10, m->r11 = g->r11;
	m->r12 = g->r12, m->r13 = g->r13, m->r14 = g->r14, m->r15 = g->r15;
	m->rip = g->rip, m->rflags = g->rflags, m->fs_base = g->fs_base, m->gs_base = g->gs_base;
}

static void regs_from_msg(const Regs *m, struct rf_regs *g)
{
	g->rax = m->rax, g->rbx = m->rbx, g->rcx = m->rcx, g->rdx = m->rdx;
	g->rsi = m->rsi, g->rdi = m->rdi, g->rbp = m->rbp, g->rsp = m->rsp;
	g->r8 = m->r8, g->r9 = m->r9, g->r10 = m->r10, g->r11 = m->r11;
	g->r12 = m->r12, g->r13 = m->r13, g->r14 = m->r14, g->r15 = m->r15;
	g->rip = m->rip, g->rflags = m->rflags, g->fs_base = m->fs_base, g->gs_base = m->gs_base;
}

static void op_context_create(struct conn *c, struct reply *rp)
{
	rf_context *ctx;
	int e = rf_context_create(c->srv->p, &ctx);
	if (e < 0)
		return platform_fail(rp, e, "context_create");
	if (!add(c, rp, H_CONTEXT, ctx, 0))
		rf_context_destroy(ctx);
}

static void op_get_regs(struct conn *c, struct reply *rp, const Ringfence__V1__GetRegs *g)
{
	rf_context *ctx = get(c, g->context, H_CONTEXT);
	if (!ctx)
		return not_found(rp, "context", g->context);
	regs_to_msg(rf_context_regs(ctx), &rp->regs);
	if (g->fpu) {
		void *fpu = rf_context_fpu(ctx);
		size_t n = c->srv->info.fpu_size;
		if (!fpu)
			return platform_fail(rp, -EIO, "get_regs");
		rp->data = malloc(n);
		if (!rp->data)
			return fail(rp, RINGFENCE__V1__ERROR_CODE__NO_MEMORY, -ENOMEM, "out of memory");
		memcpy(rp->data, fpu, n);
		rp->regs.fpu = (ProtobufCBinaryData){ n, rp->data };
	}
	rp->r.result_case = RINGFENCE__V1__RESPONSE__RESULT_REGS;
	rp->r.regs = &rp->regs;
}

static void op_set_regs(struct conn *c, struct reply *rp, const Ringfence__V1__SetRegs *s)
{
	rf_context *ctx = get(c, s->context, H_CONTEXT);
	if (!ctx)
		return not_found(rp, "context", s->context);
	if (!s->regs)
		return fail(rp, RINGFENCE__V1__ERROR_CODE__INVALID_ARGUMENT, -EINVAL, "set_regs without regs");
	size_t want = c->srv->info.fpu_size;
	if (s->regs->fpu.len && s->regs->fpu.len != want)
		return fail(rp, RINGFENCE__V1__ERROR_CODE__INVALID_ARGUMENT, -EINVAL,
		            "an FPU image of %zu bytes; this platform's is %zu", s->regs->fpu.len, want);
	if (s->regs->fpu.len) {
		void *fpu = rf_context_fpu(ctx);
		if (!fpu)
			return platform_fail(rp, -EIO, "set_regs");
		memcpy(fpu, s->regs->fpu.data, want);
	}
	regs_from_msg(s->regs, rf_context_regs(ctx));
	done(rp);
}

static void wake_watcher(struct server *s)
{
	uint64_t one = 1;
	(void)!write(s->wake, &one, sizeof one);
}

static void op_switch(struct conn *c, struct reply *rp, const Ringfence__V1__SwitchTo *sw)
{
	rf_context *ctx = get(c, sw->context, H_CONTEXT);
	rf_as *as = get(c, sw->space, H_AS);
	if (!ctx)
		return not_found(rp, "context", sw->context);
	if (!as)
		return not_found(rp, "address space", sw->space);
	/* The watcher kicks it back if this connection hangs up meanwhile; if it did before, here. */
	pthread_mutex_lock(&c->srv->lock);
	c->switching = ctx;
	pthread_mutex_unlock(&c->srv->lock);
	if (c->srv->kick_before_switch || atomic_load(&c->hung_up))
		rf_kick(ctx);
	struct rf_event ev;
	int e = rf_switch(ctx, as, &ev);
	pthread_mutex_lock(&c->srv->lock);
	c->switching = NULL;
	pthread_mutex_unlock(&c->srv->lock);
	if (e < 0)
		return platform_fail(rp, e, "switch");
	Ringfence__V1__Event *m = &rp->u.event;
	ringfence__v1__event__init(m);
	m->type = (Ringfence__V1__EventType)ev.type;
	m->vector = ev.vector;
	m->has_error_code = ev.has_error_code;
	m->error_code = ev.error_code;
	m->fault_addr = ev.fault_addr;
	m->access = ev.access;
	m->present = ev.present;
	m->rip = ev.rip;
	regs_to_msg(rf_context_regs(ctx), &rp->regs);
	m->regs = &rp->regs;
	rp->r.result_case = RINGFENCE__V1__RESPONSE__RESULT_EVENT;
	rp->r.event = m;
}

static void op_kick(struct conn *c, struct reply *rp, const Ringfence__V1__Kick *k)
{
	/* Any connection may kick any context: the point is to reach one whose owner is blocked in a
	 * switch. Under the lock, so the context cannot be destroyed meanwhile. */
	pthread_mutex_lock(&c->srv->lock);
	rf_context *ctx = handles_get(c->srv->handles, k->context, H_CONTEXT, NULL);
	if (ctx)
		rf_kick(ctx);
	pthread_mutex_unlock(&c->srv->lock);
	if (!ctx)
		return not_found(rp, "context", k->context);
	done(rp);
}

/* The switch channel: its memfd goes with the reply, so only by a Unix socket, and once. */
static void op_channel_open(struct conn *c, struct reply *rp)
{
	if (!rp->can_pass)
		return fail(rp, RINGFENCE__V1__ERROR_CODE__BAD_REQUEST, -EOPNOTSUPP, c->unix_socket
		            ? "channel_open goes by the socket: its descriptor cannot ride on the channel"
		            : "a switch channel needs a Unix socket (its descriptor is passed with the reply)");
	if (c->chan)
		return fail(rp, RINGFENCE__V1__ERROR_CODE__BUSY, -EBUSY, "this connection's channel is already open");
	int e = channel_serve(c);
	if (e < 0)
		return platform_fail(rp, e, "channel_open");
	Ringfence__V1__Channel *ch = &rp->channel;
	ringfence__v1__channel__init(ch);
	ch->size = CHANNEL_SIZE;
	ch->max_message = CHANNEL_MAX_MESSAGE;
	rp->pass_fd = c->chan_fd;
	rp->r.result_case = RINGFENCE__V1__RESPONSE__RESULT_CHANNEL;
	rp->r.channel = ch;
}

static void op_stats(struct conn *c, struct reply *rp)
{
	struct rf_platform_info i;
	rf_platform_info(c->srv->p, &i);
	Ringfence__V1__StatsReply *s = &rp->u.stats;
	ringfence__v1__stats_reply__init(s);
	s->vcpus_created = i.vcpus_created;
	s->mmu_flushes = i.mmu_flushes;
	s->mmu_pages_touched = i.mmu_pages_touched;
	s->connections = atomic_load(&c->srv->connections);
	s->requests = atomic_load(&c->srv->requests);
	s->channel_requests = atomic_load(&c->srv->channel_requests);
	rp->vstats = calloc(i.vcpus_created ? i.vcpus_created : 1, sizeof *rp->vstats);
	rp->vptrs = calloc(i.vcpus_created ? i.vcpus_created : 1, sizeof *rp->vptrs);
	if (!rp->vstats || !rp->vptrs)
		return fail(rp, RINGFENCE__V1__ERROR_CODE__NO_MEMORY, -ENOMEM, "out of memory");
	for (unsigned v = 0; v < i.vcpus_created; v++) {
		struct rf_vcpu_stats vs;
		Ringfence__V1__VcpuStats *m = &rp->vstats[s->n_vcpus];
		if (rf_vcpu_stats(c->srv->p, v, &vs) < 0)
			continue;
		ringfence__v1__vcpu_stats__init(m);
		m->exits_io = vs.exits_io, m->exits_intr = vs.exits_intr, m->exits_window = vs.exits_window;
		m->exits_other = vs.exits_other, m->kicks_requested = vs.kicks_requested;
		m->kicks_coalesced = vs.kicks_coalesced, m->kicks_injected = vs.kicks_injected;
		m->kicks_delivered = vs.kicks_delivered, m->kicks_immediate = vs.kicks_immediate;
		m->window_requests = vs.window_requests, m->window_exits = vs.window_exits;
		m->ring0_arrivals = vs.ring0_arrivals, m->deadline_takebacks = vs.deadline_takebacks;
		m->kicks_taken_clean = vs.kicks_taken_clean, m->injections_cancelled = vs.injections_cancelled;
		m->syscalls_ring0 = vs.syscalls_ring0, m->syscalls_fault = vs.syscalls_fault;
		rp->vptrs[s->n_vcpus++] = m;
	}
	s->vcpus = rp->vptrs;
	rp->r.result_case = RINGFENCE__V1__RESPONSE__RESULT_STATS;
	rp->r.stats = s;
}

static void dispatch_op(struct conn *c, struct reply *rp, const Request *q)
{
	switch (q->op_case) {
	case RINGFENCE__V1__REQUEST__OP_HELLO: return op_hello(c, rp);
	case RINGFENCE__V1__REQUEST__OP_MEMORY_CREATE: return op_memory_create(c, rp, q->memory_create);
	case RINGFENCE__V1__REQUEST__OP_MEMORY_DESTROY:
		return op_destroy(c, rp, q->memory_destroy->handle, H_MEMORY, "memory");
	case RINGFENCE__V1__REQUEST__OP_MEMORY_WRITE: return op_memory_write(c, rp, q->memory_write);
	case RINGFENCE__V1__REQUEST__OP_MEMORY_READ: return op_memory_read(c, rp, q->memory_read);
	case RINGFENCE__V1__REQUEST__OP_AS_CREATE: {
		rf_as *as;
		int e = rf_as_create(c->srv->p, &as);
		if (e < 0)
			return platform_fail(rp, e, "as_create");
		if (!add(c, rp, H_AS, as, 0))
			rf_as_destroy(as);
		return;
	}
	case RINGFENCE__V1__REQUEST__OP_AS_DESTROY:
		return op_destroy(c, rp, q->as_destroy->handle, H_AS, "address space");
	case RINGFENCE__V1__REQUEST__OP_AS_MAP: return op_as_map(c, rp, q->as_map);
	case RINGFENCE__V1__REQUEST__OP_AS_UNMAP: return op_as_unmap(c, rp, q->as_unmap);
	case RINGFENCE__V1__REQUEST__OP_AS_PROTECT: return op_as_protect(c, rp, q->as_protect);
	case RINGFENCE__V1__REQUEST__OP_CONTEXT_CREATE: return op_context_create(c, rp);
	case RINGFENCE__V1__REQUEST__OP_CONTEXT_DESTROY:
		return op_destroy(c, rp, q->context_destroy->handle, H_CONTEXT, "context");
	case RINGFENCE__V1__REQUEST__OP_GET_REGS: return op_get_regs(c, rp, q->get_regs);
	case RINGFENCE__V1__REQUEST__OP_SET_REGS: return op_set_regs(c, rp, q->set_regs);
	case RINGFENCE__V1__REQUEST__OP_SWITCH_TO: return op_switch(c, rp, q->switch_to);
	case RINGFENCE__V1__REQUEST__OP_KICK: return op_kick(c, rp, q->kick);
	case RINGFENCE__V1__REQUEST__OP_STATS: return op_stats(c, rp);
	case RINGFENCE__V1__REQUEST__OP_CHANNEL_OPEN: return op_channel_open(c, rp);
	case RINGFENCE__V1__REQUEST__OP_SHUTDOWN:
		atomic_store(&c->srv->shut, true);
		wake_watcher(c->srv);
		return done(rp);
	default:
		return fail(rp, RINGFENCE__V1__ERROR_CODE__BAD_REQUEST, -EOPNOTSUPP,
		            q->op_case ? "unknown operation %d" : "no operation in the request", (int)q->op_case);
	}
}

uint32_t dispatch(struct conn *c, const uint8_t *in, uint32_t len, uint8_t **out, int *pass_fd,
                  uint32_t max_reply)
{
	struct reply rp;
	memset(&rp, 0, sizeof rp);
	ringfence__v1__response__init(&rp.r);
	ringfence__v1__error__init(&rp.err);
	rp.pass_fd = -1;
	rp.can_pass = pass_fd && c->unix_socket;
	atomic_fetch_add(&c->srv->requests, 1);
	Request *q = ringfence__v1__request__unpack(NULL, len, in);
	if (!q)
		fail(&rp, RINGFENCE__V1__ERROR_CODE__BAD_REQUEST, -EBADMSG, "not a Request message (%u bytes)", len);
	else {
		rp.r.id = q->id;
		/* One request at a time per connection, whether it came by the socket or the channel, but
		 * for a kick: a switch running on the channel can be kicked by the same connection's
		 * socket (op_kick touches nothing of the connection's). */
		bool serial = q->op_case != RINGFENCE__V1__REQUEST__OP_KICK;
		if (serial)
			pthread_mutex_lock(&c->serial);
		if (atomic_load(&c->srv->shut))
			fail(&rp, RINGFENCE__V1__ERROR_CODE__SHUT_DOWN, -ESHUTDOWN, "the server is shutting down");
		else
			dispatch_op(c, &rp, q);
		if (serial)
			pthread_mutex_unlock(&c->serial);
	}
	size_t n = ringfence__v1__response__get_packed_size(&rp.r);
	if (n > max_reply) {
		free(rp.data);
		rp.data = NULL;
		fail(&rp, RINGFENCE__V1__ERROR_CODE__TOO_LARGE, -EMSGSIZE, "the reply would be %zu bytes", n);
		rp.pass_fd = -1;
		n = ringfence__v1__response__get_packed_size(&rp.r);
	}
	*out = malloc(n ? n : 1);
	if (!*out) {
		/* Nothing can be said: the connection is ended by the caller on length 0 and no buffer. */
		n = 0;
	} else {
		ringfence__v1__response__pack(&rp.r, *out);
	}
	if (pass_fd)
		*pass_fd = rp.pass_fd;
	free(rp.data);
	free(rp.vstats);
	free(rp.vptrs);
	if (q)
		ringfence__v1__request__free_unpacked(q, NULL);
	return (uint32_t)n;
}

uint32_t pack_error(uint8_t *buf, size_t cap, Ringfence__V1__ErrorCode code, int err, const char *message)
{
	Error e = RINGFENCE__V1__ERROR__INIT;
	Response resp = RINGFENCE__V1__RESPONSE__INIT;
	e.code = code;
	e.errno_value = err;
	e.message = (char *)message;
	resp.error = &e;
	if (ringfence__v1__response__get_packed_size(&resp) > cap)
		return 0;
	return (uint32_t)ringfence__v1__response__pack(&resp, buf);
}

void dispatch_release(struct conn *c)
{
	pthread_mutex_lock(&c->srv->lock);
	handles_release(c->srv->handles, c, destroy_obj, c->srv);
	pthread_mutex_unlock(&c->srv->lock);
}
