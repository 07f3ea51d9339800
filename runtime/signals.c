/* SPDX-License-Identifier: MIT */
/* Signals: raising (from faults, kill, timers, the host), delivery as Linux does it on x86-64 (a
 * frame on the guest stack with siginfo, ucontext and the XSAVE image), rt_sigreturn, and death. */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"

/* The kernel's rt_sigframe for x86-64 (arch/x86/include/asm/sigframe.h): return address, the
 * kernel's ucontext (whose sigmask is 8 bytes, not glibc's 128), then siginfo. glibc's struct
 * sigcontext and siginfo_t have the kernel's layout on x86-64. */
struct k_ucontext {
	uint64_t flags, link;
	struct { uint64_t sp; int32_t flags, pad; uint64_t size; } stack;
	struct sigcontext mc;
	uint64_t sigmask;
};
struct k_sigframe {
	uint64_t pretcode;
	struct k_ucontext uc;
	siginfo_t info;
};
_Static_assert(sizeof(struct k_ucontext) == 304 && sizeof(struct k_sigframe) == 440,
               "the x86-64 signal frame of Linux's ABI");

#define UC_FP_XSTATE         1
#define UC_SIGCONTEXT_SS     2
#define UC_STRICT_RESTORE_SS 4
#define FX_SW_BYTES          464   /* software-reserved bytes of the FXSAVE area (ABI) */
#define FX_MXCSR             24
#define XSAVE_HDR            512
#define USER_CS              0x33
#define USER_SS              0x2b
/* RFLAGS bits a handler's return may set (Linux's FIX_EFLAGS). */
#define FIX_EFLAGS           0x50dd5u
#define SA_RESTORER          0x04000000u   /* the kernel's flag, not in glibc's headers */

static const char *const names[] = {
	[SIGHUP] = "SIGHUP", [SIGINT] = "SIGINT", [SIGQUIT] = "SIGQUIT", [SIGILL] = "SIGILL",
	[SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT", [SIGBUS] = "SIGBUS", [SIGFPE] = "SIGFPE",
	[SIGKILL] = "SIGKILL", [SIGUSR1] = "SIGUSR1", [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2",
	[SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM", [SIGTERM] = "SIGTERM", [SIGSTKFLT] = "SIGSTKFLT",
	[SIGCHLD] = "SIGCHLD", [SIGCONT] = "SIGCONT", [SIGSTOP] = "SIGSTOP", [SIGTSTP] = "SIGTSTP",
	[SIGTTIN] = "SIGTTIN", [SIGTTOU] = "SIGTTOU", [SIGURG] = "SIGURG", [SIGXCPU] = "SIGXCPU",
	[SIGXFSZ] = "SIGXFSZ", [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF", [SIGWINCH] = "SIGWINCH",
	[SIGIO] = "SIGIO", [SIGPWR] = "SIGPWR", [SIGSYS] = "SIGSYS",
};

const char *signal_name(int sig)
{
	static char buf[24];
	if (sig > 0 && sig < (int)(sizeof names / sizeof names[0]) && names[sig])
		return names[sig];
	snprintf(buf, sizeof buf, "SIGRT%d", sig - 32);
	return buf;
}

/* No job control and no children: stop signals are ignored like the "ignore" class. */
static bool default_ignores(int sig)
{
	return sig == SIGCHLD || sig == SIGCONT || sig == SIGURG || sig == SIGWINCH || sig == SIGSTOP ||
	       sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

static bool ignored(const struct rt_thread *t, int sig)
{
	uint64_t h = t->proc->act[sig].handler;
	return h == (uint64_t)(uintptr_t)SIG_IGN || (h == (uint64_t)(uintptr_t)SIG_DFL && default_ignores(sig));
}

void signal_raise(struct rt_thread *t, int sig, int code, uint64_t addr, int pid)
{
	if (sig < 1 || sig > RT_NSIG)
		return;
	/* Blocked signals are kept even if ignored now: the action may change before unblocking. */
	if (ignored(t, sig) && !(t->mask & sigbit(sig)))
		return;
	if (!(t->pending & sigbit(sig)))
		t->info[sig] = (typeof(t->info[sig])){ sig, code, addr, pid };
	t->pending |= sigbit(sig);
}

void signal_force(struct rt_thread *t, int sig, int code, uint64_t addr)
{
	/* As Linux's force_sig: a fault the program blocks or ignores kills it. */
	if ((t->mask & sigbit(sig)) || t->proc->act[sig].handler == (uint64_t)(uintptr_t)SIG_IGN) {
		t->proc->act[sig].handler = (uint64_t)(uintptr_t)SIG_DFL;
		t->mask &= ~sigbit(sig);
	}
	t->info[sig] = (typeof(t->info[sig])){ sig, code, addr, 0 };
	t->pending |= sigbit(sig);
}

void signal_collect(struct rt_thread *t)
{
	uint64_t raised = waker_take(t->proc);
	for (int sig = 1; raised; sig++, raised >>= 1)
		if (raised & 1)
			signal_raise(t, sig, sig == SIGALRM ? SI_KERNEL : SI_USER, 0, sig == SIGALRM ? 0 : t->proc->ppid);
}

bool signal_interrupts(struct rt_thread *t)
{
	uint64_t live = t->pending & ~t->mask;
	for (int sig = 1; live; sig++, live >>= 1)
		if ((live & 1) && !ignored(t, sig))
			return true;
	return false;
}

int signal_death(struct rt_thread *t, int sig)
{
	struct rt_proc *p = t->proc;
	const struct rf_regs *r = rf_context_regs(t->c);
	/* A closed pipe ends a program quietly, as shells report it. */
	if (sig != SIGPIPE) {
		if (t->fault_desc[0])
			rt_fail(0, "%s: killed by %s: %s", p->exe, signal_name(sig), t->fault_desc);
		else
			rt_fail(0, "%s: killed by %s at rip 0x%llx", p->exe, signal_name(sig), (unsigned long long)r->rip);
	}
	p->exited = true;
	p->status = RT_EXIT_SIGNAL + sig;
	return p->status;
}

static void fpu_init_image(unsigned char *img, size_t size)
{
	memset(img, 0, size);
	uint16_t fcw = 0x37f;
	uint32_t mxcsr = 0x1f80;
	memcpy(img, &fcw, sizeof fcw);
	memcpy(img + FX_MXCSR, &mxcsr, sizeof mxcsr);
}

/* Builds the frame for sig and points the registers at the handler; false if the frame could not be
 * written (then the program dies of SIGSEGV, as Linux's force_sigsegv). */
static bool setup_frame(struct rt_thread *t, int sig, const struct rt_sigaction *act, uint64_t saved_mask)
{
	struct rf_regs *r = rf_context_regs(t->c);
	unsigned char *fpu = rf_context_fpu(t->c);
	struct rf_platform_info pi;
	rf_platform_info(t->proc->p, &pi);
	if (!fpu)
		return false;
	uint64_t sp = r->rsp - 128;   /* the red zone stays the interrupted code's */
	bool on_alt = t->altstack_size && r->rsp - t->altstack_sp < t->altstack_size;
	if ((act->flags & SA_ONSTACK) && t->altstack_size && !on_alt && !(t->altstack_flags & SS_DISABLE))
		sp = t->altstack_sp + t->altstack_size;
	uint64_t fp_va = (sp - pi.fpu_size - 4) & ~63ull;
	uint64_t frame_va = ((fp_va - sizeof(struct k_sigframe)) & ~15ull) - 8;

	struct _fpx_sw_bytes sw = { .magic1 = FP_XSTATE_MAGIC1, .extended_size = (uint32_t)pi.fpu_size + 4,
	                            .xstate_bv = pi.xcr0, .xstate_size = (uint32_t)pi.fpu_size };
	memcpy(fpu + FX_SW_BYTES, &sw, sizeof sw);
	uint32_t magic2 = FP_XSTATE_MAGIC2;

	struct k_sigframe f;
	memset(&f, 0, sizeof f);
	f.pretcode = act->flags & SA_RESTORER ? act->restorer : 0;
	f.uc.flags = UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
	f.uc.stack.sp = t->altstack_sp;
	f.uc.stack.size = t->altstack_size;
	f.uc.stack.flags = t->altstack_size ? (on_alt ? SS_ONSTACK : 0) : SS_DISABLE;
	struct sigcontext *mc = &f.uc.mc;
	mc->r8 = r->r8, mc->r9 = r->r9, mc->r10 = r->r10, mc->r11 = r->r11;
	mc->r12 = r->r12, mc->r13 = r->r13, mc->r14 = r->r14, mc->r15 = r->r15;
	mc->rdi = r->rdi, mc->rsi = r->rsi, mc->rbp = r->rbp, mc->rbx = r->rbx;
	mc->rdx = r->rdx, mc->rax = r->rax, mc->rcx = r->rcx, mc->rsp = r->rsp;
	mc->rip = r->rip, mc->eflags = r->rflags;
	mc->cs = USER_CS, mc->__pad0 = USER_SS;   /* glibc calls the kernel's ss field __pad0 */
	mc->err = t->fault_err, mc->trapno = t->fault_trapno, mc->cr2 = t->fault_cr2;
	mc->oldmask = saved_mask;
	mc->fpstate = (struct _fpstate *)(uintptr_t)fp_va;
	f.uc.sigmask = saved_mask;
	f.info.si_signo = sig;
	f.info.si_code = t->info[sig].code;
	if (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP)
		f.info.si_addr = (void *)(uintptr_t)t->info[sig].addr;
	else {
		f.info.si_pid = t->info[sig].pid;
		f.info.si_uid = getuid();
	}
	struct rt_mem *m = &t->proc->mem;
	if (mem_copy_out(m, fp_va, fpu, pi.fpu_size) < 0 || mem_copy_out(m, fp_va + pi.fpu_size, &magic2, 4) < 0 ||
	    mem_copy_out(m, frame_va, &f, sizeof f) < 0)
		return false;

	fpu_init_image(fpu, pi.fpu_size);   /* handlers start with a clean FPU, as on Linux */
	r->rdi = (uint64_t)sig;
	r->rsi = frame_va + offsetof(struct k_sigframe, info);
	r->rdx = frame_va + offsetof(struct k_sigframe, uc);
	r->rax = 0;
	r->rsp = frame_va;
	r->rip = act->handler;
	r->rflags &= ~(uint64_t)(0x400 | 0x100 | 0x10000);   /* DF, TF, RF */
	return true;
}

/* The interrupted syscall's fate once a handler runs (Linux's ERESTARTSYS handling). */
static void settle_restart(struct rt_thread *t, const struct rt_sigaction *act)
{
	if (!t->restart_nr)
		return;
	struct rf_regs *r = rf_context_regs(t->c);
	if (act && !(act->flags & SA_RESTART)) {
		r->rax = (uint64_t)-EINTR;
	} else {
		r->rax = t->restart_nr;   /* back onto the syscall instruction, to make it again */
		r->rip -= 2;
	}
	t->restart_nr = 0;
}

static int next_signal(const struct rt_thread *t)
{
	uint64_t live = t->pending & ~t->mask;
	/* Synchronous faults first, as Linux's dequeue does. */
	static const int sync[] = { SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE, SIGSYS };
	for (unsigned i = 0; i < sizeof sync / sizeof sync[0]; i++)
		if (live & sigbit(sync[i]))
			return sync[i];
	return live ? __builtin_ctzll(live) + 1 : 0;
}

void signal_deliver(struct rt_thread *t)
{
	signal_collect(t);
	int sig;
	while (!t->proc->exited && (sig = next_signal(t))) {
		t->pending &= ~sigbit(sig);
		struct rt_sigaction *act = &t->proc->act[sig];
		if (ignored(t, sig))
			continue;
		if (act->handler == (uint64_t)(uintptr_t)SIG_DFL) {
			signal_death(t, sig);
			return;
		}
		t->proc->stats.signals++;
		settle_restart(t, act);
		uint64_t saved = t->has_saved_mask ? t->saved_mask : t->mask;
		t->has_saved_mask = false;
		if (!setup_frame(t, sig, act, saved)) {
			t->fault_desc[0] = 0;
			snprintf(t->fault_desc, sizeof t->fault_desc, "no room for the %s frame on the stack at 0x%llx",
			         signal_name(sig), (unsigned long long)rf_context_regs(t->c)->rsp);
			signal_death(t, SIGSEGV);
			return;
		}
		t->fault_desc[0] = 0;
		t->mask |= act->mask | (act->flags & SA_NODEFER ? 0 : sigbit(sig));
		t->mask &= ~(sigbit(SIGKILL) | sigbit(SIGSTOP));
		if (act->flags & SA_RESETHAND)
			act->handler = (uint64_t)(uintptr_t)SIG_DFL;
	}
	settle_restart(t, NULL);
	if (t->has_saved_mask) {
		t->mask = t->saved_mask;
		t->has_saved_mask = false;
	}
}

long sys_rt_sigreturn(struct rt_thread *t, const uint64_t a[6])
{
	(void)a;
	struct rf_regs *r = rf_context_regs(t->c);
	struct k_sigframe f;
	uint64_t frame_va = r->rsp - 8;   /* the handler's ret popped pretcode */
	if (mem_copy_in(&t->proc->mem, &f, frame_va, sizeof f) < 0) {
		signal_force(t, SIGSEGV, SI_KERNEL, 0);
		return RT_NORETURN;
	}
	const struct sigcontext *mc = &f.uc.mc;
	unsigned char *fpu = rf_context_fpu(t->c);
	struct rf_platform_info pi;
	rf_platform_info(t->proc->p, &pi);
	if (!fpu) {
		signal_force(t, SIGSEGV, SI_KERNEL, 0);
		return RT_NORETURN;
	}
	if (mc->fpstate) {
		if (mem_copy_in(&t->proc->mem, fpu, (uint64_t)(uintptr_t)mc->fpstate, pi.fpu_size) < 0) {
			signal_force(t, SIGSEGV, SI_KERNEL, 0);
			return RT_NORETURN;
		}
		/* Only what XRSTOR takes from user memory without faulting: known MXCSR bits, enabled
		 * components, a standard-format header. */
		uint32_t mxcsr;
		memcpy(&mxcsr, fpu + FX_MXCSR, 4);
		mxcsr &= 0xffbf;
		memcpy(fpu + FX_MXCSR, &mxcsr, 4);
		uint64_t bv;
		memcpy(&bv, fpu + XSAVE_HDR, 8);
		bv &= pi.xcr0;
		memcpy(fpu + XSAVE_HDR, &bv, 8);
		memset(fpu + XSAVE_HDR + 8, 0, 56);
	} else {
		fpu_init_image(fpu, pi.fpu_size);
	}
	r->r8 = mc->r8, r->r9 = mc->r9, r->r10 = mc->r10, r->r11 = mc->r11;
	r->r12 = mc->r12, r->r13 = mc->r13, r->r14 = mc->r14, r->r15 = mc->r15;
	r->rdi = mc->rdi, r->rsi = mc->rsi, r->rbp = mc->rbp, r->rbx = mc->rbx;
	r->rdx = mc->rdx, r->rax = mc->rax, r->rcx = mc->rcx, r->rsp = mc->rsp;
	r->rip = mc->rip;
	r->rflags = (r->rflags & ~(uint64_t)FIX_EFLAGS) | (mc->eflags & FIX_EFLAGS);
	t->mask = f.uc.sigmask & ~(sigbit(SIGKILL) | sigbit(SIGSTOP));
	return RT_NORETURN;
}
