/* SPDX-License-Identifier: MIT */
/* The exit record: each vCPU keeps its last EXIT_LOG_SIZE exits (what KVM reported, the vCPU
 * events, what the kick machine decided), so that a fatal exit can say how the guest got there. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vcpu.h"

void exit_log_add(struct exit_log *log, const struct kvm_run *run, int err, const struct kvm_sregs *init)
{
	struct exit_rec *e = &log->r[log->n % EXIT_LOG_SIZE];
	const struct kvm_regs *r = &run->s.regs.regs;
	const struct kvm_sregs *s = &run->s.regs.sregs;
	const struct kvm_vcpu_events *ev = &run->s.regs.events;
	*e = (struct exit_rec){
		.seq = ++log->n, .t_ns = vcpu_now_ns(), .err = err, .reason = err ? 0 : run->exit_reason,
		.port = run->exit_reason == KVM_EXIT_IO ? run->io.port : 0,
		.cs = s->cs.selector, .rip = r->rip, .rsp = r->rsp, .cr2 = s->cr2, .rflags = r->rflags, .cr3 = s->cr3,
		.tables = (s->gdt.base ^ init->gdt.base) | (s->idt.base ^ init->idt.base) | (s->tr.base ^ init->tr.base),
		.exc_nr = ev->exception.nr, .irq_nr = ev->interrupt.nr,
		.exc_injected = ev->exception.injected, .exc_pending = ev->exception.pending,
		.nmi_injected = ev->nmi.injected, .nmi_pending = ev->nmi.pending,
		.irq_injected = ev->interrupt.injected, .shadow = ev->interrupt.shadow,
		.ready = run->ready_for_interrupt_injection, .if_flag = run->if_flag,
	};
}

void exit_log_kick(struct exit_log *log, unsigned acts, bool armed, bool in_flight)
{
	if (!log->n)
		return;
	struct exit_rec *e = &log->r[(log->n - 1) % EXIT_LOG_SIZE];
	e->kick_acts |= acts;
	e->kick_armed = armed;
	e->kick_in_flight = in_flight;
}

static const char *reason_name(const struct exit_rec *e)
{
	static const char *const names[] = {
		[KVM_EXIT_IO] = "io", [KVM_EXIT_HLT] = "hlt", [KVM_EXIT_MMIO] = "mmio",
		[KVM_EXIT_IRQ_WINDOW_OPEN] = "window", [KVM_EXIT_SHUTDOWN] = "shutdown",
		[KVM_EXIT_FAIL_ENTRY] = "fail-entry", [KVM_EXIT_INTERNAL_ERROR] = "internal-error",
	};
	if (e->err)
		return "eintr";
	if (e->reason < sizeof names / sizeof names[0] && names[e->reason])
		return names[e->reason];
	return "other";
}

int exit_rec_format(const struct exit_rec *e, uint64_t t0, char *buf, size_t len)
{
	return snprintf(buf, len,
	                "#%llu +%lluus %s(%u) port 0x%x cs 0x%x rip 0x%llx rsp 0x%llx cr2 0x%llx rflags 0x%llx "
	                "cr3 0x%llx%s exc %s%s%u nmi %u/%u irq %s%u shadow %u ready %u if %u kick 0x%x%s%s",
	                (unsigned long long)e->seq, (unsigned long long)((e->t_ns - t0) / 1000), reason_name(e),
	                e->err ? (unsigned)e->err : e->reason, e->port, e->cs, (unsigned long long)e->rip,
	                (unsigned long long)e->rsp, (unsigned long long)e->cr2, (unsigned long long)e->rflags,
	                (unsigned long long)e->cr3, e->tables ? " TABLES-MOVED" : "",
	                e->exc_injected ? "inj:" : "", e->exc_pending ? "pend:" : "", e->exc_nr, e->nmi_injected,
	                e->nmi_pending, e->irq_injected ? "inj:" : "", e->irq_nr, e->shadow, e->ready, e->if_flag,
	                e->kick_acts, e->kick_armed ? " armed" : "", e->kick_in_flight ? " in-flight" : "");
}

/* The last few exits, oldest first, each cut short, for an error message. */
void exit_log_summary(const struct exit_log *log, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = 0;
	uint64_t first = log->n > 3 ? log->n - 3 : 0;
	for (uint64_t i = first; i < log->n && used < len; i++) {
		const struct exit_rec *e = &log->r[i % EXIT_LOG_SIZE];
		int w = snprintf(buf + used, len - used, "%s#%llu %s rip 0x%llx cs 0x%x", i > first ? "; " : "",
		                 (unsigned long long)e->seq, reason_name(e), (unsigned long long)e->rip, e->cs);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

void exit_log_dump(const struct exit_log *log, int fd, unsigned vcpu, const char *why)
{
	if (fd <= 0)
		return;
	char line[320];
	uint64_t first = log->n > EXIT_LOG_SIZE ? log->n - EXIT_LOG_SIZE : 0;
	uint64_t t0 = log->n ? log->r[first % EXIT_LOG_SIZE].t_ns : 0;
	int n = snprintf(line, sizeof line, "ringfence: vCPU %u: %s; its last %llu exits, oldest first:\n", vcpu, why,
	                 (unsigned long long)(log->n - first));
	if (write(fd, line, (size_t)n) < 0)
		return;
	for (uint64_t i = first; i < log->n; i++) {
		n = exit_rec_format(&log->r[i % EXIT_LOG_SIZE], t0, line, sizeof line - 1);
		if (n < 0)
			return;
		n = n > (int)sizeof line - 2 ? (int)sizeof line - 2 : n;
		line[n++] = '\n';
		if (write(fd, line, (size_t)n) < 0)
			return;
	}
}
