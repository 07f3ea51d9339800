/* SPDX-License-Identifier: MIT */
/* The syscall table (names, handlers, argument kinds for --trace), dispatch, and --stats. A number
 * not in the table gets ENOSYS, as from a kernel that lacks it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

#include "runtime.h"

/* Argument kinds: f descriptor, d int, u unsigned, x hex, p pointer, s path, o flags (hex), m mode. */
#define S(nr, fn, args) [SYS_##nr] = { #nr, sys_##fn, args }
const struct syscall_desc syscall_table[] = {
	S(read, read, "fpu"), S(write, write, "fpu"), S(open, open, "som"), S(close, close, "f"),
	S(stat, stat, "sp"), S(fstat, fstat, "fp"), S(lstat, lstat, "sp"), S(lseek, lseek, "fdd"),
	S(mmap, mmap, "pxxxfx"), S(mprotect, mprotect, "pxx"), S(munmap, munmap, "px"), S(brk, brk, "p"),
	S(rt_sigaction, rt_sigaction, "dppu"), S(rt_sigprocmask, rt_sigprocmask, "dppu"),
	S(rt_sigreturn, rt_sigreturn, ""), S(ioctl, ioctl, "fxp"), S(pread64, pread64, "fpud"),
	S(pwrite64, pwrite64, "fpud"), S(readv, readv, "fpd"), S(writev, writev, "fpd"),
	S(access, access, "sd"), S(pipe, pipe, "p"), S(sched_yield, sched_yield, ""),
	S(mremap, mremap, "pxxxp"), S(msync, msync, "pxx"), S(mincore, mincore, "pxp"),
	S(madvise, madvise, "pxd"), S(dup, dup, "f"), S(dup2, dup2, "ff"), S(pause, pause, ""),
	S(nanosleep, nanosleep, "pp"), S(getitimer, getitimer, "dp"), S(alarm, alarm, "u"),
	S(setitimer, setitimer, "dpp"), S(getpid, getpid, ""), S(sendfile, enosys, "ffpu"),
	S(exit, exit, "d"), S(wait4, wait4, "dpdp"), S(kill, kill, "dd"), S(uname, uname, "p"),
	S(fcntl, fcntl, "fdx"), S(fsync, fsync, "f"), S(fdatasync, fsync, "f"),
	S(ftruncate, ftruncate, "fd"), S(getcwd, getcwd, "pu"), S(chdir, chdir, "s"),
	S(fchdir, fchdir, "f"), S(rename, rename, "ss"), S(mkdir, mkdir, "sm"), S(rmdir, rmdir, "s"),
	S(creat, creat, "sm"), S(unlink, unlink, "s"), S(symlink, symlink, "ss"),
	S(readlink, readlink, "spu"), S(chmod, chmod, "sm"), S(fchmod, fchmod, "fm"),
	S(umask, umask, "m"), S(gettimeofday, gettimeofday, "pp"), S(getrlimit, getrlimit, "dp"),
	S(getrusage, getrusage, "dp"), S(sysinfo, sysinfo, "p"), S(times, times, "p"),
	S(getuid, getuid, ""), S(getgid, getgid, ""), S(setuid, setid, "d"), S(setgid, setid, "d"),
	S(geteuid, getuid, ""), S(getegid, getgid, ""), S(setpgid, setpgid, "dd"),
	S(getppid, getppid, ""), S(getpgrp, getpgrp, ""), S(setsid, setid, ""),
	S(getgroups, getgroups, "dp"), S(getsid, getsid, "d"), S(rt_sigpending, rt_sigpending, "pu"),
	S(rt_sigsuspend, rt_sigsuspend, "pu"), S(sigaltstack, sigaltstack, "pp"),
	S(statfs, statfs, "sp"), S(fstatfs, fstatfs, "fp"), S(prctl, prctl, "dxxxx"),
	S(arch_prctl, arch_prctl, "xx"), S(setrlimit, setrlimit, "dp"), S(gettid, gettid, ""),
	S(tkill, tkill, "dd"), S(time, time, "p"), S(futex, futex, "pdupp"),
	S(sched_getaffinity, sched_getaffinity, "dup"), S(getdents64, getdents64, "fpu"),
	S(set_tid_address, set_tid_address, "p"), S(clock_gettime, clock_gettime, "dp"),
	S(clock_getres, clock_getres, "dp"), S(clock_nanosleep, clock_nanosleep, "ddpp"),
	S(exit_group, exit_group, "d"), S(tgkill, tgkill, "ddd"), S(openat, openat, "fsom"),
	S(mkdirat, mkdirat, "fsm"), S(newfstatat, newfstatat, "fspx"), S(unlinkat, unlinkat, "fsx"),
	S(renameat, renameat, "fsfs"), S(symlinkat, symlinkat, "sfs"), S(readlinkat, readlinkat, "fspu"),
	S(fchmodat, fchmodat, "fsm"), S(faccessat, faccessat, "fsd"), S(utimensat, utimensat, "fspx"),
	S(set_robust_list, set_robust_list, "pu"), S(dup3, dup3, "ffx"), S(pipe2, pipe2, "px"),
	S(prlimit64, prlimit64, "ddpp"), S(getcpu, getcpu, "ppp"), S(renameat2, renameat2, "fsfsx"),
	S(getrandom, getrandom, "pux"), S(statx, statx, "fsxxp"), S(close_range, close_range, "ffx"),
	S(faccessat2, faccessat2, "fsdx"), S(rseq, enosys, "pudx"), S(poll, poll, "pud"),
	S(ppoll, ppoll, "ppppu"), S(fork, enosys, ""), S(vfork, enosys, ""), S(clone, enosys, "xpppx"),
	S(clone3, enosys, "pu"), S(execve, enosys, "spp"),
};
#undef S
const unsigned syscall_count = sizeof syscall_table / sizeof syscall_table[0];

static void trace_arg(struct rt_thread *t, FILE *f, char kind, uint64_t v)
{
	char s[96];
	switch (kind) {
	case 'f':
		if ((int)v == AT_FDCWD)
			fputs("AT_FDCWD", f);
		else
			fprintf(f, "%d", (int)v);
		return;
	case 'd': fprintf(f, "%lld", (long long)(int64_t)v); return;
	case 'u': fprintf(f, "%llu", (unsigned long long)v); return;
	case 'm': fprintf(f, "0%llo", (unsigned long long)v); return;
	case 's':
		if (mem_str_in(&t->proc->mem, s, v, sizeof s) >= 0) {
			fputc('"', f);
			for (const char *c = s; *c; c++)
				fprintf(f, *c >= 0x20 && *c < 0x7f && *c != '"' ? "%c" : "\\x%02x", (unsigned char)*c);
			fputc('"', f);
			return;
		}
		/* a bad or long pointer is shown as a pointer */
		__attribute__((fallthrough));
	default:
		fprintf(f, v ? "0x%llx" : "NULL", (unsigned long long)v);
	}
}

static void trace(struct rt_thread *t, uint64_t nr, const uint64_t a[6], long ret, bool hex)
{
	FILE *f = t->proc->trace;
	const struct syscall_desc *d = nr < syscall_count && syscall_table[nr].fn ? &syscall_table[nr] : NULL;
	if (d)
		fprintf(f, "%s(", d->name);
	else
		fprintf(f, "syscall_%llu(", (unsigned long long)nr);
	const char *args = d ? d->args : "xxxxxx";
	for (unsigned i = 0; args[i] && i < 6; i++) {
		if (i)
			fputs(", ", f);
		trace_arg(t, f, args[i], a[i]);
	}
	fputs(")", f);
	if (ret == RT_NORETURN)
		fputs(" = ?\n", f);
	else if (ret < 0 && ret >= -4095)
		fprintf(f, " = -1 %s (%s)\n", strerrorname_np((int)-ret) ? strerrorname_np((int)-ret) : "E?",
		        strerror((int)-ret));
	else
		fprintf(f, hex ? " = 0x%lx\n" : " = %ld\n", ret);
	fflush(f);
}

void syscall_dispatch(struct rt_thread *t)
{
	struct rf_regs *r = rf_context_regs(t->c);
	/* Linux reads the number as a 32-bit int: the upper half of rax does not count. */
	uint64_t nr = (uint32_t)r->rax;
	/* The kernel's argument registers: r10 stands for rcx, which SYSCALL overwrote. */
	const uint64_t a[6] = { r->rdi, r->rsi, r->rdx, r->r10, r->r8, r->r9 };
	const struct syscall_desc *d = nr < syscall_count && syscall_table[nr].fn ? &syscall_table[nr] : NULL;
	long ret = d ? d->fn(t, a) : -ENOSYS;
	t->proc->stats.calls[nr < 511 ? nr : 511]++;
	if (ret == RT_RESTART) {
		/* Settled when the signal is delivered: -EINTR, or the same call again (SA_RESTART). */
		t->restart_nr = nr;
		ret = -EINTR;
	}
	if (t->proc->trace)
		trace(t, nr, a, ret, nr == SYS_mmap || nr == SYS_brk || nr == SYS_mremap);
	if (ret != RT_NORETURN)
		r->rax = (uint64_t)ret;
}

void stats_print(struct rt_thread *t)
{
	struct rt_proc *p = t->proc;
	const struct rt_stats *s = &p->stats;
	uint64_t total = 0;
	for (unsigned i = 0; i < 512; i++)
		total += s->calls[i];
	fprintf(stderr, "ringfence: stats: %llu syscalls, %llu faults, %llu signals delivered, %llu switches\n",
	        (unsigned long long)total, (unsigned long long)s->faults, (unsigned long long)s->signals,
	        (unsigned long long)s->switches);
	fprintf(stderr, "ringfence: stats: time in the guest %.3f ms, in the host %.3f ms; guest memory peak %llu KiB\n",
	        (double)s->guest_ns / 1e6, (double)s->host_ns / 1e6,
	        (unsigned long long)(p->mem.mapped_peak * RT_PAGE >> 10));
	for (unsigned i = 0; i < 512; i++)
		if (s->calls[i]) {
			const char *name = i < syscall_count && syscall_table[i].name ? syscall_table[i].name : NULL;
			if (name)
				fprintf(stderr, "ringfence: stats:   %-18s %llu\n", name, (unsigned long long)s->calls[i]);
			else
				fprintf(stderr, "ringfence: stats:   syscall %-10u %llu\n", i, (unsigned long long)s->calls[i]);
		}
	struct rf_platform_info pi;
	rf_platform_info(p->p, &pi);
	fprintf(stderr, "ringfence: stats: platform: %u vCPUs, %llu MMU flushes touching %llu table pages\n",
	        pi.vcpus_created, (unsigned long long)pi.mmu_flushes, (unsigned long long)pi.mmu_pages_touched);
	for (unsigned v = 0; v < pi.vcpus_created; v++) {
		struct rf_vcpu_stats vs;
		if (rf_vcpu_stats(p->p, v, &vs) < 0)
			continue;
		fprintf(stderr, "ringfence: stats: vcpu %u: exits io %llu intr %llu other %llu; kicks %llu "
		        "(taken clean %llu, injected %llu); syscalls ring0 %llu via fault %llu\n", v,
		        (unsigned long long)vs.exits_io, (unsigned long long)vs.exits_intr,
		        (unsigned long long)vs.exits_other, (unsigned long long)vs.kicks_requested,
		        (unsigned long long)vs.kicks_taken_clean, (unsigned long long)vs.kicks_injected,
		        (unsigned long long)vs.syscalls_ring0, (unsigned long long)vs.syscalls_fault);
	}
}
