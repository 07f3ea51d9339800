/* SPDX-License-Identifier: MIT */
/* rf_kick (async-signal-safe: atomics, getpid, tgkill) and the per-vCPU statistics. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../vcpu/vcpu.h"
#include "platform.h"

int rf_kick(rf_context *c)
{
	uint64_t before = atomic_fetch_add(&c->kick_seq, 1);
	struct vcpu *v = atomic_load(&c->vcpu);
	if (!v)
		return 0;   /* not running: the next switch reports it without entering */
	atomic_fetch_add_explicit(&v->ctr.requested, 1, memory_order_relaxed);
	if (before != atomic_load(&c->kick_done))
		atomic_fetch_add_explicit(&v->ctr.coalesced, 1, memory_order_relaxed);
	/* Two ways out of KVM_RUN: immediate_exit for a thread about to enter, the signal for one
	 * inside. If v has moved on to another context, it only sees one spurious EINTR. */
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_tgkill, getpid(), atomic_load(&v->tid), RF_KICK_SIGNAL);
	return 0;
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

int rf_vcpu_stats(const rf_platform *p, unsigned vcpu, struct rf_vcpu_stats *out)
{
	if (vcpu >= atomic_load(&((rf_platform *)p)->n_vcpus))
		return rf_error(-ENOENT, "vCPU %u has not been created", vcpu);
	const struct vcpu *v = atomic_load(&p->vcpus[vcpu]);
	*out = (struct rf_vcpu_stats){
		.exits_io = LOAD(v->ctr.io), .exits_intr = LOAD(v->ctr.intr),
		.exits_window = LOAD(v->ctr.window), .exits_other = LOAD(v->ctr.other),
		.kicks_requested = LOAD(v->ctr.requested), .kicks_coalesced = LOAD(v->ctr.coalesced),
		.kicks_injected = LOAD(v->kc.injected), .kicks_delivered = LOAD(v->kc.delivered),
		.kicks_immediate = LOAD(v->ctr.immediate), .window_requests = LOAD(v->kc.window_requests),
		.window_exits = LOAD(v->kc.window_exits), .ring0_arrivals = LOAD(v->kc.ring0_arrivals),
		.deadline_takebacks = LOAD(v->kc.takebacks), .kicks_taken_clean = LOAD(v->kc.clean), .injections_cancelled = LOAD(v->kc.cancelled),
		.syscalls_ring0 = LOAD(v->ctr.syscall_ring0), .syscalls_fault = LOAD(v->ctr.syscall_fault),
	};
	return 0;
}
