/* SPDX-License-Identifier: MIT */
/* Framing: a 4-byte little-endian length, then the message; a descriptor may ride along on a Unix
 * socket. The length is checked against the maximum before any allocation. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proto.h"

/* Reads exactly n bytes; the first read may collect a descriptor. 0, 1 (end of stream before the
 * first byte), -EPROTO (end of stream after it), -errno. */
static int read_full(int fd, uint8_t *p, size_t n, int *fd_out)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r;
		if (fd_out && got == 0) {
			char cbuf[CMSG_SPACE(sizeof(int) * 4)];
			struct iovec iov = { p, n };
			struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			                     .msg_controllen = sizeof cbuf };
			r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
			if (r < 0 && errno == ENOTSOCK) {
				fd_out = NULL;   /* a pipe: no descriptors */
				continue;
			}
			for (struct cmsghdr *cm = r > 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm; cm = CMSG_NXTHDR(&mh, cm)) {
				if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
					continue;
				size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				for (size_t i = 0; i < k; i++) {
					int d;
					memcpy(&d, CMSG_DATA(cm) + i * sizeof(int), sizeof d);
					if (*fd_out < 0)
						*fd_out = d;
					else
						close(d);   /* one is all a frame may carry */
				}
			}
		} else {
			r = read(fd, p + got, n - got);
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return got == 0 ? 1 : -EPROTO;
		got += (size_t)r;
	}
	return 0;
}

int frame_read(int fd, uint32_t max, uint8_t **buf, uint32_t *len, int *fd_out)
{
	*buf = NULL;
	*len = 0;
	if (fd_out)
		*fd_out = -1;
	uint8_t hdr[4];
	int r = read_full(fd, hdr, sizeof hdr, fd_out);
	if (r)
		return r;
	uint32_t n = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
	if (n > max)
		return -EMSGSIZE;
	/* The buffer grows with what has arrived, doubling: a client that announces 16 MiB and stalls
	 * holds FRAME_FIRST_CHUNK of ours, not 16 MiB per connection. */
	uint32_t have = n < FRAME_FIRST_CHUNK ? n : FRAME_FIRST_CHUNK, got = 0;
	uint8_t *b = malloc(have ? have : 1);
	if (!b)
		return -ENOMEM;
	for (;;) {
		r = read_full(fd, b + got, have - got, NULL);
		if (r) {
			free(b);
			return r == 1 ? -EPROTO : r;
		}
		got = have;
		if (got == n)
			break;
		have = n - got < got ? n : 2 * got;
		uint8_t *nb = realloc(b, have);
		if (!nb) {
			free(b);
			return -ENOMEM;
		}
		b = nb;
	}
	*buf = b;
	*len = n;
	return 0;
}

uint64_t spin_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

uint64_t spin_default(uint64_t cap)
{
	return sysconf(_SC_NPROCESSORS_ONLN) > 1 ? cap : 0;
}

void spin_sent(struct spin *s)
{
	s->sent_ns = spin_now_ns();
}

void spin_until(struct spin *s, uint64_t cap, bool (*ready)(void *), void *arg, unsigned per_clock)
{
	if (!cap || !s->sent_ns || s->last_ns >= cap)
		return;
	uint64_t end = s->sent_ns + 2 * s->last_ns;
	if (end > s->sent_ns + cap)
		end = s->sent_ns + cap;
	for (;;) {
		for (unsigned i = 0; i < per_clock; i++) {
			if (ready(arg))
				return;
			__builtin_ia32_pause();   /* the other hyperthread, and a VM's pause-loop exit */
		}
		if (spin_now_ns() >= end)
			return;
	}
}

static bool readable(void *fd)
{
	struct pollfd p = { *(int *)fd, POLLIN, 0 };
	return poll(&p, 1, 0) != 0;
}

void spin_wait(struct spin *s, int fd, uint64_t cap)
{
	spin_until(s, cap, readable, &fd, 1);
}

void spin_arrived(struct spin *s)
{
	spin_arrived_at(s, 0);
}

void spin_arrived_at(struct spin *s, uint64_t their_ns)
{
	if (!s->sent_ns)
		return;
	uint64_t now = spin_now_ns();
	s->last_ns = (their_ns > s->sent_ns && their_ns <= now ? their_ns : now) - s->sent_ns;
}

int frame_write(int fd, const uint8_t *buf, uint32_t len, int pass_fd)
{
	uint8_t hdr[4] = { (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16), (uint8_t)(len >> 24) };
	struct iovec iov[2] = { { hdr, sizeof hdr }, { (void *)buf, len } };
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	if (pass_fd >= 0) {
		memset(cbuf, 0, sizeof cbuf);
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof cbuf;
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pass_fd, sizeof pass_fd);
	}
	size_t total = sizeof hdr + len, done = 0;
	bool first = true;
	while (done < total) {
		ssize_t w;
		if (first) {
			/* MSG_NOSIGNAL: a client gone away is an error here, not a SIGPIPE for the server. */
			w = sendmsg(fd, &mh, MSG_NOSIGNAL);
			if (w < 0 && errno == ENOTSOCK) {
				if (pass_fd >= 0)
					return -ENOTSOCK;
				w = writev(fd, iov, 2);
			}
		} else {
			/* The rest of a partly written frame, descriptor already sent. */
			size_t off = done;
			const uint8_t *src = off < sizeof hdr ? hdr + off : buf + (off - sizeof hdr);
			size_t n = off < sizeof hdr ? sizeof hdr - off : total - off;
			w = send(fd, src, n, MSG_NOSIGNAL);
			if (w < 0 && errno == ENOTSOCK)
				w = write(fd, src, n);
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		done += (size_t)w;
		first = false;
	}
	return 0;
}
