/* SPDX-License-Identifier: MIT */
/* ringfence run: loads a static x86-64 ELF into a new address space, runs it in ring 3 and serves
 * its syscalls on the host; a fault ends it the way the matching signal would end a native run. */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cmd.h"
#include "ringfence.h"

#define FILE_MAX  (1ull << 30)  /* beyond any static program worth sandboxing; keeps malloc sane */
#define WRITE_MAX (1ull << 20)  /* per write(): short writes are legal, and each one bounds host time */
#define WRITE_IOV 16            /* regions one write() takes; a longer span is cut short (legal) */

int cmd_fail(int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* One write, so the line cannot interleave with the program's own stderr output. */
	dprintf(STDERR_FILENO, "ringfence: %s\n", msg);
	return status;
}

/* ---- loading ---- */

static int read_file(const char *path, unsigned char **out, size_t *size)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cmd_fail(RUN_EXIT_NOLOAD, "%s: %s", path, strerror(errno));
	struct stat st;
	int st_err = fstat(fd, &st) < 0 ? errno : 0;
	if (st_err || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > FILE_MAX) {
		close(fd);
		if (st_err)
			return cmd_fail(RUN_EXIT_NOLOAD, "%s: %s", path, strerror(st_err));
		if (!S_ISREG(st.st_mode))
			return cmd_fail(RUN_EXIT_NOLOAD, "%s: not a regular file", path);
		return cmd_fail(RUN_EXIT_NOLOAD, "%s: larger than %llu MiB", path, FILE_MAX >> 20);
	}
	size_t n = (size_t)st.st_size, got = 0;
	unsigned char *buf = malloc(n ? n : 1);
	if (!buf) {
		close(fd);
		return cmd_fail(RUN_EXIT_NOLOAD, "%s: out of memory reading it", path);
	}
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			/* Short means the file shrank under us: what is left is not the file we sized. */
			int e = r < 0 ? errno : EIO;
			close(fd);
			free(buf);
			return cmd_fail(RUN_EXIT_NOLOAD, "%s: %s", path, strerror(e));
		}
		got += (size_t)r;
	}
	close(fd);
	*out = buf;
	*size = n;
	return 0;
}

/* The user registers at the entry point, as Linux leaves them: everything zero but rip and rsp (a
 * non-zero rdx would be taken for an atexit function by glibc's _start). */
static int setup_entry(rf_context *c, const struct image *im, const struct elf_info *elf, char **argv)
{
	struct stack_aux aux[8];
	unsigned n = 0;
	if (elf->phdr_vaddr) {
		aux[n++] = (struct stack_aux){ AT_PHDR, elf->phdr_vaddr };
		aux[n++] = (struct stack_aux){ AT_PHENT, elf->phentsize };
		aux[n++] = (struct stack_aux){ AT_PHNUM, elf->phnum };
	}
	aux[n++] = (struct stack_aux){ AT_PAGESZ, RF_PAGE_SIZE };
	aux[n++] = (struct stack_aux){ AT_BASE, 0 };   /* no interpreter */
	aux[n++] = (struct stack_aux){ AT_FLAGS, 0 };
	aux[n++] = (struct stack_aux){ AT_ENTRY, elf->entry };
	aux[n++] = (struct stack_aux){ AT_SECURE, 0 };

	unsigned char random[16];
	if (getrandom(random, sizeof random, 0) != (ssize_t)sizeof random)
		return cmd_fail(RUN_EXIT_PLATFORM, "getrandom for AT_RANDOM: %s", strerror(errno));
	char *const envp[] = { NULL };   /* the program gets an empty environment */
	uint64_t rsp;
	const struct image_region *s = im->stack;
	if (stack_build(s->host, s->va, s->len, argv, envp, argv[0], aux, n, random, &rsp) < 0)
		return cmd_fail(RUN_EXIT_NOLOAD, "%s: argument list too long for a %llu MiB stack", argv[0],
		                (unsigned long long)(s->len >> 20));
	struct rf_regs *r = rf_context_regs(c);
	memset(r, 0, sizeof *r);
	r->rip = elf->entry;
	r->rsp = rsp;
	r->rflags = 0x202;   /* IF and the always-one bit, as after execve */
	return 0;
}

/* ---- syscalls ---- */

struct run {
	const char *prog;
	struct image im;
	rf_context *c;
	bool done;
	int status;
};

typedef void syscall_fn(struct run *r, struct rf_regs *g);

static void sys_write(struct run *r, struct rf_regs *g)
{
	unsigned fd = (unsigned)g->rdi;   /* an int in the kernel's prototype: upper bits are ignored */
	uint64_t buf = g->rsi, len = g->rdx;
	if (fd != STDOUT_FILENO && fd != STDERR_FILENO) {
		g->rax = (uint64_t)-EBADF;
		return;
	}
	/* As Linux's access_ok(): a range that leaves the user half fails whole, before any cap. */
	if (len > ELF_USER_END || buf > ELF_USER_END - len) {
		g->rax = (uint64_t)-EFAULT;
		return;
	}
	if (len > WRITE_MAX)
		len = WRITE_MAX;
	/* The whole buffer is checked before anything is written, so a bad pointer writes nothing. */
	struct iovec iov[WRITE_IOV];
	int n = 0;
	for (uint64_t done = 0; done < len && n < WRITE_IOV; n++) {
		uint64_t avail;
		unsigned char *h = image_span(&r->im, buf + done, RF_PROT_READ, &avail);
		if (!h) {
			g->rax = (uint64_t)-EFAULT;
			return;
		}
		uint64_t take = avail < len - done ? avail : len - done;
		iov[n] = (struct iovec){ h, take };
		done += take;
	}
	ssize_t w = n ? writev((int)fd, iov, n) : 0;
	if (w < 0 && errno == EPIPE) {
		/* A native program would die of SIGPIPE here; end the run the same way, as quietly. */
		r->done = true;
		r->status = RUN_EXIT_SIGNAL + SIGPIPE;
		return;
	}
	g->rax = w < 0 ? (uint64_t)-errno : (uint64_t)w;
}

/* exit and exit_group are one thing while a program has a single thread. */
static void sys_exit(struct run *r, struct rf_regs *g)
{
	r->done = true;
	r->status = (int)(g->rdi & 0xff);
}

static syscall_fn *const syscalls[] = {
	[1] = sys_write,
	[60] = sys_exit,
	[231] = sys_exit,
};

/* ---- the run loop ---- */

static int serve(struct run *r)
{
	for (;;) {
		struct rf_event ev;
		if (rf_switch(r->c, r->im.as, &ev) < 0)
			return cmd_fail(RUN_EXIT_PLATFORM, "%s", rf_last_error());
		switch (ev.type) {
		case RF_EVENT_SYSCALL: {
			struct rf_regs *g = rf_context_regs(r->c);
			uint64_t nr = g->rax;
			if (nr >= sizeof syscalls / sizeof syscalls[0] || !syscalls[nr])
				/* Signed, as Linux reads it: -1 is a plausible bad number, 2^64-1 is not. */
				return cmd_fail(RUN_EXIT_UNSUPPORTED, "unsupported syscall %lld at 0x%llx",
				                (long long)nr, (unsigned long long)ev.rip);
			syscalls[nr](r, g);
			if (r->done)
				return r->status;
			break;
		}
		case RF_EVENT_INTERRUPTED:
			break;   /* nothing here kicks; a spurious one just resumes */
		case RF_EVENT_PAGE_FAULT:
		case RF_EVENT_EXCEPTION:
			return fault_report(r->prog, &ev);
		default:
			return cmd_fail(RUN_EXIT_PLATFORM, "unknown event type %d at 0x%llx", (int)ev.type,
			                (unsigned long long)ev.rip);
		}
	}
}

int cmd_run(int argc, char **argv)
{
	if (argc < 1) {
		fprintf(stderr, "usage: ringfence run PROGRAM [ARGS...]\n");
		return 2;
	}
	const char *prog = argv[0];
	unsigned char *file;
	size_t size = 0;
	int st = read_file(prog, &file, &size);
	if (st)
		return st;
	/* Parsing before opening KVM: a bad program is a load error on any host, with or without KVM. */
	struct elf_info elf;
	char why[256];
	if (elf_parse(file, size, &elf, why, sizeof why) < 0) {
		free(file);
		return cmd_fail(RUN_EXIT_NOLOAD, "%s: %s", prog, why);
	}

	/* Output to a closed pipe must come back as EPIPE to hand to the program, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	rf_platform *p;
	/* A platform failure in the middle of a program prints how the vCPU got there. */
	struct rf_platform_options opts = { .exit_log_fd = 2 };
	if (rf_platform_create(&opts, &p) < 0) {
		free(file);
		return cmd_fail(RUN_EXIT_PLATFORM, "%s", rf_last_error());
	}
	struct run r = { .prog = prog };
	st = image_load(&r.im, p, prog, file, &elf);
	free(file);
	if (!st && rf_context_create(p, &r.c) < 0)
		st = cmd_fail(RUN_EXIT_PLATFORM, "%s", rf_last_error());
	if (!st)
		st = setup_entry(r.c, &r.im, &elf, argv);
	if (!st)
		st = serve(&r);

	if (r.c && rf_context_destroy(r.c) < 0)
		cmd_fail(0, "%s", rf_last_error());
	image_destroy(&r.im);
	if (rf_platform_destroy(p) < 0)
		cmd_fail(0, "%s", rf_last_error());
	return st;
}
