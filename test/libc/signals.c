/* SPDX-License-Identifier: MIT */
/* Acceptance program: synchronous signals. SIGSEGV with SA_SIGINFO (si_code, si_addr) left with
 * siglongjmp, SIGFPE from an integer divide by zero, raise() and kill(getpid()), sigprocmask. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf env;
static volatile sig_atomic_t count[65];
static volatile int got_sig, got_code;
static void *volatile got_addr;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	got_sig = sig;
	got_code = si->si_code;
	got_addr = si->si_addr;
	siglongjmp(env, 1);
}

static void on_signal(int sig)
{
	count[sig]++;
}

static volatile int masked_self, masked_other;

static void on_signal_masked(int sig)
{
	sigset_t now;
	sigprocmask(SIG_BLOCK, NULL, &now);
	masked_self = sigismember(&now, sig);
	masked_other = sigismember(&now, SIGUSR2);
	count[sig]++;
}

static const char *sig_name(int sig)
{
	switch (sig) {
	case SIGSEGV: return "SIGSEGV";
	case SIGBUS: return "SIGBUS";
	case SIGFPE: return "SIGFPE";
	case SIGUSR1: return "SIGUSR1";
	case SIGUSR2: return "SIGUSR2";
	case 0: return "no signal";
	default: return "another signal";
	}
}

static const char *code_name(int sig, int code)
{
	if (sig == SIGSEGV)
		return code == SEGV_MAPERR ? "SEGV_MAPERR" : code == SEGV_ACCERR ? "SEGV_ACCERR" : "other";
	if (sig == SIGFPE)
		return code == FPE_INTDIV ? "FPE_INTDIV" : code == FPE_INTOVF ? "FPE_INTOVF" : "other";
	return "other";
}

static void is_blocked(const char *what, int sig)
{
	sigset_t now;
	sigprocmask(SIG_BLOCK, NULL, &now);
	printf("%s: %s blocked: %s\n", what, sig_name(sig), sigismember(&now, sig) ? "yes" : "no");
}

static void fault_at(const char *what, volatile unsigned char *p, int write)
{
	got_sig = 0;
	if (sigsetjmp(env, 1) == 0) {
		if (write)
			*p = 1;
		else
			(void)*p;
		printf("%s: no fault\n", what);
		return;
	}
	printf("%s: %s %s, si_addr is the address touched: %s\n", what, sig_name(got_sig),
	       code_name(got_sig, got_code), got_addr == (void *)p ? "yes" : "no");
}

static void faults(void)
{
	struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO };
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGFPE, &sa, NULL);
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *m = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(m + page, (size_t)page);
	fault_at("read of an unmapped page", m + page + 123, 0);
	is_blocked("after siglongjmp out of the handler", SIGSEGV);
	fault_at("write of an unmapped page", m + page + 8, 1);
	fault_at("read of address 8", (volatile unsigned char *)(uintptr_t)8, 0);
	mprotect(m, (size_t)page, PROT_READ);
	fault_at("write of a read-only page", m + 77, 1);
	mprotect(m, (size_t)page, PROT_NONE);
	fault_at("read of a PROT_NONE page", m + 5, 0);
	mprotect(m, (size_t)page, PROT_READ | PROT_WRITE);
	fault_at("write after mprotect back to RW", m + 5, 1);
	fault_at("write of the program's own code", (volatile unsigned char *)(uintptr_t)&faults, 1);

	volatile int num = 7, den = 0;
	if (sigsetjmp(env, 1) == 0) {
		got_sig = 0;
		num = num / den;
		printf("divide by zero: no signal\n");
	} else {
		printf("divide by zero: %s %s\n", sig_name(got_sig), code_name(got_sig, got_code));
	}
	volatile int64_t big = INT64_MIN, minus1 = -1;
	if (sigsetjmp(env, 1) == 0) {
		big = big / minus1;
		printf("INT64_MIN / -1: no signal\n");
	} else {
		printf("INT64_MIN / -1: %s %s\n", sig_name(got_sig), code_name(got_sig, got_code));
	}
	munmap(m, (size_t)page);
}

static void sent(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	int r = raise(SIGUSR1);
	printf("raise(SIGUSR1): %d, handler ran %d time(s)\n", r, (int)count[SIGUSR1]);
	r = kill(getpid(), SIGUSR2);
	printf("kill(getpid(), SIGUSR2): %d, handler ran %d time(s)\n", r, (int)count[SIGUSR2]);
	printf("kill(getpid(), 0): %d\n", kill(getpid(), 0));

	sigset_t usr1, old;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &old);
	is_blocked("after SIG_BLOCK", SIGUSR1);
	raise(SIGUSR1);
	raise(SIGUSR1);
	sigset_t pending;
	sigpending(&pending);
	printf("blocked SIGUSR1 raised twice: handler ran %d time(s), pending: %s\n", (int)count[SIGUSR1],
	       sigismember(&pending, SIGUSR1) ? "yes" : "no");
	sigprocmask(SIG_SETMASK, &old, NULL);
	sigpending(&pending);
	printf("after unblocking: handler ran %d time(s) in all, pending: %s\n", (int)count[SIGUSR1],
	       sigismember(&pending, SIGUSR1) ? "yes" : "no");

	signal(SIGUSR2, SIG_IGN);
	raise(SIGUSR2);
	printf("ignored SIGUSR2: handler ran %d time(s) in all\n", (int)count[SIGUSR2]);

	/* A handler that blocks another signal while it runs (sa_mask) and sees its own blocked. */
	struct sigaction masked = { .sa_handler = on_signal_masked }, back;
	sigemptyset(&masked.sa_mask);
	sigaddset(&masked.sa_mask, SIGUSR2);
	sigaction(SIGUSR1, &masked, NULL);
	raise(SIGUSR1);
	printf("in a handler with sa_mask: own signal blocked: %s, SIGUSR2 blocked: %s\n", masked_self ? "yes" : "no",
	       masked_other ? "yes" : "no");
	is_blocked("after that handler returned", SIGUSR2);
	sigaction(SIGUSR1, NULL, &back);
	printf("sigaction reads back the handler: %s\n", back.sa_handler == on_signal_masked ? "yes" : "no");
	printf("SIGKILL cannot be caught: %s\n", sigaction(SIGKILL, &sa, NULL) < 0 && errno == EINVAL ? "EINVAL" : "it can");
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	faults();
	sent();
	return 0;
}
