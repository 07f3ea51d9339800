/* SPDX-License-Identifier: MIT */
/* Runs one fuzz program: sets the caller's registers, switches until the event budget is spent or
 * the program leaves its code, and checks every invariant after every event. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "driver.h"

#define RFLAGS_USER_MASK (0x254fd7ull | 0x200)   /* CF PF AF ZF SF TF IF DF OF RF AC ID, bit 1 */

static const char *type_name(int t)
{
	static const char *const n[] = { "?", "SYSCALL", "PAGE_FAULT", "EXCEPTION", "INTERRUPTED" };
	return t >= 1 && t <= 4 ? n[t] : "?";
}

static bool canonical(uint64_t v)
{
	return (uint64_t)((int64_t)(v << 16) >> 16) == v;
}

static bool has_error_code(unsigned v)
{
	return v == 8 || v == 10 || v == 11 || v == 12 || v == 13 || v == 14 || v == 17 || v == 21 ||
	       v == 29 || v == 30;
}

/* Traps report the registers after the instruction; every other event reports them at it. */
static bool is_trap(const struct rf_event *ev)
{
	return ev->type == RF_EVENT_SYSCALL ||
	       (ev->type == RF_EVENT_EXCEPTION && (ev->vector == 1 || ev->vector == 3 || ev->vector == 4));
}

static void check_rflags(struct findings *f, const struct rf_event *ev, uint64_t fl)
{
	static const struct { uint64_t bits; const char *name; } cat[] = {
		{ 0x3000, "IOPL" }, { 0x4000, "NT" }, { 0x20000, "VM" }, { 0x80000, "VIF" },
		{ 0x100000, "VIP" },
	};
	uint64_t bad = fl & ~RFLAGS_USER_MASK;
	char key[FINDING_KEY];
	if (!(fl & 2)) {
		snprintf(key, sizeof key, "RFLAGS after %s: bit 1 clear", type_name(ev->type));
		findings_add(f, INV_RFLAGS, key, "rflags 0x%llx, event at 0x%llx", (unsigned long long)fl,
		             (unsigned long long)ev->rip);
	}
	for (unsigned i = 0; i < sizeof cat / sizeof cat[0]; i++) {
		if (!(bad & cat[i].bits))
			continue;
		bad &= ~cat[i].bits;
		snprintf(key, sizeof key, "RFLAGS after %s: %s set", type_name(ev->type), cat[i].name);
		findings_add(f, INV_RFLAGS, key, "rflags 0x%llx, event at 0x%llx", (unsigned long long)fl,
		             (unsigned long long)ev->rip);
	}
	if (bad) {
		snprintf(key, sizeof key, "RFLAGS after %s: reserved bits set", type_name(ev->type));
		findings_add(f, INV_RFLAGS, key, "rflags 0x%llx (reserved 0x%llx), event at 0x%llx",
		             (unsigned long long)fl, (unsigned long long)bad, (unsigned long long)ev->rip);
	}
}

static void check_event(struct findings *f, const struct rf_event *ev, const struct rf_regs *r)
{
	char key[FINDING_KEY];
	const char *t = type_name(ev->type);
#define BAD(what, ...)                                                                            \
	do {                                                                                      \
		snprintf(key, sizeof key, "event %s: %s", t, what);                              \
		findings_add(f, INV_EVENT, key, __VA_ARGS__);                                    \
	} while (0)
	switch (ev->type) {
	case RF_EVENT_SYSCALL:
		if (ev->rip + 2 != r->rip)
			BAD("rip is not 2 bytes before the registers' rip", "event rip 0x%llx, regs rip 0x%llx",
			    (unsigned long long)ev->rip, (unsigned long long)r->rip);
		break;
	case RF_EVENT_PAGE_FAULT:
		if (ev->vector != RF_VEC_PF || !ev->has_error_code)
			BAD("vector or error-code flag wrong", "vector %u has_error_code %d", ev->vector,
			    ev->has_error_code);
		if (ev->access != RF_ACCESS_READ && ev->access != RF_ACCESS_WRITE && ev->access != RF_ACCESS_EXEC)
			BAD("access is not one of read/write/exec", "access %u", ev->access);
		if (ev->present != (bool)(ev->error_code & 1))
			BAD("present disagrees with the error code", "present %d error 0x%x", ev->present,
			    ev->error_code);
		break;
	case RF_EVENT_EXCEPTION:
		if (ev->vector >= 32 || ev->vector == RF_VEC_PF)
			BAD("vector out of range", "vector %u", ev->vector);
		else if (ev->has_error_code != has_error_code(ev->vector))
			BAD("has_error_code disagrees with the vector", "vector %u has_error_code %d",
			    ev->vector, ev->has_error_code);
		break;
	case RF_EVENT_INTERRUPTED:
		break;
	default:
		BAD("unknown event type", "type %d", ev->type);
		return;
	}
	if (!is_trap(ev) && !(ev->type == RF_EVENT_EXCEPTION && ev->vector == RF_VEC_DB) && ev->rip != r->rip) {
		char what[64];
		snprintf(what, sizeof what, "rip differs from the registers' (%s)",
		         ev->type == RF_EVENT_EXCEPTION ? rf_vector_name(ev->vector) : t);
		BAD(what, "event rip 0x%llx, regs rip 0x%llx", (unsigned long long)ev->rip,
		    (unsigned long long)r->rip);
	}
#undef BAD
}

/* The code and the data page's garbage, in place for this program. */
static void load(struct gf_env *e, const struct program *p, const struct assembled *a)
{
	memset(e->host, GF_FILL, e->loaded);
	memcpy(e->host, a->code.b, a->code.n);
	e->loaded = a->code.n;
	program_garbage(p->seed, e->host + (2u << 20), GF_GARBAGE, e->xcr0);  /* the data area's offset */
}

/* Where a program goes on after a fault at rip: the next snippet, or nowhere (0). */
static uint64_t next_snippet(const struct program *p, const struct assembled *a, uint64_t rip)
{
	for (unsigned i = 0; i < p->n; i++)
		if (rip >= GF_CODE_VA + a->start[i] && rip < GF_CODE_VA + a->start[i + 1])
			return GF_CODE_VA + a->start[i + 1];
	return 0;
}

/* The snippet a switch starts in, for the report of a platform error. */
static const char *where(const struct program *p, const struct assembled *a, uint64_t rip)
{
	for (unsigned i = 0; i < p->n; i++)
		if (rip >= GF_CODE_VA + a->start[i] && rip < GF_CODE_VA + a->start[i + 1])
			return choice_name(&p->ch[i]);
	return "outside the program";
}

/* One switch with the watchdog on it; *kicked says whether it kicked during this switch. */
static int watched_switch(struct gf_env *e, rf_context *c, struct rf_event *ev, bool *kicked)
{
	memset(ev, 0, sizeof *ev);
	ev->type = 0;
	watchdog_arm(e->wd, c);
	int rc = rf_switch(c, e->as, ev);
	*kicked = watchdog_disarm(e->wd);
	return rc;
}

bool driver_run(struct gf_env *e, rf_context *c, const struct program *p, const struct assembled *a,
                struct gf_stats *s, struct findings *f)
{
	bool replace = false;
	load(e, p, a);
	struct rf_regs *r = rf_context_regs(c);
	*r = p->regs;
	struct rng dr = { p->seed ^ 0x647269766572ull };
	bool kick_due = false;        /* a kick landed after its switch had another event */
	char key[FINDING_KEY], norm[80];   /* short enough to fit in a key with its prefix */
	s->programs++;

	for (unsigned n = 0; n < GF_MAX_EVENTS; n++) {
		bool bad_fs = !canonical(r->fs_base), bad_gs = !canonical(r->gs_base), kicked;
		const char *at = where(p, a, r->rip);
		struct rf_event ev;
		int rc = watched_switch(e, c, &ev, &kicked);
		s->switches++;
		s->kicks += kicked;
		if (e->trace)
			printf("# trace: switch %u from 0x%llx: rc %d type %d vector %u err 0x%x addr 0x%llx -> rip 0x%llx rsp 0x%llx rflags 0x%llx\n",
			       n, (unsigned long long)(rc ? r->rip : ev.rip), rc, ev.type, ev.vector, ev.error_code,
			       (unsigned long long)ev.fault_addr, (unsigned long long)r->rip, (unsigned long long)r->rsp,
			       (unsigned long long)r->rflags);
		if (rc != 0) {
			if (rc == -EINVAL && (bad_fs || bad_gs)) {
				s->refused_fs += bad_fs;
				s->refused_gs += bad_gs;
			} else {
				findings_normalise(norm, sizeof norm, rf_last_error());
				snprintf(key, sizeof key, "rf_switch returned %d%s: %s", rc,
				         bad_fs || bad_gs ? " (FS/GS base non-canonical)" : "", norm);
				findings_add(f, INV_RC, key, "rc %d at switch %u from rip 0x%llx (a '%s' snippet): %s", rc,
				             n, (unsigned long long)r->rip, at, rf_last_error());
			}
			/* What becomes of a kick made during a failed switch is not specified: the
			 * caller starts over with a new context rather than guess. */
			replace = kicked || kick_due;
			kick_due = false;
			break;
		}
		s->events++;
		if (ev.type >= 1 && ev.type <= 4)
			s->by_type[ev.type]++;
		if (ev.type == RF_EVENT_EXCEPTION && ev.vector < 32)
			s->by_vector[ev.vector]++;
		check_rflags(f, &ev, r->rflags);
		check_event(f, &ev, r);

		if (ev.type == RF_EVENT_INTERRUPTED) {
			if (!kicked && !kick_due)
				findings_add(f, INV_KICK, "INTERRUPTED without a kick", "at switch %u, rip 0x%llx", n,
				             (unsigned long long)r->rip);
			kick_due = false;
			break;                /* a spinning program: taken back, done */
		}
		if (kick_due)
			findings_add(f, INV_KICK, "a kick from an earlier switch was not reported by the next one",
			             "switch %u returned %s instead", n, type_name(ev.type));
		kick_due = kicked;

		if (ev.type == RF_EVENT_SYSCALL) {
			uint64_t v = rng_next(&dr);
			r->rax = v % 3 == 0 ? 0 : v % 3 == 1 ? (uint64_t)-38 : v;
			continue;
		}
		if (is_trap(&ev)) {
			if (ev.vector == RF_VEC_DB && rng_one_in(&dr, 2))
				r->rflags &= ~0x100ull;   /* sometimes stop single-stepping */
			continue;
		}
		uint64_t next = next_snippet(p, a, r->rip);
		if (!next)
			break;
		r->rip = next;
	}
	if (kick_due) {
		/* The kick must still come, at once, before the next program uses this context. */
		program_default_regs(r);
		bool kicked;
		struct rf_event ev;
		int rc = watched_switch(e, c, &ev, &kicked);
		s->switches++;
		if (rc != 0 || ev.type != RF_EVENT_INTERRUPTED)
			findings_add(f, INV_KICK, "a kick outstanding at the program's end was not reported next",
			             "rc %d type %s", rc, type_name(ev.type));
	}
	return replace;
}
