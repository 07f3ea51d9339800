/* SPDX-License-Identifier: MIT */
/* The server: a thread per connection reading frames and answering them in order, and one watcher
 * (the accepting thread) that also notices connections hanging up while their context runs and
 * kicks it back, so the thread can release what the connection owned. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"

int server_init(struct server *s, rf_platform *p)
{
	memset(s, 0, sizeof *s);
	s->p = p;
	s->memory_limit = PROTO_MAX_MEMORY;
	s->max_connections = PROTO_MAX_CONNECTIONS;
	s->spin_cap_ns = spin_default(PROTO_SPIN_CAP_NS);
	s->chan_spin_cap_ns = spin_default(CHANNEL_SPIN_CAP_NS);
	rf_platform_info(p, &s->info);
	pthread_mutex_init(&s->lock, NULL);
	s->handles = handles_new();
	s->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!s->handles || s->wake < 0) {
		server_destroy(s);
		return -ENOMEM;
	}
	return 0;
}

void server_destroy(struct server *s)
{
	handles_free(s->handles);
	if (s->wake >= 0)
		close(s->wake);
	pthread_mutex_destroy(&s->lock);
	s->handles = NULL;
	s->wake = -1;
}

/* The last word on a connection about to be closed: an Error response with id 0 (it answers no
 * request in particular). */
static void say_last(int wfd, Ringfence__V1__ErrorCode code, int err, const char *message)
{
	uint8_t buf[256];
	uint32_t n = pack_error(buf, sizeof buf, code, err, message);
	if (n)
		frame_write(wfd, buf, n, -1);
}

/* Serves one connection's requests in order until it closes or breaks the framing. */
static void serve_conn(struct conn *c)
{
	for (;;) {
		uint8_t *in, *out;
		uint32_t len;
		/* A runtime's next request (its next switch, once it has handled this event) usually
		 * follows within microseconds: wait awake for it a while (see struct spin). */
		spin_wait(&c->spin, c->rfd, atomic_load_explicit(&c->srv->spin_cap_ns, memory_order_relaxed));
		int r = frame_read(c->rfd, PROTO_MAX_MESSAGE, &in, &len, NULL);
		spin_arrived(&c->spin);
		if (r == -EMSGSIZE)
			/* Said once, then the connection ends: after an unread body nothing lines up again. */
			say_last(c->wfd, RINGFENCE__V1__ERROR_CODE__TOO_LARGE, -EMSGSIZE,
			         "frame longer than the maximum message size: closing the connection");
		if (r)
			return;   /* end of stream, a frame cut short, or a read error */
		int pass_fd = -1;
		uint32_t n = dispatch(c, in, len, &out, &pass_fd, PROTO_MAX_MESSAGE);
		free(in);
		if (!n || frame_write(c->wfd, out, n, c->unix_socket ? pass_fd : -1) < 0) {
			free(out);
			return;
		}
		spin_sent(&c->spin);
		free(out);
	}
}

void conn_take_back(struct conn *c)
{
	atomic_store(&c->hung_up, true);
	if (c->switching)
		rf_kick(c->switching);
}

static void conn_end(struct conn *c)
{
	struct server *s = c->srv;
	channel_stop(c);
	dispatch_release(c);
	pthread_mutex_lock(&s->lock);
	for (struct conn **pp = &s->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	pthread_mutex_unlock(&s->lock);
	if (c->rfd != c->wfd)
		close(c->wfd);
	close(c->rfd);
	pthread_mutex_destroy(&c->serial);
	free(c);
	/* Under the lock, with the wake-up: the watcher reads the count under it too, so once it sees
	 * this connection gone, this thread no longer touches the server (which may then be destroyed). */
	pthread_mutex_lock(&s->lock);
	atomic_fetch_sub(&s->connections, 1);
	uint64_t one = 1;
	(void)!write(s->wake, &one, sizeof one);
	pthread_mutex_unlock(&s->lock);
}

/* The number of live connections, read under the lock (see conn_end). */
static unsigned live_connections(struct server *s)
{
	pthread_mutex_lock(&s->lock);
	unsigned n = atomic_load(&s->connections);
	pthread_mutex_unlock(&s->lock);
	return n;
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	serve_conn(c);
	conn_end(c);
	return NULL;
}

static struct conn *conn_new(struct server *s, int rfd, int wfd)
{
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->srv = s;
	c->rfd = rfd;
	c->wfd = wfd;
	c->chan_fd = -1;
	pthread_mutex_init(&c->serial, NULL);
	int type;
	socklen_t tl = sizeof type;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	c->unix_socket = rfd == wfd && getsockopt(rfd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
	                 getsockname(rfd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_UNIX;
	pthread_mutex_lock(&s->lock);
	c->next = s->conns;
	s->conns = c;
	pthread_mutex_unlock(&s->lock);
	atomic_fetch_add(&s->connections, 1);
	return c;
}

/* Every live connection's descriptor is watched for its peer's full hang-up (POLLHUP: a Unix
 * socket's peer closed, or a pipe's writer; a half-close, shutdown(SHUT_WR), is not one: that client
 * still reads its answers). A connection that hangs up is marked and, if its context is running,
 * the context is kicked back. Watching every connection rather than only the switching ones costs a
 * switch nothing: the set changes only when connections come and go (the wake eventfd says so),
 * never per switch. The mark and `switching` are both set under the lock, so whichever of op_switch
 * and this comes second sees the other's and kicks. */
static void watch(struct server *s, int listen_fd, bool *accept_ready)
{
	struct pollfd p[2 + PROTO_MAX_CONNECTIONS];
	struct conn *who[2 + PROTO_MAX_CONNECTIONS];
	int n = 0;
	p[n++] = (struct pollfd){ s->wake, POLLIN, 0 };
	if (listen_fd >= 0 && !atomic_load(&s->shut))
		p[n++] = (struct pollfd){ listen_fd, POLLIN, 0 };
	int first_conn = n;
	pthread_mutex_lock(&s->lock);
	for (struct conn *c = s->conns; c && n < (int)(sizeof p / sizeof p[0]); c = c->next)
		if (!atomic_load(&c->hung_up)) {
			who[n] = c;
			p[n++] = (struct pollfd){ c->rfd, 0, 0 };   /* POLLHUP and POLLERR need no asking */
		}
	pthread_mutex_unlock(&s->lock);
	*accept_ready = false;
	if (poll(p, (nfds_t)n, -1) < 0)
		return;
	uint64_t drained;
	if (p[0].revents)
		(void)!read(s->wake, &drained, sizeof drained);
	if (first_conn == 2 && p[1].revents)
		*accept_ready = true;
	for (int i = first_conn; i < n; i++)
		if (p[i].revents & (POLLHUP | POLLERR | POLLNVAL)) {
			pthread_mutex_lock(&s->lock);
			/* Still in the list: not ended (and its descriptor not reused) since the poll began. */
			for (struct conn *c = s->conns; c; c = c->next)
				if (c == who[i])
					conn_take_back(c);
			pthread_mutex_unlock(&s->lock);
		}
}

static int start(struct server *s, int rfd, int wfd)
{
	struct conn *c = conn_new(s, rfd, wfd);
	pthread_t t;
	pthread_attr_t a;
	if (!c)
		return -ENOMEM;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	int e = pthread_create(&t, &a, conn_main, c);
	pthread_attr_destroy(&a);
	if (e) {
		/* The descriptors stay the caller's (server_listen closes the accepted one): closing them
		 * here too would close whatever another thread has opened under the same number since. */
		c->rfd = c->wfd = -1;
		conn_end(c);
		return -e;
	}
	return 0;
}

int server_listen(struct server *s, int listen_fd)
{
	for (;;) {
		bool ready;
		watch(s, listen_fd, &ready);
		if (ready) {
			int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
			unsigned max = s->max_connections < PROTO_MAX_CONNECTIONS ? s->max_connections
			                                                           : PROTO_MAX_CONNECTIONS;
			if (fd >= 0 && live_connections(s) >= max) {
				/* Beyond what the watcher watches (and a thread each): told, never served. A
				 * fresh socket's buffer takes these few bytes, so this cannot block. */
				char why[96];
				snprintf(why, sizeof why, "the server serves %u connections at once: closing this one", max);
				say_last(fd, RINGFENCE__V1__ERROR_CODE__CONNECTION_LIMIT, -EMFILE, why);
				close(fd);
			} else if (fd >= 0 && start(s, fd, fd) < 0)
				close(fd);
		}
		if (atomic_load(&s->shut) && live_connections(s) == 0)
			return 0;
	}
}

int server_one(struct server *s, int rfd, int wfd)
{
	int e = start(s, rfd, wfd);
	if (e < 0)
		return e;
	/* The one connection's end is the server's. */
	for (;;) {
		bool ready;
		watch(s, -1, &ready);
		if (live_connections(s) == 0)
			return 0;
	}
}
