/* SPDX-License-Identifier: MIT */
/* The KVM model behind the kick fuzzer: guest position, KVM's event queue, what KVM_RUN reports.
 *
 * Sources are those of docs/interrupt-injection.md. Simplifications, each chosen so that it cannot
 * hide a wrong injection: the model enters the guest with one event delivery or one instruction per
 * step; an exception or NMI delivered while our vector waits in the interrupt slot drops it on a
 * kernel with fa7a549d (KVM clears the slot at the next exit) and, on the others, delivers it right
 * after at the handler's first instruction in ring 0 with IF=0 (the reported failure; Intel would fail
 * the entry instead); KVM-internal exits are not modelled except where an event is left half delivered.
 */
#include <stddef.h>

#include "model.h"

void model_init(struct model *m, enum model_kernel k, uint64_t timer_period)
{
	*m = (struct model){ .kernel = k, .period = timer_period, .irq_owner = -1 };
	m->st[0] = (struct model_frame){ G_IRET, 0, false };
	m->depth = 1;
}

const struct model_frame *model_top(const struct model *m)
{
	return &m->st[m->depth - 1];
}

static struct model_frame *top(struct model *m)
{
	return &m->st[m->depth - 1];
}

static void push(struct model *m, enum model_pos pos)
{
	if (m->depth == MODEL_DEPTH) {
		m->bad = "model: guest frames nested too deep (a model bug)";
		return;
	}
	/* Every entry the model delivers uses an interrupt gate (or SYSCALL with IF in FMASK). */
	m->st[m->depth++] = (struct model_frame){ (uint8_t)pos, 0, false };
}

static void pop(struct model *m)
{
	if (m->depth > 1)
		m->depth--;
}

bool model_ready(const struct model *m)
{
	const struct model_frame *t = model_top(m);
	bool blocked = !t->if_ || m->shadow;
	bool slot = m->irq_ours || m->softint;   /* kvm_cpu_has_extint(): the one slot is taken */
	bool reinject = m->exc == EXC_INJECTED || m->nmi_injected;
	bool soft_exc = m->exc != EXC_NONE && m->exc_soft;
	switch (m->kernel) {
	case MK_FIXED:
		return !blocked && !slot && !reinject && m->exc != EXC_PENDING;
	case MK_NOFIX:
		return !blocked && !slot;
	case MK_LIAR:
	default:
		return !m->softint && !soft_exc;
	}
}

bool model_can_take(const struct model *m)
{
	const struct model_frame *t = model_top(m);
	return t->pos == G_USER && t->cpl == 3 && t->if_ && !m->shadow && m->exc == EXC_NONE &&
	       !m->nmi_injected && !m->softint && !m->irq_ours && !m->step_trap;
}

const char *model_take_loses(const struct model *m)
{
	const struct model_frame *t = model_top(m);
	if (t->pos != G_USER || t->cpl != 3)
		return "the guest is in ring 0: the registers are the shim's, not the user's";
	if (m->step_trap)
		return "a single-step trap is pending (TF)";
	if (m->shadow)
		return "a MOV SS/STI shadow";
	if (m->exc != EXC_NONE)
		return "an exception is being delivered";
	if (m->nmi_injected || m->nmi_pending)
		return "an NMI is being delivered or waits";
	if (m->softint)
		return "a software interrupt is being re-injected";
	if (m->irq_ours)
		return "our interrupt is queued";
	return NULL;
}

bool model_events_quiet(const struct model *m)
{
	return m->exc == EXC_NONE && !m->nmi_injected && !m->softint && !m->irq_ours;
}

bool model_next_is_instruction(const struct model *m)
{
	return m->exc == EXC_NONE && !m->step_trap && !m->nmi_injected && !m->softint && !m->irq_ours &&
	       !(m->nmi_pending && !m->nmi_blocked);
}

static bool timer_due(struct model *m)
{
	if (!m->timer || m->clock < m->next_tick)
		return false;
	m->next_tick = m->clock + m->period;   /* periodic: the next expiry one period on */
	return true;
}

/* Where KVM checks, before (re-)entering, whether KVM_RUN must return to userspace. */
static enum model_exit kernel_check(struct model *m)
{
	if (m->signal || timer_due(m))
		return MX_EINTR;
	if (m->window && model_ready(m))
		return MX_WINDOW;
	return MX_NONE;
}

static enum model_exit leave(struct model *m, enum model_exit x)
{
	if (x != MX_NONE)
		m->in_run = false;
	return x;
}

enum model_exit model_enter(struct model *m)
{
	/* A signal pending from outside KVM_RUN (unblocked by KVM_SET_SIGNAL_MASK) or immediate_exit:
	 * KVM_RUN returns EINTR without entering, with everything still queued (interleaving 14, 18). */
	if (m->immediate_exit || m->signal || timer_due(m))
		return MX_EINTR;
	m->in_run = true;
	return MX_NONE;
}

enum model_exit model_signal(struct model *m)
{
	m->signal = true;
	return leave(m, m->in_run ? MX_EINTR : MX_NONE);
}

/* Our vector enters the guest wherever it is: KVM's injection checks neither IF nor the shadow. */
static void deliver_ours(struct model *m, bool takeable)
{
	if (!takeable) {
		if (model_top(m)->cpl == 0)
			m->ring0_deliveries++;
		if (!m->irq_excused)
			m->bad = "(f) our vector was delivered where the guest cannot take it, and no visible "
			         "field had allowed the injection";
	}
	m->irq_ours = false;
	m->irq_excused = false;
	m->deliveries++;
	push(m, G_KICK);
}

/* Another event was delivered while our vector waited in the interrupt slot. */
static void ours_behind(struct model *m)
{
	if (!m->irq_ours)
		return;
	if (m->kernel == MK_FIXED) {
		m->irq_ours = false;   /* kvm_clear_interrupt_queue() at the next exit: lost */
		m->irq_excused = false;
		m->drops++;
		return;
	}
	deliver_ours(m, false);
}

enum event { EV_EXC, EV_STEP, EV_NMI_RE, EV_SOFTINT, EV_OURS, EV_NMI };

/* KVM's inject_pending_event() order: what was being delivered first (exception, NMI, the
 * interrupt slot), then new events. Only one per step. */
static enum event next_event(const struct model *m)
{
	if (m->exc != EXC_NONE)
		return EV_EXC;
	if (m->step_trap)
		return EV_STEP;   /* a trap of the last instruction comes before any interrupt */
	if (m->nmi_injected)
		return EV_NMI_RE;
	if (m->softint)
		return EV_SOFTINT;
	if (m->irq_ours)
		return EV_OURS;
	return EV_NMI;
}

static enum model_exit deliver(struct model *m)
{
	enum event e = next_event(m);
	m->clock++;
	if (m->delivery_exits) {
		/* An EPT violation on the stack or IDT halfway: KVM keeps the event to re-inject it and
		 * RIP does not move (no progress). */
		m->delivery_exits = false;
		if (e == EV_EXC)
			m->exc = EXC_INJECTED;
		if (e == EV_NMI) {
			m->nmi_pending = false;
			m->nmi_injected = true;
		}
		return kernel_check(m);
	}
	const struct model_frame *t = model_top(m);
	bool takeable = t->pos == G_USER && t->if_ && !m->shadow;   /* for our vector only */
	m->shadow = false;
	m->pc++;
	switch (e) {
	case EV_EXC:
		m->exc = EXC_NONE;
		m->exc_soft = false;
		push(m, G_EVENT);
		ours_behind(m);
		break;
	case EV_STEP:
		m->step_trap = false;
		push(m, G_EVENT);
		ours_behind(m);
		break;
	case EV_NMI_RE:
	case EV_NMI:
		m->nmi_injected = m->nmi_pending = false;
		m->nmi_blocked = true;
		push(m, G_NMI);
		ours_behind(m);
		break;
	case EV_SOFTINT:
		m->softint = false;
		push(m, G_EVENT);
		break;
	case EV_OURS:
		deliver_ours(m, takeable);
		break;
	}
	return kernel_check(m);
}

/* The guest's own exception or INT n from ring 3: delivered at once, or left half delivered. */
static void raise(struct model *m, bool soft, bool is_int)
{
	if (m->delivery_exits) {
		m->delivery_exits = false;
		if (is_int) {
			m->softint = true;
		} else {
			m->exc = EXC_INJECTED;
			m->exc_soft = soft;
		}
		return;
	}
	m->pc++;
	push(m, G_EVENT);
}

static enum model_exit user_insn(struct model *m, char op)
{
	/* An instruction that completes with TF set at its start traps after it (SYSCALL excepted:
	 * FMASK clears TF, and its trap is the ring-0 one decode.c turns into the syscall). */
	bool step = m->tf;
	switch (op) {
	case 't':   /* popf toggling TF: the trap, if any, follows the next instruction */
		m->pc++;
		m->step_trap = step;
		m->tf = !m->tf;
		return MX_NONE;
	case 's':   /* SYSCALL: no IDT delivery, so nothing to interrupt halfway */
		m->pc++;
		push(m, G_EVENT);
		return MX_NONE;
	case 'f':
	case 'i':   /* sti, cli, hlt in ring 3 with IOPL 0: #GP */
	case 'c':
	case 'h':
		raise(m, false, false);
		return MX_NONE;
	case 'b':   /* int3 / into: the only DPL-3 gates */
		raise(m, true, false);
		return MX_NONE;
	case 'n':   /* int n: a #GP on ringfence's IDT; modelled for IDTs that allow it */
		raise(m, true, true);
		return MX_NONE;
	case 'p':   /* a fault KVM intercepted and left pending (KVM_CAP_EXCEPTION_PAYLOAD) */
		m->exc = EXC_PENDING;
		m->exc_soft = false;
		return MX_NONE;
	case 'v':   /* mov ss / pop ss: legal in ring 3; its trap waits for the next instruction */
		m->pc++;
		m->shadow = true;
		return MX_NONE;
	case 'o':   /* an exit the loop completes and resumes (MMIO): no predicate there */
		m->pc++;
		m->step_trap = step;
		return MX_OTHER;
	default:
		m->pc++;
		m->step_trap = step;
		return MX_NONE;
	}
}

static enum model_exit shim_insn(struct model *m, char op)
{
	struct model_frame *t = top(m);
	m->pc++;
	switch (op) {
	case 'i':
		if (!t->if_)
			m->shadow = true;   /* STI opens a shadow only when IF was 0 */
		t->if_ = true;
		return MX_NONE;
	case 'c':
		t->if_ = false;
		return MX_NONE;
	case 'v':
		m->shadow = true;
		return MX_NONE;
	case 'h':
		return MX_HLT;      /* no irqchip: KVM returns at once, RIP past the hlt */
	case 'l':
		t->pos = G_STUCK;
		return MX_NONE;
	}
	switch (t->pos) {
	case G_IRET:
		t->pos = G_USER;
		t->cpl = 3;
		t->if_ = !m->hostile_next;
		m->hostile_next = false;
		return MX_NONE;
	case G_EVENT:
		return MX_EVENT;
	case G_KICK:
		return m->depth >= 2 && m->st[m->depth - 2].cpl == 3 ? MX_KICK : MX_KICK_RING0;
	case G_NMI:
		pop(m);
		m->nmi_blocked = false;
		return MX_NONE;
	default:
		return MX_NONE;
	}
}

enum model_exit model_unit(struct model *m, char op)
{
	if (!model_next_is_instruction(m))
		return leave(m, deliver(m));
	/* A window requested while it was already open exits before any instruction. */
	if (m->window && model_ready(m))
		return leave(m, MX_WINDOW);
	m->clock++;
	bool user = model_top(m)->cpl == 3;
	m->shadow = false;   /* this instruction was the shadowed one, if any; STI/MOV SS set it again */
	enum model_exit x = user ? user_insn(m, op) : shim_insn(m, op);
	if (x == MX_NONE)
		x = kernel_check(m);
	return leave(m, x);
}

void model_kvm_interrupt(struct model *m, int owner, bool excused)
{
	/* KVM_INTERRUPT without an irqchip: queue, silently replacing whatever is in the slot. */
	m->irq_ours = true;
	m->softint = false;
	m->irq_owner = owner;
	m->irq_excused = excused;
}

void model_cancel(struct model *m)
{
	/* The loop writes back the events it read: soft events were hidden there, so they go too. */
	m->irq_ours = false;
	m->irq_excused = false;
	m->softint = false;
	if (m->exc_soft) {
		m->exc = EXC_NONE;
		m->exc_soft = false;
	}
}

void model_reset_events(struct model *m)
{
	m->step_trap = false;
	m->tf = false;
	m->exc = EXC_NONE;
	m->exc_soft = false;
	m->nmi_pending = m->nmi_injected = m->nmi_blocked = false;
	m->softint = m->irq_ours = m->irq_excused = false;
	m->shadow = false;
	m->st[0] = (struct model_frame){ G_IRET, 0, false };
	m->depth = 1;
}

void model_load(struct model *m)
{
	/* A new user state: its TF is the context's, and no trap of the old one can follow it. */
	m->step_trap = false;
	m->tf = false;
	if (m->exc == EXC_PENDING) {   /* KVM_SET_REGS drops a pending exception (interleaving 20) */
		m->exc = EXC_NONE;
		m->exc_soft = false;
	}
	m->st[0] = (struct model_frame){ G_IRET, 0, false };
	m->depth = 1;
	m->shadow = false;
	m->pc += 1000;   /* the loop moved RIP: the next exit shows progress */
}

void model_resume_ring0(struct model *m)
{
	if (top(m)->pos == G_KICK)
		pop(m);
}

void model_resume_user(struct model *m)
{
	if (top(m)->pos == G_KICK)
		pop(m);
	m->pc++;
}

const char *model_exit_name(enum model_exit x)
{
	static const char *const names[] = { "none", "EINTR", "WINDOW", "HLT", "EVENT", "KICK",
	                                     "KICK_RING0", "OTHER" };
	return (unsigned)x < sizeof names / sizeof names[0] ? names[x] : "?";
}

const char *model_kernel_name(enum model_kernel k)
{
	return k == MK_FIXED ? "fixed" : k == MK_NOFIX ? "nofix" : "liar";
}
