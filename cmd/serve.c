/* SPDX-License-Identifier: MIT */
/* ringfence serve: the control plane on a Unix socket (--socket PATH) or one inherited connection
 * (--fd N, a socket; --fd R:W, a pipe pair). One server per sandbox. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <fcntl.h>
#include <unistd.h>

#include "cmd.h"
#include "proto.h"

static int usage(void)
{
	fprintf(stderr, "usage: ringfence serve (--socket PATH | --fd N | --fd R:W) [--max-connections N] [--no-seccomp]\n");
	return 2;
}

/* Tests only: a syscall the filter forbids, made once the filter is in place (SIGSYS expected). */
static void forbidden(void)
{
	socket(AF_INET, SOCK_STREAM, 0);
}

static int listen_on(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof a.sun_path)
		return cmd_fail(-1, "--socket %s: path too long for a Unix socket", path);
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return cmd_fail(-1, "--socket %s: %s", path, strerror(e));
	}
	return fd;
}

int cmd_serve(int argc, char **argv)
{
	const char *sock = NULL, *fds = NULL;
	bool no_seccomp = false;
	long max_conns = PROTO_MAX_CONNECTIONS;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--socket") && i + 1 < argc)
			sock = argv[++i];
		else if (!strcmp(argv[i], "--fd") && i + 1 < argc)
			fds = argv[++i];
		else if (!strcmp(argv[i], "--max-connections") && i + 1 < argc) {
			char *end;
			max_conns = strtol(argv[++i], &end, 10);
			if (*end || max_conns < 1 || max_conns > PROTO_MAX_CONNECTIONS)
				return cmd_fail(2, "--max-connections %s: a number from 1 to %d", argv[i],
				                PROTO_MAX_CONNECTIONS);
		} else if (!strcmp(argv[i], "--no-seccomp"))
			no_seccomp = true;
		else
			return usage();
	}
	if (!sock == !fds)
		return usage();
	int rfd = -1, wfd = -1, lfd = -1;
	if (fds) {
		char *end;
		rfd = (int)strtol(fds, &end, 10);
		wfd = *end == ':' ? (int)strtol(end + 1, &end, 10) : rfd;
		if (*end || rfd < 0 || wfd < 0 || fcntl(rfd, F_GETFD) < 0 || fcntl(wfd, F_GETFD) < 0)
			return cmd_fail(2, "--fd %s: not an open descriptor (N, or R:W)", fds);
	} else if ((lfd = listen_on(sock)) < 0) {
		return 1;
	}
	/* A client gone away is an error on its connection, never a signal for the server. */
	signal(SIGPIPE, SIG_IGN);
	rf_platform *p;
	struct rf_platform_options opts = { .exit_log_fd = 2 };
	if (rf_platform_create(&opts, &p) < 0) {
		if (lfd >= 0)
			unlink(sock);
		return cmd_fail(RUN_EXIT_PLATFORM, "%s", rf_last_error());
	}
	static struct server srv;
	int e = server_init(&srv, p);
	srv.max_connections = (unsigned)max_conns;
	if (getenv("RINGFENCE_TEST_FORBIDDEN_SYSCALL"))
		srv.test_hook = forbidden;
	if (e == 0 && !no_seccomp)
		e = serve_seccomp(&srv);
	else if (e == 0)
		fprintf(stderr, "ringfence: serve: --no-seccomp: running without a syscall filter (debugging only)\n");
	if (e == 0)
		e = lfd >= 0 ? server_listen(&srv, lfd) : server_one(&srv, rfd, wfd);
	if (lfd >= 0) {
		close(lfd);
		unlink(sock);
	}
	server_destroy(&srv);
	if (rf_platform_destroy(p) < 0)
		cmd_fail(0, "%s", rf_last_error());
	return e < 0 ? cmd_fail(1, "serve: %s", strerror(-e)) : 0;
}
