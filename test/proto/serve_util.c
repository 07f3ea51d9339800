/* SPDX-License-Identifier: MIT */
/* `ringfence serve` as a child process for the control plane's tests, and their guest code. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "serve_util.h"
#include "tap.h"

extern char **environ;

const uint8_t guest_code[] = {
	0xb8, 0x27, 0x00, 0x00, 0x00,                                     /* 00: mov $39,%eax */
	0x0f, 0x05,                                                       /* 05: syscall */
	0x89, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00,                         /* 07: mov %eax,0x0 */
	0x0f, 0x0b,                                                       /* 0e: ud2 */
	0xc7, 0x04, 0x25, 0x00, 0x10, 0x40, 0x00, 0x01, 0x00, 0x00, 0x00, /* 10: movl $1,0x401000 */
	0xeb, 0xfe,                                                       /* 1b: jmp . */
	0x90, 0x90, 0x90,                                                 /* 1d: nop (pad) */
	0x8b, 0x04, 0x25, 0x00, 0x00, 0x50, 0x00,                         /* 20: mov 0x500000,%eax */
	0x0f, 0x05,                                                       /* 27: syscall */
	0xeb, 0xfe,                                                       /* 29: jmp . */
};
const size_t guest_code_size = sizeof guest_code;

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void kvm_or_skip(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		char why[128];
		snprintf(why, sizeof why, "no KVM: cannot open /dev/kvm: %s", strerror(errno));
		tap_skip_all(why);
	}
	close(fd);
}

/* The child's side of serve_start: never returns. */
static void serve_exec(const struct serve_proc *sp, const char *ringfence, const struct serve_opts *o,
                       pid_t parent)
{
	const char *const *args = o->args, *const *env = o->env;
	const char *argv[16] = { ringfence, "serve" };
	/* A test that dies (a sanitizer abort, a failed assertion) takes its server with it: a server
	 * left holding the test's stdout would keep meson waiting until its timeout. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(126);
	int n = 2;
	if (!o->no_socket) {
		argv[n++] = "--socket";
		argv[n++] = sp->sock;
	}
	for (int i = 0; args && args[i] && n < 15; i++)
		argv[n++] = args[i];
	size_t ne = 0, nx = 0;
	while (environ[ne])
		ne++;
	while (env && env[nx])
		nx++;
	char **envp = calloc(ne + nx + 1, sizeof *envp);
	if (!envp)
		_exit(126);
	memcpy(envp, environ, ne * sizeof *envp);
	for (size_t i = 0; i < nx; i++)
		envp[ne + i] = (char *)env[i];
	if (o->capture_err) {
		int fd = open(sp->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || dup2(fd, 2) < 0)
			_exit(126);
	}
	if (o->stdio > 0 && (dup2(o->stdio, 0) < 0 || dup2(o->stdio, 1) < 0))
		_exit(126);
	for (int i = 0; i < 2; i++)
		if (o->keep[i] > 0)
			fcntl(o->keep[i], F_SETFD, 0);
	execve(ringfence, (char **)argv, envp);
	_exit(127);
}

int serve_start(struct serve_proc *sp, const char *ringfence, const struct serve_opts *opts)
{
	static const struct serve_opts plain = { .keep = { -1, -1 } };
	memset(sp, 0, sizeof *sp);
	sp->pid = -1;
	sp->pidfd = -1;
	/* /dev/shm first: in the test VM /tmp is 9p, where no socket can be bound; /dev/shm is tmpfs. */
	snprintf(sp->dir, sizeof sp->dir, "/dev/shm/rf-proto-XXXXXX");
	if (!mkdtemp(sp->dir)) {
		snprintf(sp->dir, sizeof sp->dir, "/tmp/rf-proto-XXXXXX");
		if (!mkdtemp(sp->dir))
			return -errno;
	}
	snprintf(sp->sock, sizeof sp->sock, "%s/sock", sp->dir);
	snprintf(sp->err_path, sizeof sp->err_path, "%s/stderr", sp->dir);
	/* Watched before the server starts, so its bind() cannot be missed. */
	sp->inotify = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (sp->inotify < 0 || inotify_add_watch(sp->inotify, sp->dir, IN_CREATE) < 0)
		return -errno;
	fflush(stdout);
	pid_t parent = getpid();
	sp->pid = fork();
	if (sp->pid < 0)
		return -errno;
	if (sp->pid == 0)
		serve_exec(sp, ringfence, opts ? opts : &plain, parent);
	sp->pidfd = (int)syscall(SYS_pidfd_open, sp->pid, 0);
	return 0;
}

static bool reap(struct serve_proc *sp, int flags)
{
	if (sp->reaped)
		return true;
	pid_t r = waitpid(sp->pid, &sp->status, flags);
	if (r == sp->pid)
		sp->reaped = true;
	return sp->reaped;
}

int serve_connect(struct serve_proc *sp, struct rfc *c)
{
	int64_t deadline = now_ms() + 30000;
	for (;;) {
		int e = rfc_connect(c, sp->sock);
		if (e == 0)
			return 0;
		/* Not bound yet, or bound and not yet listening: anything else is an answer. */
		if (e != -ENOENT && e != -ECONNREFUSED)
			return e;
		if (reap(sp, WNOHANG))
			return -ESRCH;
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		/* Wakes on the socket's creation or the server's exit; the 10 ms bound only covers the
		 * moment between bind() and listen(). */
		struct pollfd p[2] = { { sp->inotify, POLLIN, 0 }, { sp->pidfd, POLLIN, 0 } };
		poll(p, sp->pidfd >= 0 ? 2 : 1, 10);
		char ev[4096];
		while (read(sp->inotify, ev, sizeof ev) > 0)
			;
	}
}

int serve_wait(struct serve_proc *sp, int timeout_ms)
{
	if (sp->pidfd >= 0) {
		struct pollfd p = { sp->pidfd, POLLIN, 0 };
		int r;
		do
			r = poll(&p, 1, timeout_ms);
		while (r < 0 && errno == EINTR);
		if (r == 0)
			return -ETIMEDOUT;
	}
	return reap(sp, 0) ? 0 : -ECHILD;
}

void serve_cleanup(struct serve_proc *sp)
{
	if (sp->pid > 0 && !sp->reaped) {
		kill(sp->pid, SIGKILL);
		reap(sp, 0);
	}
	if (sp->pidfd >= 0)
		close(sp->pidfd);
	if (sp->inotify >= 0)
		close(sp->inotify);
	sp->pidfd = sp->inotify = -1;
	if (sp->dir[0]) {
		unlink(sp->sock);
		unlink(sp->err_path);
		rmdir(sp->dir);
		sp->dir[0] = 0;
	}
}

void serve_stderr(const struct serve_proc *sp, char *buf, size_t size)
{
	buf[0] = 0;
	int fd = open(sp->err_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, size - 1);
	buf[n > 0 ? n : 0] = 0;
	close(fd);
}

bool eventually(bool (*fn)(void *), void *arg, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		if (fn(arg))
			return true;
		if (now_ms() > deadline)
			return false;
		poll(NULL, 0, 1);
	}
}

bool guest_wait_spinning(volatile const uint8_t *host)
{
	int64_t deadline = now_ms() + 30000;
	while (host[G_MARKER] != 1)
		if (now_ms() > deadline)
			return false;
	return true;
}

struct conns_want {
	struct rfc *c;
	unsigned n;
};

static bool conns_are(void *arg)
{
	struct conns_want *w = arg;
	Ringfence__V1__StatsReply *st;
	if (rfc_stats(w->c, &st))
		return false;
	bool yes = st->connections == w->n;
	rfc_free_stats(st);
	return yes;
}

bool conns_eventually(struct rfc *c, unsigned n, int timeout_ms)
{
	struct conns_want w = { c, n };
	return eventually(conns_are, &w, timeout_ms);
}

void objs_make(struct serve_proc *sp, struct objs *o, uint64_t rip)
{
	memset(o, 0, sizeof *o);
	o->mfd = -1;
	o->host = MAP_FAILED;
	int e = serve_connect(sp, &o->c);
	if (!e)
		e = rfc_memory_create(&o->c, GUEST_MEM, &o->mem, &o->mfd);
	if (!e && (o->host = mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE, MAP_SHARED, o->mfd, 0)) == MAP_FAILED)
		e = -errno;
	if (!e) {
		memcpy(o->host, guest_code, guest_code_size);
		e = rfc_as_create(&o->c, &o->as);
	}
	if (!e)
		e = rfc_as_map(&o->c, o->as, GUEST_VA, GUEST_MEM, o->mem, 0, RF_PROT_READ | RF_PROT_WRITE | RF_PROT_EXEC);
	if (!e)
		e = rfc_context_create(&o->c, &o->ctx);
	struct rf_regs r = { .rip = rip, .rflags = 0x202 };
	if (!e)
		e = rfc_set_regs(&o->c, o->ctx, &r);
	if (e) {
		printf("Bail out! setting up a guest: %s (%s)\n", strerror(-e), o->c.error);
		serve_cleanup(sp);
		exit(1);
	}
}

void objs_drop(struct objs *o)
{
	rfc_close(&o->c);
	if (o->host != MAP_FAILED)
		munmap(o->host, GUEST_MEM);
	if (o->mfd >= 0)
		close(o->mfd);
}

size_t switch_request(const struct objs *o, uint64_t id, uint8_t *buf)
{
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__SwitchTo s = RINGFENCE__V1__SWITCH_TO__INIT;
	s.context = o->ctx, s.space = o->as;
	q.id = id;
	q.op_case = RINGFENCE__V1__REQUEST__OP_SWITCH_TO;
	q.switch_to = &s;
	return ringfence__v1__request__pack(&q, buf);
}

void send_switch(struct objs *o)
{
	uint8_t buf[64];
	frame_write(o->c.fd, buf, (uint32_t)switch_request(o, 0, buf), -1);
}
