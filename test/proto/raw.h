/* SPDX-License-Identifier: MIT */
/* Raw frames for the hostile-client tests: bytes the C client would never send, and the server's
 * answers to them, read without the client's checks. */
#ifndef RINGFENCE_TEST_PROTO_RAW_H
#define RINGFENCE_TEST_PROTO_RAW_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "serve_util.h"

/* A new connection's descriptor; bails out if the server cannot be reached. */
int raw_connect(struct serve_proc *sp);
/* Writes all of buf. 0 or -errno. */
int raw_send(int fd, const void *buf, size_t n);
/* The next response (free with rfc_free), or NULL at the end of the stream or on an error
 * (*why says which: 1 end of stream, -errno). */
Response *raw_recv(int fd, int *why);
/* One frame of body bytes out (with pass_fd >= 0 attached), its response back. */
Response *raw_call(int fd, const void *body, uint32_t len, int pass_fd);
/* A packed Request, framed and sent, its response back. */
Response *raw_request(int fd, Request *q);
/* r is an Error of this code (and its message contains `has`, if not NULL); if not, a TAP comment
 * says what it is. (The ok lines stay in the test's own file: tap.h counts per file.) */
bool error_is(const Response *r, Ringfence__V1__ErrorCode code, const char *has);
/* A fresh connection gets a good hello (the server survived and serves others). 0 or -errno. */
int serve_alive(struct serve_proc *sp);
/* The server process's open descriptors, and a kB field of its /proc status ("VmPeak", "VmSize";
 * -1 if unreadable). */
int proc_fd_count(pid_t pid);
long proc_status_kb(pid_t pid, const char *field);
/* Bytes we sent on a Unix socket that its peer has not read yet (SIOCOUTQ), or -errno. */
long proc_unread_bytes(int fd);

/* HANGUP_ROUNDS connections (more than the platform has vCPUs, so what a hung-up one held must come
 * back): each makes a spinning guest, start(o) sets it running in a switch and says whether it spins
 * (by the socket or by the channel), then the connection hangs up. Rounds 0 and the last are
 * reported, for the caller's TAP lines (tap.h counts per file). watcher: a connection left open. */
#define HANGUP_ROUNDS 6
struct hangup_round {
	bool running;              /* the guest spun in the switch */
	bool freed;                /* then stats said only the watcher is open */
	int fds;                   /* the server's descriptors after it */
};
void hangup_rounds(struct serve_proc *sp, struct rfc *watcher, bool (*start)(struct objs *),
                   struct hangup_round *first, struct hangup_round *last);

#endif
