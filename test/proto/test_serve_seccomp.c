/* SPDX-License-Identifier: MIT */
/* `ringfence serve`'s syscall filter: a forbidden call once the filter is in place kills the whole
 * server with SIGSYS; --no-seccomp runs without it (and says so); the inherited-connection modes
 * (--fd N on a socketpair, --fd R:W on pipes) serve under the filter, descriptors passed included.
 *
 *   test_proto_serve_seccomp RINGFENCE */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "serve_util.h"
#include "tap.h"

static const char *ringfence;
static const char *const forbidden_env[] = { "RINGFENCE_TEST_FORBIDDEN_SYSCALL=1", NULL };

static void test_forbidden_kills(void)
{
	struct serve_proc sp;
	struct serve_opts o = { .env = forbidden_env, .capture_err = true, .keep = { -1, -1 } };
	int e = serve_start(&sp, ringfence, &o);
	if (e == 0)
		e = serve_wait(&sp, 30000);
	ok(e == 0 && WIFSIGNALED(sp.status) && WTERMSIG(sp.status) == SIGSYS,
	   "a forbidden syscall under the filter: the server dies of SIGSYS (%d, status 0x%x)", e, sp.status);
	serve_cleanup(&sp);
}

static void test_no_seccomp(void)
{
	struct serve_proc sp;
	struct serve_opts o = { .args = (const char *const[]){ "--no-seccomp", NULL }, .env = forbidden_env,
	                        .capture_err = true, .keep = { -1, -1 } };
	struct rfc c;
	Ringfence__V1__HelloReply *h = NULL;
	int e = serve_start(&sp, ringfence, &o);
	if (e == 0 && (e = serve_connect(&sp, &c)) == 0) {
		e = rfc_hello(&c, &h);
		rfc_free_hello(h);
		if (e == 0)
			e = rfc_shutdown(&c);
		rfc_close(&c);
	}
	ok(e == 0, "--no-seccomp: the same forbidden syscall is harmless, the server serves (%d)", e);
	if (e == 0)
		e = serve_wait(&sp, 30000);
	ok(e == 0 && WIFEXITED(sp.status) && WEXITSTATUS(sp.status) == 0, "--no-seccomp: exits 0 (%d, status 0x%x)", e,
	   sp.status);
	char err[4096];
	serve_stderr(&sp, err, sizeof err);
	ok(strstr(err, "--no-seccomp: running without a syscall filter") != NULL, "--no-seccomp: stderr says so");
	if (!strstr(err, "--no-seccomp"))
		printf("#   stderr: %s\n", err);
	serve_cleanup(&sp);
}

/* --fd N on one end of a socketpair: served under the filter, the memfd passed and used. */
static void test_fd_socket(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	char arg[16];
	snprintf(arg, sizeof arg, "%d", sv[1]);
	struct serve_opts o = { .no_socket = true, .args = (const char *const[]){ "--fd", arg, NULL },
	                        .keep = { sv[1], -1 } };
	struct serve_proc sp;
	int e = serve_start(&sp, ringfence, &o);
	close(sv[1]);
	struct rfc c;
	rfc_attach(&c, sv[0]);
	Ringfence__V1__HelloReply *h = NULL;
	uint64_t mem = 0, as = 0, ctx = 0;
	int mfd = -1;
	if (e == 0)
		e = rfc_hello(&c, &h);
	rfc_free_hello(h);
	if (e == 0)
		e = rfc_memory_create(&c, GUEST_MEM, &mem, &mfd);
	ok(e == 0 && mfd >= 0, "--fd N (socketpair): hello, and memory_create passes the memfd (%d)", e);
	uint8_t *host = mfd >= 0 ? mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0) : MAP_FAILED;
	if (host != MAP_FAILED) {
		memcpy(host, guest_code, guest_code_size);
		munmap(host, GUEST_MEM);
	}
	if (e == 0)
		e = rfc_as_create(&c, &as);
	if (e == 0)
		e = rfc_as_map(&c, as, GUEST_VA, GUEST_MEM, mem, 0, RF_PROT_READ | RF_PROT_EXEC);
	if (e == 0)
		e = rfc_context_create(&c, &ctx);
	struct rf_regs r = { .rip = GUEST_VA, .rflags = 0x202 };
	struct rf_event ev = { 0 };
	if (e == 0)
		e = rfc_set_regs(&c, ctx, &r);
	if (e == 0)
		e = rfc_switch(&c, ctx, as, &ev, &r);
	ok(e == 0 && ev.type == RF_EVENT_SYSCALL && r.rax == 39, "--fd N: the guest's code runs to its syscall (%d)", e);
	if (mfd >= 0)
		close(mfd);
	rfc_close(&c);   /* the one connection's end is the server's */
	e = serve_wait(&sp, 30000);
	ok(e == 0 && WIFEXITED(sp.status) && WEXITSTATUS(sp.status) == 0,
	   "--fd N: exits 0 when its connection closes (%d, status 0x%x)", e, sp.status);
	serve_cleanup(&sp);
}

static Response *pipe_call(int w, int r, Request *q)
{
	uint8_t buf[256];
	size_t n = ringfence__v1__request__get_packed_size(q);
	if (n > sizeof buf)
		return NULL;
	ringfence__v1__request__pack(q, buf);
	uint8_t *in;
	uint32_t len;
	if (frame_write(w, buf, (uint32_t)n, -1) < 0 || frame_read(r, PROTO_MAX_MESSAGE, &in, &len, NULL))
		return NULL;
	Response *resp = ringfence__v1__response__unpack(NULL, len, in);
	free(in);
	return resp;
}

/* --fd R:W on two pipes: no descriptor passing, replies written with writev. */
static void test_fd_pipes(void)
{
	int to[2], from[2];
	if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0)
		return;
	char arg[32];
	snprintf(arg, sizeof arg, "%d:%d", to[0], from[1]);
	struct serve_opts o = { .no_socket = true, .args = (const char *const[]){ "--fd", arg, NULL },
	                        .keep = { to[0], from[1] } };
	struct serve_proc sp;
	int e = serve_start(&sp, ringfence, &o);
	close(to[0]);
	close(from[1]);
	Request q = RINGFENCE__V1__REQUEST__INIT;
	Ringfence__V1__Hello hq = RINGFENCE__V1__HELLO__INIT;
	q.op_case = RINGFENCE__V1__REQUEST__OP_HELLO;
	q.hello = &hq;
	Response *r = e ? NULL : pipe_call(to[1], from[0], &q);
	bool fdcap = false;
	for (size_t i = 0; r && r->hello && i < r->hello->n_capabilities; i++)
		fdcap |= !strcmp(r->hello->capabilities[i], "memory-fd-passing");
	ok(r && r->result_case == RINGFENCE__V1__RESPONSE__RESULT_HELLO && !fdcap,
	   "--fd R:W (pipes): hello, without memory-fd-passing");
	rfc_free(r);
	Ringfence__V1__MemoryCreate mc = RINGFENCE__V1__MEMORY_CREATE__INIT;
	mc.size = GUEST_MEM;
	q.op_case = RINGFENCE__V1__REQUEST__OP_MEMORY_CREATE;
	q.memory_create = &mc;
	r = pipe_call(to[1], from[0], &q);
	ok(r && r->result_case == RINGFENCE__V1__RESPONSE__RESULT_HANDLE && !r->handle->fd_attached,
	   "--fd R:W: memory_create, no descriptor attached");
	rfc_free(r);
	close(to[1]);
	e = serve_wait(&sp, 30000);
	ok(e == 0 && WIFEXITED(sp.status) && WEXITSTATUS(sp.status) == 0,
	   "--fd R:W: exits 0 when its input closes (%d, status 0x%x)", e, sp.status);
	close(from[0]);
	serve_cleanup(&sp);
}

/* --fd 0:1, the connection on stdin and stdout (as inetd gives it). Its end closes fds 0 and 1; in a
 * sanitizer build LeakSanitizer's exit-time tracer then opens files onto them and moves them with
 * dup(), which the filter refused: the tracer died and the server spun at exit forever. */
static void test_fd_stdio_exit(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	struct serve_opts o = { .no_socket = true, .args = (const char *const[]){ "--fd", "0:1", NULL },
	                        .keep = { -1, -1 }, .stdio = sv[1] };
	struct serve_proc sp;
	int e = serve_start(&sp, ringfence, &o);
	close(sv[1]);
	struct rfc c;
	rfc_attach(&c, sv[0]);
	Ringfence__V1__HelloReply *h = NULL;
	if (e == 0)
		e = rfc_hello(&c, &h);
	rfc_free_hello(h);
	ok(e == 0, "--fd 0:1 (stdin and stdout): hello (%d)", e);
	rfc_close(&c);
	e = serve_wait(&sp, 60000);
	ok(e == 0 && WIFEXITED(sp.status) && WEXITSTATUS(sp.status) == 0,
	   "--fd 0:1: exits 0 once stdin closes, in sanitizer builds too (%d, status 0x%x)", e, sp.status);
	serve_cleanup(&sp);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		printf("Bail out! usage: %s RINGFENCE\n", argv[0]);
		return 1;
	}
	ringfence = argv[1];
	kvm_or_skip();
	test_forbidden_kills();
	test_no_seccomp();
	test_fd_socket();
	test_fd_pipes();
	test_fd_stdio_exit();
	return tap_done();
}
