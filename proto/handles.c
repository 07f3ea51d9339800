/* SPDX-License-Identifier: MIT */
/* The server's handle table: numbers for memories, address spaces and contexts, each owned by the
 * connection that made it. Numbers are never reused, so a stale or forged one finds nothing. */
#include <stdlib.h>

#include "proto.h"

#define HANDLES_MAX 65536   /* in all: a client cannot grow the table without bound */

struct handle {
	uint64_t id;
	enum handle_kind kind;
	void *obj;
	const struct conn *owner;
};

struct handles {
	struct handle *h;
	size_t n, cap;
	uint64_t next;
};

struct handles *handles_new(void)
{
	struct handles *h = calloc(1, sizeof *h);
	if (h)
		h->next = 1;
	return h;
}

void handles_free(struct handles *h)
{
	if (h)
		free(h->h);
	free(h);
}

uint64_t handles_add(struct handles *h, enum handle_kind kind, void *obj, const struct conn *owner)
{
	if (h->n == HANDLES_MAX)
		return 0;
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct handle *n = realloc(h->h, cap * sizeof *n);
		if (!n)
			return 0;
		h->h = n;
		h->cap = cap;
	}
	h->h[h->n++] = (struct handle){ h->next, kind, obj, owner };
	return h->next++;
}

static struct handle *find(struct handles *h, uint64_t id)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->h[i].id == id)
			return &h->h[i];
	return NULL;
}

void *handles_get(struct handles *h, uint64_t id, enum handle_kind kind, const struct conn *owner)
{
	struct handle *e = find(h, id);
	if (!e || e->kind != kind || (owner && e->owner != owner))
		return NULL;
	return e->obj;
}

void handles_del(struct handles *h, uint64_t id)
{
	struct handle *e = find(h, id);
	if (e)
		*e = h->h[--h->n];
}

void handles_release(struct handles *h, const struct conn *owner, void (*fn)(enum handle_kind, void *, void *),
                     void *arg)
{
	static const enum handle_kind order[] = { H_CONTEXT, H_AS, H_MEMORY };
	for (unsigned k = 0; k < 3; k++)
		for (size_t i = 0; i < h->n;) {
			if (h->h[i].owner == owner && h->h[i].kind == order[k]) {
				fn(h->h[i].kind, h->h[i].obj, arg);
				h->h[i] = h->h[--h->n];
			} else {
				i++;
			}
		}
}
