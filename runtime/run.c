/* SPDX-License-Identifier: MIT */
/* rt_run: one program from load to exit. The loop switches into the guest, serves what comes back
 * (a syscall, a fault, a kick) and delivers pending signals before every re-entry. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"

int rt_fail(int status, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* One write, so the line cannot interleave with the program's own stderr output. */
	dprintf(STDERR_FILENO, "ringfence: %s\n", msg);
	return status;
}

static int serve(struct rt_thread *t)
{
	struct rt_proc *p = t->proc;
	for (;;) {
		signal_deliver(t);
		if (p->exited)
			return p->status;
		struct rf_event ev;
		uint64_t t0 = rt_now_ns();
		int e = rf_switch(t->c, p->mem.as, &ev);
		uint64_t t1 = rt_now_ns();
		p->stats.guest_ns += t1 - t0;
		p->stats.switches++;
		if (e < 0)
			return rt_fail(RT_EXIT_PLATFORM, "%s", rf_last_error());
		switch (ev.type) {
		case RF_EVENT_SYSCALL:
			syscall_dispatch(t);
			break;
		case RF_EVENT_PAGE_FAULT:
		case RF_EVENT_EXCEPTION:
			fault_to_signal(t, &ev);
			break;
		case RF_EVENT_INTERRUPTED:
			p->stats.kicks++;   /* a timer or a host signal: delivered at the top */
			break;
		default:
			return rt_fail(RT_EXIT_PLATFORM, "unknown event type %d at 0x%llx", (int)ev.type,
			               (unsigned long long)ev.rip);
		}
		p->stats.host_ns += rt_now_ns() - t1;
	}
}

/* The path the program sees for itself: its host path seen from the root, if it is below it. */
static void exe_path(struct rt_proc *p, const char *prog)
{
	char *real = realpath(prog, NULL);
	const char *rp = p->fs.root_path;
	size_t n = strlen(rp);
	const char *base = strrchr(prog, '/') ? strrchr(prog, '/') + 1 : prog;
	if (real && (!n || (!strncmp(real, rp, n) && real[n] == '/')))
		snprintf(p->exe_guest, sizeof p->exe_guest, "%s", real + n);
	else
		/* Outside the root the program has no path: an absolute name (glibc insists on one)
		 * that says nothing of the host's layout. */
		snprintf(p->exe_guest, sizeof p->exe_guest, "/%s", base);
	free(real);
}

int rt_run(const struct rt_config *cfg)
{
	const char *prog = cfg->argv[0];
	/* A bad program is a load error on any host, decided before KVM is opened. */
	int st = loader_check(prog, cfg->memory ? cfg->memory : RT_MEMORY_DEFAULT);
	if (st)
		return st;
	static struct rt_proc proc;   /* large (tables): not on the stack */
	static struct rt_thread thread;
	struct rt_proc *p = &proc;
	struct rt_thread *t = &thread;
	memset(p, 0, sizeof *p);
	memset(t, 0, sizeof *t);
	t->proc = p;
	p->exe = prog;
	p->pid = getpid();
	p->ppid = getppid();
	p->trace = cfg->trace;
	snprintf(p->comm, sizeof p->comm, "%s", strrchr(prog, '/') ? strrchr(prog, '/') + 1 : prog);
	if ((st = fs_init(&p->fs, cfg->root, cfg->rw, cfg->nrw)))
		goto out_fs;
	exe_path(p, prog);
	if (files_init_stdio(&p->files) < 0) {
		st = rt_fail(RT_EXIT_PLATFORM, "out of memory");
		goto out_fs;
	}
	struct rf_platform_options defaults = { .exit_log_fd = 2 };
	if (rf_platform_create(cfg->platform ? cfg->platform : &defaults, &p->p) < 0) {
		st = rt_fail(RT_EXIT_PLATFORM, "%s", rf_last_error());
		goto out_files;
	}
	if ((st = mem_init(&p->mem, p->p, cfg->memory ? cfg->memory : RT_MEMORY_DEFAULT)))
		goto out_platform;
	if (rf_context_create(p->p, &t->c) < 0) {
		st = rt_fail(RT_EXIT_PLATFORM, "%s", rf_last_error());
		goto out_mem;
	}
	if ((st = loader_load(t, prog, cfg->argv, cfg->envp)))
		goto out_context;
	if (waker_start(p, t) < 0) {
		st = rt_fail(RT_EXIT_PLATFORM, "the timer thread: %s", strerror(errno));
		goto out_context;
	}
	/* The filter covers both threads: the waker exists, and nothing is left to open or create. */
	if (!(st = cfg->no_seccomp ? 0 : rt_seccomp_install()))
		st = serve(t);
	if (cfg->stats)
		stats_print(t);
	waker_stop(p);
out_context:
	if (rf_context_destroy(t->c) < 0)
		rt_fail(0, "%s", rf_last_error());
out_mem:
	mem_destroy(&p->mem);
out_platform:
	if (rf_platform_destroy(p->p) < 0)
		rt_fail(0, "%s", rf_last_error());
out_files:
	files_destroy(&p->files);
out_fs:
	fs_destroy(&p->fs);
	return st;
}
