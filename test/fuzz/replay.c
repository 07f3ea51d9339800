/* SPDX-License-Identifier: MIT */
/* Replays kick fuzzer inputs (files, or every file of a directory) as TAP tests, checking invariants and each seed's expectations. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model.h"
#include "../tap.h"

/* A seed says what its interleaving must produce on a `#! expect` line: NAME=N, NAME>=N or NAME<=N
 * over these counters, so a seed that stops exercising its case fails instead of passing idly. */
static const struct {
	const char *name;
	size_t off;
} counters[] = {
#define C(f) { #f, offsetof(struct kick_fuzz_stats, f) }
	C(ops), C(kicks), C(injects), C(excused), C(reports), C(kick_reports), C(takebacks), C(clean), C(hidden_losses),
	C(switch_reports), C(ring0), C(window_requests), C(window_exits), C(events), C(eintr), C(hlt),
	C(cancels), C(drops), C(max_late),
#undef C
};

static int check_expect(const char *line, const struct kick_fuzz_stats *st, char *why, size_t whylen)
{
	char buf[512];
	snprintf(buf, sizeof buf, "%s", line);
	for (char *save, *tok = strtok_r(buf, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
		char *op = strpbrk(tok, "<>=");
		if (!op)
			continue;
		size_t len = (size_t)(op - tok);
		int kind = op[0] == '=' ? 0 : op[0] == '>' ? 1 : 2;
		const char *num = op + (kind ? 2 : 1);
		if (kind && op[1] != '=')
			return snprintf(why, whylen, "bad expectation '%s'", tok), 1;
		unsigned want = (unsigned)strtoul(num, NULL, 10), i;
		for (i = 0; i < sizeof counters / sizeof counters[0]; i++)
			if (strlen(counters[i].name) == len && !strncmp(counters[i].name, tok, len))
				break;
		if (i == sizeof counters / sizeof counters[0])
			return snprintf(why, whylen, "unknown counter in '%s'", tok), 1;
		unsigned got = *(const unsigned *)((const char *)st + counters[i].off);
		if ((kind == 0 && got != want) || (kind == 1 && got < want) || (kind == 2 && got > want))
			return snprintf(why, whylen, "expected %s, got %u", tok, got), 1;
	}
	return 0;
}

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap + 1);
	size_t r;
	while (buf && (r = fread(buf + len, 1, cap - len, f)) > 0) {
		len += r;
		if (len == cap)
			buf = realloc(buf, (cap *= 2) + 1);
	}
	fclose(f);
	if (buf)
		buf[len] = 0;
	*n = len;
	return buf;
}

/* The seed's title: its first comment line after the SPDX line ("# 06-name: what"), else the
 * file name. */
static void title(const char *data, const char *path, char *out, size_t len)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (!strncmp(data, "# SPDX-", 7) && strchr(data, '\n'))
		data = strchr(data, '\n') + 1;
	if (data[0] == '#' && data[1] == ' ') {
		size_t n = strcspn(data + 2, "\n");
		snprintf(out, len, "%.*s", (int)n, data + 2);
	} else {
		snprintf(out, len, "%s", base);
	}
}

static void replay(const char *path)
{
	size_t n;
	char *data = slurp(path, &n);
	if (!data) {
		ok(0, "%s: %s", path, strerror(errno));
		return;
	}
	char name[200], why[512] = "";
	title(data, path, name, sizeof name);
	bool verbose = getenv("KICK_FUZZ_TRACE") && getenv("KICK_FUZZ_TRACE")[0] == '1';
	char *trace = NULL;
	size_t tlen = 0;
	FILE *tf = open_memstream(&trace, &tlen);
	struct kick_fuzz_stats st;
	int bad = kick_fuzz_run_stats((const uint8_t *)data, n, &st, tf, why, sizeof why);
	fclose(tf);
	for (const char *l = strstr(data, "#! expect"); !bad && l; l = strstr(l + 1, "#! expect")) {
		const char *args = l + strlen("#! expect");
		char line[512];
		snprintf(line, sizeof line, "%.*s", (int)strcspn(args, "\n"), args);
		bad = check_expect(line, &st, why, sizeof why);
	}
	if (!ok(!bad, "%s", name) || verbose) {
		if (bad)
			printf("#   %s\n", why);
		for (char *save, *l = strtok_r(trace, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
			printf("#   %s\n", l);
	}
	free(trace);
	free(data);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s SEED|DIR...   (KICK_FUZZ_TRACE=1 prints every step)\n"
		                "       %s --decode FILE  (the input's steps as letters)\n"
		                "       %s --skip PREFIX DIR...  (leave out a directory's files named PREFIX*)\n",
		        argv[0], argv[0], argv[0]);
		return 2;
	}
	if (!strcmp(argv[1], "--decode") && argc == 3) {
		size_t n;
		char *data = slurp(argv[2], &n);
		if (!data)
			return perror(argv[2]), 1;
		char *ops = malloc(n + 1);
		ops[kick_fuzz_decode((const uint8_t *)data, n, ops, n)] = 0;
		printf("%s\n", ops);
		free(ops);
		free(data);
		return 0;
	}
	/* The planted-bug checks pass --skip bug-: a seed that fails on the real kick.c would make
	 * every mutant look caught. */
	const char *skip = NULL;
	int first = 1;
	if (!strcmp(argv[1], "--skip") && argc >= 4) {
		skip = argv[2];
		first = 3;
	}
	for (int i = first; i < argc; i++) {
		struct stat sb;
		if (stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
			struct dirent **ents;
			int k = scandir(argv[i], &ents, NULL, by_name);
			for (int j = 0; j < k; j++) {
				char path[4096];
				snprintf(path, sizeof path, "%s/%s", argv[i], ents[j]->d_name);
				bool skipped = skip && !strncmp(ents[j]->d_name, skip, strlen(skip));
				if (ents[j]->d_name[0] != '.' && !skipped && stat(path, &sb) == 0 &&
				    S_ISREG(sb.st_mode))
					replay(path);
				free(ents[j]);
			}
			if (k >= 0)
				free(ents);
			else
				ok(0, "%s: cannot read the directory", argv[i]);
		} else {
			replay(argv[i]);
		}
	}
	return tap_done();
}
