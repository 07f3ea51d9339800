/* SPDX-License-Identifier: MIT */
/* Raw frames for the hostile-client tests (raw.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <unistd.h>

#include "raw.h"

int raw_connect(struct serve_proc *sp)
{
	struct rfc c;
	int e = serve_connect(sp, &c);
	if (e) {
		printf("Bail out! connecting to the server: %s\n", strerror(-e));
		serve_cleanup(sp);
		exit(1);
	}
	return c.fd;
}

int raw_send(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

Response *raw_recv(int fd, int *why)
{
	uint8_t *in;
	uint32_t len;
	int e = frame_read(fd, PROTO_MAX_MESSAGE, &in, &len, NULL);
	if (why)
		*why = e;
	if (e)
		return NULL;
	Response *r = ringfence__v1__response__unpack(NULL, len, in);
	free(in);
	if (!r && why)
		*why = -EBADMSG;
	return r;
}

Response *raw_call(int fd, const void *body, uint32_t len, int pass_fd)
{
	if (frame_write(fd, body, len, pass_fd) < 0)
		return NULL;
	return raw_recv(fd, NULL);
}

Response *raw_request(int fd, Request *q)
{
	size_t n = ringfence__v1__request__get_packed_size(q);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return NULL;
	ringfence__v1__request__pack(q, buf);
	Response *r = raw_call(fd, buf, (uint32_t)n, -1);
	free(buf);
	return r;
}

bool error_is(const Response *r, Ringfence__V1__ErrorCode code, const char *has)
{
	const Ringfence__V1__Error *er = r ? r->error : NULL;
	bool pass = er && er->code == code && er->errno_value < 0 &&
	            (!has || (er->message && strstr(er->message, has)));
	if (!pass) {
		if (!r)
			printf("#   no response\n");
		else if (!er)
			printf("#   no error (result %d)\n", r->result_case);
		else
			printf("#   code %d errno %d \"%s\"; want code %d%s%s\n", er->code, er->errno_value,
			       er->message ? er->message : "", code, has ? " with " : "", has ? has : "");
	}
	return pass;
}

int serve_alive(struct serve_proc *sp)
{
	struct rfc c;
	Ringfence__V1__HelloReply *h = NULL;
	int e = serve_connect(sp, &c);
	bool connected = e == 0;
	if (connected)
		e = rfc_hello(&c, &h);
	if (e == 0 && h->protocol_version != PROTO_VERSION)
		e = -EPROTO;
	rfc_free_hello(h);
	if (connected)
		rfc_close(&c);
	return e;
}

int proc_fd_count(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	int n = 0;
	for (struct dirent *de; (de = readdir(d));)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

long proc_status_kb(pid_t pid, const char *field)
{
	char path[64], line[256], fmt[64];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	snprintf(fmt, sizeof fmt, "%s: %%ld kB", field);
	FILE *f = fopen(path, "re");
	long kb = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, fmt, &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

long proc_unread_bytes(int fd)
{
	int n;
	return ioctl(fd, SIOCOUTQ, &n) < 0 ? -errno : n;
}

void hangup_rounds(struct serve_proc *sp, struct rfc *watcher, bool (*start)(struct objs *),
                   struct hangup_round *first, struct hangup_round *last)
{
	for (int round = 0; round < HANGUP_ROUNDS; round++) {
		struct objs o;
		objs_make(sp, &o, GUEST_VA + G_SPIN);
		struct hangup_round *r = round == 0 ? first : last;
		r->running = start(&o);
		objs_drop(&o);   /* hangs up while the guest spins */
		r->freed = conns_eventually(watcher, 1, 10000);
		r->fds = proc_fd_count(sp->pid);
	}
}
