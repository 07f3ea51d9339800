/* SPDX-License-Identifier: MIT */
/* Findings per program and the run's registry of distinct failure classes. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "findings.h"

void findings_add(struct findings *f, enum inv inv, const char *key, const char *fmt, ...)
{
	if (findings_has(f, key) || f->n == FINDINGS_MAX)
		return;
	struct finding *x = &f->f[f->n++];
	x->inv = inv;
	snprintf(x->key, sizeof x->key, "%s", key);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->detail, sizeof x->detail, fmt, ap);
	va_end(ap);
}

bool findings_has(const struct findings *f, const char *key)
{
	for (unsigned i = 0; i < f->n; i++)
		if (!strcmp(f->f[i].key, key))
			return true;
	return false;
}

void findings_normalise(char *dst, size_t n, const char *s)
{
	size_t o = 0;
	while (*s && o + 1 < n) {
		if (isdigit((unsigned char)*s)) {
			dst[o++] = '#';
			if (s[0] == '0' && s[1] == 'x')
				s += 2;
			while (isxdigit((unsigned char)*s))
				s++;
		} else {
			dst[o++] = *s++;
		}
	}
	dst[o] = 0;
}

#define CLASSES_MAX 256

static struct {
	struct finding f;
	uint64_t count, first_seed;
} classes[CLASSES_MAX];
static unsigned n_classes;
static uint64_t count_by_inv[INV_COUNT];

bool registry_note(const struct finding *f, uint64_t seed)
{
	count_by_inv[f->inv]++;
	for (unsigned i = 0; i < n_classes; i++)
		if (!strcmp(classes[i].f.key, f->key)) {
			classes[i].count++;
			return false;
		}
	if (n_classes == CLASSES_MAX)
		return false;
	classes[n_classes].f = *f;
	classes[n_classes].count = 1;
	classes[n_classes].first_seed = seed;
	n_classes++;
	return true;
}

uint64_t registry_count(enum inv inv)
{
	return count_by_inv[inv];
}

unsigned registry_classes(enum inv inv)
{
	unsigned n = 0;
	for (unsigned i = 0; i < n_classes; i++)
		n += classes[i].f.inv == inv;
	return n;
}

void registry_print(void)
{
	for (unsigned i = 0; i < n_classes; i++)
		printf("# class %u: %llu x, first at GUESTFUZZ_SEED=0x%016llx: %s\n", i + 1,
		       (unsigned long long)classes[i].count, (unsigned long long)classes[i].first_seed,
		       classes[i].f.key);
}
