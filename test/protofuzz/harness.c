/* SPDX-License-Identifier: MIT */
/* protofuzz's harness: one input as a run of requests through dispatch(), every response checked
 * (see harness.h). Shared by the libFuzzer target and the seed replay. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "platform.h"   /* white box: the live-object counts, to see that an input leaves nothing */
#include "proto.h"

static rf_platform *pf_platform;

int pf_setup(char *why, size_t why_len)
{
	/* exit_log_fd 0: a platform failure is an Error response here, not a log on stderr. */
	struct rf_platform_options o = { 0 };
	int r = rf_platform_create(&o, &pf_platform);
	snprintf(why, why_len, "%s", r < 0 ? rf_last_error() : "");
	if (r == -ENOENT || r == -EACCES || r == -ENODEV || r == -ENXIO)
		return 1;
	return r < 0 ? -1 : 0;
}

static void broken(const char *what, unsigned i, const Response *resp)
{
	fprintf(stderr, "protofuzz: request %u: %s", i, what);
	if (resp && resp->error && resp->error->message)
		fprintf(stderr, " (error: %s)", resp->error->message);
	fprintf(stderr, "\n");
	abort();
}

/* The result a successful operation answers with. */
static Ringfence__V1__Response__ResultCase result_for(Ringfence__V1__Request__OpCase op)
{
	switch (op) {
	case RINGFENCE__V1__REQUEST__OP_HELLO: return RINGFENCE__V1__RESPONSE__RESULT_HELLO;
	case RINGFENCE__V1__REQUEST__OP_MEMORY_CREATE:
	case RINGFENCE__V1__REQUEST__OP_AS_CREATE:
	case RINGFENCE__V1__REQUEST__OP_CONTEXT_CREATE: return RINGFENCE__V1__RESPONSE__RESULT_HANDLE;
	case RINGFENCE__V1__REQUEST__OP_MEMORY_READ: return RINGFENCE__V1__RESPONSE__RESULT_DATA;
	case RINGFENCE__V1__REQUEST__OP_GET_REGS: return RINGFENCE__V1__RESPONSE__RESULT_REGS;
	case RINGFENCE__V1__REQUEST__OP_SWITCH_TO: return RINGFENCE__V1__RESPONSE__RESULT_EVENT;
	case RINGFENCE__V1__REQUEST__OP_STATS: return RINGFENCE__V1__RESPONSE__RESULT_STATS;
	case RINGFENCE__V1__REQUEST__OP_CHANNEL_OPEN: return RINGFENCE__V1__RESPONSE__RESULT_CHANNEL;
	default: return RINGFENCE__V1__RESPONSE__RESULT_DONE;
	}
}

/* One request: dispatched, its response checked. Every other one goes as the switch channel sends
 * it: no descriptor can go with the reply, and the reply must fit the channel. */
static void one(struct conn *c, unsigned i, const uint8_t *req, uint32_t len, bool verbose, struct pf_stats *st)
{
	uint8_t *out = NULL;
	int pass_fd = 7;   /* dispatch must set it */
	bool channel = i % 2;
	uint32_t max = channel ? CHANNEL_MAX_MESSAGE : PROTO_MAX_MESSAGE;
	uint32_t n = dispatch(c, req, len, &out, channel ? NULL : &pass_fd, max);
	if (channel)
		pass_fd = -1;
	if (!n || !out)
		broken("no response", i, NULL);
	if (n > max)
		broken("a response above the maximum message size", i, NULL);
	if (pass_fd != -1)
		broken("a descriptor to pass on a connection that is not a Unix socket", i, NULL);
	Response *resp = ringfence__v1__response__unpack(NULL, n, out);
	free(out);
	if (!resp)
		broken("the response does not decode", i, NULL);
	Request *q = ringfence__v1__request__unpack(NULL, len, req);
	if (q && resp->id != q->id)
		broken("the response's id is not the request's", i, resp);
	if (!q && !resp->error)
		broken("an undecodable request got no Error", i, resp);
	if (!resp->error == (resp->result_case == RINGFENCE__V1__RESPONSE__RESULT__NOT_SET))
		broken("not exactly one of an Error and a result", i, resp);
	if (q && !resp->error && resp->result_case != result_for(q->op_case))
		broken("a result that does not fit the operation", i, resp);
	if (resp->result_case == RINGFENCE__V1__RESPONSE__RESULT_EVENT &&
	    (!resp->event || resp->event->type != RINGFENCE__V1__EVENT_TYPE__EVENT_INTERRUPTED || !resp->event->regs))
		broken("a switch kicked before it started did not report an interruption with registers", i, resp);
	if (resp->error && (resp->error->code == RINGFENCE__V1__ERROR_CODE__ERROR_UNSPECIFIED || !resp->error->message))
		broken("an Error without a code or a message", i, resp);
	st->requests++;
	if (resp->error && !st->errors++)
		snprintf(st->first_error, sizeof st->first_error, "request %u: %s", i, resp->error->message);
	if (verbose)
		printf("#   %2u: op %2d -> %s%s\n", i, q ? (int)q->op_case : -1,
		       resp->error ? "error: " : "ok, result ", resp->error ? resp->error->message : "");
	if (verbose && !resp->error)
		printf("#       result %d\n", (int)resp->result_case);
	if (q)
		ringfence__v1__request__free_unpacked(q, NULL);
	ringfence__v1__response__free_unpacked(resp, NULL);
}

void pf_run(const uint8_t *data, size_t n, bool verbose, struct pf_stats *stats)
{
	struct pf_stats local;
	struct pf_stats *st = stats ? stats : &local;
	memset(st, 0, sizeof *st);
	/* A server per input: handle numbers start at 1 again, so a seed's numbers mean the same
	 * objects every time it runs. */
	struct server srv;
	if (server_init(&srv, pf_platform) < 0) {
		fprintf(stderr, "protofuzz: server_init failed\n");
		abort();
	}
	srv.kick_before_switch = true;
	struct conn c = { .srv = &srv, .rfd = -1, .wfd = -1, .unix_socket = false, .serial = PTHREAD_MUTEX_INITIALIZER };
	size_t at = 0;
	for (unsigned i = 0; i < PF_MAX_REQUESTS && at < n; i++) {
		uint32_t len = data[at];
		if (at + 1 < n)
			len |= (uint32_t)data[at + 1] << 8;
		at += at + 2 <= n ? 2 : n - at;
		if (len > n - at)
			len = (uint32_t)(n - at);
		/* A copy of exactly len bytes, so ASan sees any read past the request. */
		uint8_t *req = malloc(len ? len : 1);
		if (!req)
			abort();
		memcpy(req, data + at, len);
		one(&c, i, req, len, verbose, st);
		free(req);
		at += len;
	}
	dispatch_release(&c);
	if (srv.memory_used)
		broken("memory still counted after the connection released everything", st->requests, NULL);
	if (pf_platform->n_memories || pf_platform->n_spaces || pf_platform->n_contexts)
		broken("objects left on the platform after the connection released everything", st->requests, NULL);
	server_destroy(&srv);
}
