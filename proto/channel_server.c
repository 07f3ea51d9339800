/* SPDX-License-Identifier: MIT */
/* The server's side of a switch channel: a thread of the connection that waits for the client's
 * turn to end, copies the request out of the shared page, dispatches it like a socket request (one
 * at a time with the socket's, kicks excepted) and writes the answer back. The client owns the page
 * as much as we do and may change any byte at any time: only the copy is decoded, the length is
 * bounded first, and a client that scribbles gets Errors or garbage back, never our memory. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"

static bool stopped(void *arg)
{
	return atomic_load(&((struct conn *)arg)->chan_stop);
}

/* Answers one request found in the page (in: a private buffer of CHANNEL_MAX_MESSAGE bytes). */
static bool answer(struct conn *c, uint8_t *in)
{
	struct channel_page *pg = c->chan;
	uint32_t len = *(volatile uint32_t *)&pg->len;   /* read once: it may change under us */
	uint8_t *out = NULL;
	uint32_t n;
	if (len > CHANNEL_MAX_MESSAGE) {
		char why[96];
		snprintf(why, sizeof why, "a channel message of %u bytes; at most %u fit", len, CHANNEL_MAX_MESSAGE);
		n = pack_error(pg->data, CHANNEL_MAX_MESSAGE, RINGFENCE__V1__ERROR_CODE__BAD_REQUEST, -EMSGSIZE, why);
	} else {
		memcpy(in, pg->data, len);
		atomic_fetch_add(&c->srv->channel_requests, 1);
		n = dispatch(c, in, len, &out, NULL, CHANNEL_MAX_MESSAGE);
		if (!n)
			return false;   /* out of memory: nothing to say; the channel closes */
		memcpy(pg->data, out, n);
		free(out);
	}
	pg->len = n;
	return true;
}

static void *channel_main(void *arg)
{
	struct conn *c = arg;
	uint8_t *in = malloc(CHANNEL_MAX_MESSAGE);
	while (in) {
		uint64_t cap = atomic_load_explicit(&c->srv->chan_spin_cap_ns, memory_order_relaxed);
		if (channel_wait(c->chan, CHANNEL_SERVER, &c->chan_spin, cap, stopped, c) < 0)
			break;
		if (!answer(c, in))
			break;
		channel_give(c->chan, CHANNEL_CLIENT, &c->chan_spin);
	}
	free(in);
	/* Whatever ended it, the client's next wait ends too. */
	channel_give(c->chan, CHANNEL_CLOSED, NULL);
	return NULL;
}

int channel_serve(struct conn *c)
{
	int e = channel_create(&c->chan_fd, &c->chan);
	if (e < 0)
		return e;
	e = pthread_create(&c->chan_thread, NULL, channel_main, c);
	if (e) {
		channel_unmap(c->chan);
		close(c->chan_fd);
		c->chan = NULL;
		c->chan_fd = -1;
		return -e;
	}
	return 0;
}

void channel_stop(struct conn *c)
{
	if (!c->chan)
		return;
	/* A switch the channel is running is taken back (the connection is ending, its client gone or
	 * out of step); a wait for the next request ends at the closed word. */
	atomic_store(&c->chan_stop, true);
	pthread_mutex_lock(&c->srv->lock);
	conn_take_back(c);
	pthread_mutex_unlock(&c->srv->lock);
	channel_give(c->chan, CHANNEL_CLOSED, NULL);
	pthread_join(c->chan_thread, NULL);
	channel_unmap(c->chan);
	close(c->chan_fd);
	c->chan = NULL;
	c->chan_fd = -1;
}
