/* SPDX-License-Identifier: MIT */
/* The kick fuzzer's core: decodes an input, plays ringfence's run loop with vcpu/kick.c over model.c, checks invariants.
 *
 * Alphabet (one letter per step; see model.c for what each does in ring 3 and in the shim):
 *   caller      0 1 2   switch that context in (ignored while one runs on the vCPU)
 *   other       k       kick the running context (or the last one, if none runs)
 *   threads     K       kick the context after the last one (one that is not running)
 *               d       a signal to the vCPU thread with no new kick (late, or already consumed)
 *               x       set immediate_exit: the next KVM_RUN returns EINTR at once
 *               r       an address-space shootdown: signal, and reload the context at that EINTR
 *               m       an NMI arrives
 *   KVM         e       the next event delivery exits halfway (EPT violation): re-injection
 *               + - ?   the kernel: with fa7a549d, without it, a lying `ready` (model.h); it
 *                       may change at any step, which no host does but which widens what the
 *                       machine sees (e.g. an excused injection meeting a kernel that drops it)
 *               z       shim bug: the next iretq to ring 3 leaves IF=0
 *   guest       u       an instruction (ring 3: a nop; ring 0: the shim's next instruction)
 *               s f p   syscall; fault; a fault KVM left pending (exception.pending)
 *               b n     int3/into (soft exception); int n (soft interrupt)
 *               v i c h mov ss; sti; cli; hlt (ring 3: #GP, except mov ss)
 *               l o w   ring 0: loop forever (shim bug); an MMIO-like exit; 8 steps of `u`
 *               t       ring 3: popf toggling TF (with TF set, each completed instruction leaves a
 *                       single-step trap pending, which KVM's events do not show)
 *   policy      P       toggle the kick policy: inject only (the start) / take back when clean
 *
 * The run loop played here: after each exit, fill kick_obs from the model, call kick_sm_step(),
 * apply the actions (window off, on, cancel, timer, routing, KA_INJECT last with nothing written
 * after it); a kick's report marks every kick of that context so far as reported; a KX_EVENT
 * returns to the caller and a kick left over is reported at that context's next switch without
 * entering the guest; TAKE_BACK reports and resets the vCPU (vcpu_reset() zeroes the events).
 *
 * Invariants, each a violation at the step where it first fails:
 *  (a) KA_INJECT only when the guest takes the interrupt at the next entry (ring 3, IF=1, no
 *      shadow, nothing pending or being delivered); excused only when every field KVM showed said
 *      yes (a kernel hiding an INT3 re-injection), which (f) then follows up.
 *  (b) never KA_INJECT while our interrupt is still queued (a second KVM_INTERRUPT overwrites).
 *  (c) every kick reported exactly once, to its context, by REPORT at a ring-3 kick frame,
 *      TAKE_BACK, or at once at that context's next switch; no report without a kick (kicks up to
 *      a report are covered by it); our interrupt never left queued when a run returns, never
 *      delivered to a context without a kick.
 *  (d) IRQ-window exits without guest progress: at most 1 in a row.
 *  (e) liveness: while a seen kick waits and the guest could take it, at most LATE_MAX guest
 *      instructions run before the injection, unless the machine gave the window up after a window
 *      exit without progress (then the deadline timer is the backstop); and every kick completes
 *      within DEADLINE + 2 timer periods of the machine first seeing it (TAKE_BACK at the latest).
 *  (f) our vector lands in ring 0 only after an excused injection; the loop routes it as
 *      KX_KICK_RING0, the machine resumes ring 0, and the kick is still reported once.
 *  (g) KA_TAKE_CLEAN only where the registers are exactly the user's state and nothing is lost:
 *      ring 3 at an instruction boundary, no trap pending, no shadow, nothing being delivered or
 *      waiting (model_take_loses()); only at EINTR, window and HLT exits, and only under the
 *      take-back policy.
 */
#include <stdarg.h>
#include <string.h>

#include "vcpu.h"
#include "model.h"

#define NCTX      3
#define TICK_NS   1000u
#define PERIOD    8u      /* deadline timer period, in guest steps */
#define DEADLINE  32u     /* the machine's deadline, in guest steps */
#define LATE_MAX  2u
#define MAX_OPS   4096u
#define DRAIN_MAX 600u

struct ctx {
	unsigned made, covered;   /* kicks made for this context; how many a report has covered */
};

struct h {
	struct model m;
	struct kick_sm sm;
	struct kick_counts counts;
	struct ctx c[NCTX];
	int cur, last;            /* the context running on the vCPU (-1: none); the last one run */
	uint64_t prev_pc;
	uint8_t prev_cpl;
	bool shootdown;
	unsigned idle_windows, late;
	bool backoff;             /* the machine gave the window up after a window exit w/o progress */
	bool seen;                /* the machine has been told about the running context's kick */
	uint64_t seen_at;
	unsigned step;            /* input position, for messages */
	struct kick_fuzz_stats *st;
	FILE *trace;
	char *why;
	size_t whylen;
	bool failed;
};

__attribute__((format(printf, 2, 3))) static void fail(struct h *h, const char *fmt, ...)
{
	if (h->failed)
		return;
	h->failed = true;
	char msg[320];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	char where[32] = "after the input";
	if (h->step)
		snprintf(where, sizeof where, "step %u", h->step);
	if (h->why && h->whylen)
		snprintf(h->why, h->whylen, "%s (t=%llu, %s kernel): %s", where,
		         (unsigned long long)h->m.clock, model_kernel_name(h->m.kernel), msg);
	if (h->trace)
		fprintf(h->trace, "VIOLATION: %s\n", msg);
}

static bool wanted(const struct h *h, int c)
{
	return c >= 0 && h->c[c].made > h->c[c].covered;
}

static void report(struct h *h, int c, const char *how)
{
	if (!wanted(h, c))
		fail(h, "(c) context %d reported INTERRUPTED (%s) without an unreported kick", c, how);
	h->c[c].covered = h->c[c].made;
	h->st->reports++;
	if (h->trace)
		fprintf(h->trace, "  report ctx %d (%s)\n", c, how);
}

static void return_to_caller(struct h *h)
{
	if (h->m.irq_ours)
		fail(h, "(c) the run of context %d returns with our interrupt still queued: the next "
		        "context would get it", h->cur);
	h->cur = -1;
	h->seen = h->backoff = h->shootdown = false;
	h->late = 0;
	h->m.in_run = false;
}

static void trace_exit(struct h *h, const struct kick_obs *o, enum model_exit x, unsigned a)
{
	static const char *const acts[] = { "INJECT", "WINDOW_ON", "WINDOW_OFF", "REPORT", "TAKE_BACK",
	                                    "CANCEL", "RESUME_RING0", "TIMER_ON", "TIMER_OFF", "TAKE_CLEAN" };
	fprintf(h->trace, "  exit %-10s ready=%d if=%d cpl3=%d shadow=%d tf=%d exc=%d/%d nmi=%d/%d irq=%d "
	        "want=%d progress=%d t=%llu ->", model_exit_name(x), o->ready, o->if_flag, o->cpl3,
	        o->shadow, o->tf, o->exc_injected, o->exc_pending, o->nmi_injected, o->nmi_pending,
	        o->irq_injected, o->kick_wanted, o->progress, (unsigned long long)h->m.clock);
	for (unsigned i = 0; i < sizeof acts / sizeof acts[0]; i++)
		if (a & (1u << i))
			fprintf(h->trace, " %s", acts[i]);
	fprintf(h->trace, "\n");
}

static void observe(const struct h *h, enum model_exit x, struct kick_obs *o)
{
	static const enum kick_exit kx[] = { [MX_EINTR] = KX_EINTR, [MX_WINDOW] = KX_WINDOW,
		[MX_HLT] = KX_HLT, [MX_EVENT] = KX_EVENT, [MX_KICK] = KX_KICK,
		[MX_KICK_RING0] = KX_KICK_RING0, [MX_OTHER] = KX_OTHER };
	const struct model *m = &h->m;
	const struct model_frame *t = model_top(m);
	*o = (struct kick_obs){
		.exit = kx[x], .ready = model_ready(m), .if_flag = t->if_, .cpl3 = t->cpl == 3,
		.shadow = m->shadow,
		/* KVM_GET_VCPU_EVENTS hides INT3/INTO and INT n: no instruction length to report. */
		.exc_injected = m->exc == EXC_INJECTED && !m->exc_soft,
		.exc_pending = m->exc == EXC_PENDING && !m->exc_soft,
		.nmi_injected = m->nmi_injected, .nmi_pending = m->nmi_pending,
		.irq_injected = m->irq_ours, .triple_fault = false, .tf = m->tf && t->cpl == 3,
		.kick_wanted = wanted(h, h->cur),
		.progress = m->pc != h->prev_pc || t->cpl != h->prev_cpl,
		.now_ns = m->clock * TICK_NS,
	};
}

/* The doc's predicate over what KVM showed: when it holds, no injector could have known better. */
static bool obs_clean(const struct kick_obs *o)
{
	return o->ready && o->if_flag && o->cpl3 && !o->shadow && !o->exc_injected && !o->exc_pending &&
	       !o->nmi_injected && !o->irq_injected && !o->triple_fault && !o->tf;
}

static const char *why_not(const struct model *m)
{
	const struct model_frame *t = model_top(m);
	return t->cpl != 3 ? "the guest is in ring 0" : !t->if_ ? "IF=0" : m->shadow ? "STI/MOV SS shadow"
	     : m->step_trap ? "a single-step trap is pending"
	     : m->exc == EXC_INJECTED ? "an exception is being re-injected"
	     : m->exc == EXC_PENDING ? "an exception is pending" : m->nmi_injected ? "an NMI is being re-injected"
	     : m->softint ? "a software interrupt is being re-injected" : "our interrupt is queued";
}

static void inject(struct h *h, const struct kick_obs *o)
{
	struct model *m = &h->m;
	h->st->injects++;
	if (m->irq_ours)
		fail(h, "(b) KA_INJECT while our interrupt is still queued: the second KVM_INTERRUPT "
		        "silently replaces the first");
	bool can = model_can_take(m);
	if (!can && !obs_clean(o))
		fail(h, "(a) KA_INJECT although the guest cannot take it (%s) and KVM showed that", why_not(m));
	if (!can)
		h->st->excused++;
	model_kvm_interrupt(m, h->cur, !can);
}

static void take_back(struct h *h)
{
	/* The loop takes the state without the guest and resets the vCPU (vcpu_reset() zeroes the
	 * events), so nothing half delivered follows into the next context. vcpu/inject.c's
	 * take_for_kick() does less: it declines in the shim or with a visible event (after the
	 * machine has disarmed), and after vcpu_take_back() it keeps KVM's events, hidden INT3/INT n
	 * re-injections included; with it, seed 17 (a shim looping with IF=0) never completes. */
	h->st->takebacks++;
	report(h, h->cur, "take-back");
	model_reset_events(&h->m);
	return_to_caller(h);
}

/* The loop copies the user state out of the exit's registers and reports, leaving KVM as it is. */
static void take_clean(struct h *h, const struct kick_obs *o)
{
	/* Excused only where every field KVM showed said clean, as for an injection: what no field
	 * shows (an INT3 re-injection on a kernel without fa7a549d, the trap after a POPF that
	 * cleared TF) no predicate can see, and the injection path meets it first too
	 * (docs/interrupt-injection.md). A machine that ignores a field it was shown is caught. */
	const char *lost = model_take_loses(&h->m);
	if (lost && !(obs_clean(o) && !o->nmi_pending))
		fail(h, "(g) KA_TAKE_CLEAN where the registers are not the user's exact state: %s", lost);
	h->st->hidden_losses += lost != NULL;
	model_reset_events(&h->m);   /* vcpu_take_user() clears KVM's events for the next KVM_RUN */
	if (!h->sm.take_back_clean)
		fail(h, "(g) KA_TAKE_CLEAN under the inject policy");
	h->st->clean++;
	report(h, h->cur, "clean take");
	return_to_caller(h);
}

static void check_actions(struct h *h, enum model_exit x, unsigned a)
{
	if ((a & KA_TAKE_CLEAN) && x != MX_EINTR && x != MX_WINDOW && x != MX_HLT)
		fail(h, "(g) KA_TAKE_CLEAN at a %s exit", model_exit_name(x));
	if ((a & KA_TAKE_CLEAN) && (a & (KA_INJECT | KA_REPORT | KA_TAKE_BACK | KA_RESUME_RING0)))
		fail(h, "(g) KA_TAKE_CLEAN together with another way of taking the kick");
	if ((a & KA_REPORT) && x != MX_KICK)
		fail(h, "KA_REPORT at a %s exit: no kick frame to take the user state from", model_exit_name(x));
	if ((a & KA_RESUME_RING0) && x != MX_KICK_RING0)
		fail(h, "KA_RESUME_RING0 at a %s exit", model_exit_name(x));
	if ((a & KA_INJECT) && x != MX_EINTR && x != MX_WINDOW && x != MX_HLT)
		fail(h, "KA_INJECT at a %s exit, where the predicate is not evaluated", model_exit_name(x));
	if ((a & KA_INJECT) && (a & (KA_REPORT | KA_TAKE_BACK | KA_CANCEL)))
		fail(h, "KA_INJECT together with a return to the caller");
}

static void handle_exit(struct h *h, enum model_exit x)
{
	struct model *m = &h->m;
	struct kick_obs o;
	observe(h, x, &o);
	unsigned a = kick_sm_step(&h->sm, &o);
	if (h->trace)
		trace_exit(h, &o, x, a);
	h->prev_pc = m->pc;
	h->prev_cpl = model_top(m)->cpl;
	h->st->eintr += x == MX_EINTR;
	h->st->hlt += x == MX_HLT;
	if (o.progress)
		h->idle_windows = 0;
	if (x == MX_WINDOW) {
		h->st->window_exits++;
		if (!o.progress && ++h->idle_windows > 1)
			fail(h, "(d) %u IRQ-window exits in a row without guest progress", h->idle_windows);
	}
	bool evaluating = x == MX_EINTR || x == MX_WINDOW || x == MX_HLT || x == MX_KICK_RING0;
	if (o.kick_wanted && evaluating && !h->seen) {
		h->seen = true;
		h->seen_at = m->clock;
	}
	if (x == MX_EINTR)
		m->signal = m->immediate_exit = false;   /* consume_kick(); immediate_exit back to 0 */
	check_actions(h, x, a);

	/* Applied in the run loop's order: window, cancel, timer, routing; KA_INJECT last. */
	if (a & KA_WINDOW_OFF)
		m->window = false;
	if (a & KA_WINDOW_ON) {
		m->window = true;
		h->backoff = false;
		h->st->window_requests++;
	} else if (x == MX_WINDOW && !o.progress && !m->window) {
		h->backoff = true;
	}
	if (a & KA_CANCEL) {
		model_cancel(m);
		h->st->cancels++;
	}
	if (a & KA_TIMER_ON) {
		m->timer = true;
		m->next_tick = m->clock + PERIOD;
	}
	if (a & KA_TIMER_OFF)
		m->timer = false;

	switch (x) {
	case MX_KICK:
		if (!o.kick_wanted)
			fail(h, "(c) our interrupt reached context %d, which has no unreported kick (stale)", h->cur);
		if (a & KA_REPORT) {
			h->st->kick_reports++;
			report(h, h->cur, "kick frame");
			return_to_caller(h);
			return;
		}
		model_resume_user(m);
		break;
	case MX_KICK_RING0:
		h->st->ring0++;
		if (!(a & (KA_RESUME_RING0 | KA_TAKE_BACK)))
			fail(h, "(f) the kick vector arrived in ring 0 and the machine did not resume the shim");
		model_resume_ring0(m);
		break;
	case MX_EVENT:
		h->st->events++;
		return_to_caller(h);   /* the event goes to the caller; a wanted kick waits for the next switch */
		return;
	default:
		break;
	}
	if (a & KA_TAKE_CLEAN) {
		take_clean(h, &o);
		return;
	}
	if (a & KA_TAKE_BACK) {
		take_back(h);
		return;
	}
	if (x == MX_EINTR && h->shootdown) {
		/* run.c's take_back(): write a fresh state only with the events quiet, never after
		 * KVM_INTERRUPT (the injection would then land at ring0_iret). */
		h->shootdown = false;
		if (!(a & KA_INJECT) && !o.exc_injected && !o.exc_pending && !o.nmi_injected && !o.irq_injected)
			model_load(m);
	}
	if (a & KA_INJECT) {
		inject(h, &o);
		h->late = 0;
	}
}

static void signal_thread(struct h *h)
{
	enum model_exit x = model_signal(&h->m);
	if (x != MX_NONE && h->cur >= 0)
		handle_exit(h, x);
}

static void kick(struct h *h, int c)
{
	h->c[c].made++;
	h->st->kicks++;
	if (c == h->cur)   /* rf_kick() signals the thread only while the context is on a vCPU */
		signal_thread(h);
}

static void switch_in(struct h *h, int c)
{
	if (h->cur >= 0)
		return;
	h->last = c;
	if (wanted(h, c)) {   /* the kick came while it was not running: report at once, no entry */
		h->st->switch_reports++;
		report(h, c, "next switch");
		return;
	}
	if (!model_events_quiet(&h->m))
		fail(h, "(c) context %d is loaded while KVM still holds an event of the previous run", c);
	model_load(&h->m);
	h->cur = c;
}

static void check_deadline(struct h *h)
{
	if (h->cur >= 0 && wanted(h, h->cur) && h->seen && h->m.clock - h->seen_at > DEADLINE + 2 * PERIOD)
		fail(h, "(e) the kick of context %d is not complete %llu steps after the machine saw it "
		        "(deadline %u)", h->cur, (unsigned long long)(h->m.clock - h->seen_at), DEADLINE);
}

static void guest_step(struct h *h, char op)
{
	struct model *m = &h->m;
	if (h->cur < 0)
		return;
	if (!m->in_run) {
		enum model_exit x = model_enter(m);
		if (x != MX_NONE) {
			handle_exit(h, x);
			return;
		}
	}
	/* (e): an instruction about to run in a state that could take the kick, no window to stop it. */
	if (wanted(h, h->cur) && h->seen && !m->irq_ours && !h->backoff && model_can_take(m) &&
	    model_next_is_instruction(m) && !(m->window && model_ready(m))) {
		if (++h->late > h->st->max_late)
			h->st->max_late = h->late;
		if (h->late > LATE_MAX)
			fail(h, "(e) the guest could take the kick and ran %u instructions without it; the "
			        "window was not requested", h->late);
	}
	enum model_exit x = model_unit(m, op);
	if (m->bad)
		fail(h, "%s", m->bad);
	if (x != MX_NONE)
		handle_exit(h, x);
	check_deadline(h);
}

static void apply(struct h *h, char op)
{
	if (h->trace)
		fprintf(h->trace, "op %c  [ctx %d, pos %d cpl %u if %d, %s]\n", op, h->cur, model_top(&h->m)->pos,
		        model_top(&h->m)->cpl, model_top(&h->m)->if_, model_kernel_name(h->m.kernel));
	switch (op) {
	case '0': case '1': case '2': switch_in(h, op - '0'); break;
	case 'k': kick(h, h->cur >= 0 ? h->cur : h->last); break;
	case 'K': kick(h, (h->last + 1) % NCTX); break;
	case 'd': signal_thread(h); break;
	case 'x': h->m.immediate_exit = true; break;
	case 'r': h->shootdown = h->cur >= 0; signal_thread(h); break;
	case 'm': h->m.nmi_pending = true; break;
	case 'e': h->m.delivery_exits = true; break;
	case 'z': h->m.hostile_next = true; break;
	case '+': h->m.kernel = MK_FIXED; break;
	case '-': h->m.kernel = MK_NOFIX; break;
	case '?': h->m.kernel = MK_LIAR; break;
	case 'w': for (int i = 0; i < 8; i++) guest_step(h, 'u'); break;
	case 'P': h->sm.take_back_clean = !h->sm.take_back_clean; break;
	default: guest_step(h, op); break;
	}
}

/* Every byte is a step: letters of the alphabet as themselves, any other byte by its value. */
static char decode(uint8_t b)
{
	static const char alphabet[] = "012kKdxrmez+-?usfpbnvichlowtP";
	if (b && memchr(alphabet, b, sizeof alphabet - 1))
		return (char)b;
	return alphabet[b % (sizeof alphabet - 1)];
}

/* After the input: keep stepping until every kick is reported, kicking a running context that has
 * none so that the others get their switch. Bounded: a kick that never completes is (e). */
static void drain(struct h *h)
{
	for (unsigned i = 0; i < DRAIN_MAX && !h->failed; i++) {
		int pending = -1;
		for (int c = 0; c < NCTX; c++)
			if (wanted(h, c))
				pending = c;
		if (pending < 0)
			return;
		if (h->cur < 0)
			apply(h, (char)('0' + pending));
		else if (!wanted(h, h->cur))
			apply(h, 'k');
		else
			apply(h, 'u');
	}
	for (int c = 0; c < NCTX; c++)
		if (wanted(h, c))
			fail(h, "(e) context %d's kick was never reported (%u made, %u covered)", c,
			     h->c[c].made, h->c[c].covered);
}

size_t kick_fuzz_decode(const uint8_t *data, size_t n, char *out, size_t max)
{
	size_t k = 0;
	bool comment = false;
	for (size_t i = 0; i < n && k < max && k < MAX_OPS; i++) {
		uint8_t b = data[i];
		if (comment || b == '#') {
			comment = b != '\n';
			continue;
		}
		if (b != ' ' && b != '\n' && b != '\t' && b != '\r')
			out[k++] = decode(b);
	}
	return k;
}

int kick_fuzz_run_stats(const uint8_t *data, size_t n, struct kick_fuzz_stats *st, FILE *trace,
                        char *why, size_t whylen)
{
	static struct h h;   /* static: the fuzzer calls this a million times */
	h = (struct h){ .cur = -1, .st = st, .trace = trace, .why = why, .whylen = whylen };
	*st = (struct kick_fuzz_stats){ 0 };
	if (why && whylen)
		why[0] = 0;
	model_init(&h.m, MK_FIXED, PERIOD);
	kick_sm_init(&h.sm, (uint64_t)DEADLINE * TICK_NS, false, &h.counts);
	h.prev_pc = h.m.pc;
	static char ops[MAX_OPS];
	size_t nops = kick_fuzz_decode(data, n, ops, sizeof ops);
	for (size_t i = 0; i < nops && !h.failed; i++) {
		h.step = ++st->ops;
		apply(&h, ops[i]);
	}
	if (!h.failed) {
		h.step = 0;
		if (trace)
			fprintf(trace, "drain\n");
		drain(&h);
	}
	return h.failed ? 1 : 0;
}

int kick_fuzz_run(const uint8_t *data, size_t n, char *why, size_t whylen)
{
	struct kick_fuzz_stats st;
	return kick_fuzz_run_stats(data, n, &st, NULL, why, whylen);
}
