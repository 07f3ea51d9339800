/* SPDX-License-Identifier: MIT */
/* proto_replay: runs protofuzz inputs through the harness without libFuzzer (TAP), in any build.
 *   proto_replay                    the built-in seeds; every request of a valid-* seed must succeed
 *   proto_replay [-v] FILE|DIR...   saved inputs (a crash from the fuzzer); -v: every request's answer
 *   proto_replay --write-seeds DIR  writes the built-in seeds as files, the fuzzer's starting corpus */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../tap.h"
#include "harness.h"

#define MAX_SEEDS 64

static int write_seeds(const char *dir, const struct pf_seed *s, int n)
{
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "proto_replay: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, s[i].name);
		FILE *f = fopen(path, "wb");
		if (!f || fwrite(s[i].data, 1, s[i].len, f) != s[i].len || fclose(f) != 0) {
			fprintf(stderr, "proto_replay: %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	return 0;
}

static void replay_one(const char *name, const uint8_t *data, size_t len, bool verbose, bool must_succeed)
{
	struct pf_stats st;
	if (verbose)
		printf("# %s:\n", name);
	pf_run(data, len, verbose, &st);   /* a broken check aborts: the test fails with its reason */
	if (must_succeed) {
		if (!ok(st.errors == 0 && st.requests > 0, "%s: %u requests, every one answered with its result", name,
		        st.requests))
			printf("#   %u errors, the first at %s\n", st.errors, st.first_error);
	} else {
		ok(1, "%s: %u requests, %u refused, every response well formed", name, st.requests, st.errors);
	}
}

static int replay_path(const char *path, bool verbose);

static void replay_dir(const char *dir, bool verbose)
{
	struct dirent **e;
	int n = scandir(dir, &e, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		if (e[i]->d_name[0] != '.') {
			char p[4096];
			snprintf(p, sizeof p, "%s/%s", dir, e[i]->d_name);
			replay_path(p, verbose);
		}
		free(e[i]);
	}
	if (n >= 0)
		free(e);
}

static int replay_path(const char *path, bool verbose)
{
	struct stat sb;
	if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		replay_dir(path, verbose);
		return 0;
	}
	FILE *f = fopen(path, "rb");
	uint8_t *data = malloc(sb.st_size > 0 ? (size_t)sb.st_size : 1);
	size_t len = f && data ? fread(data, 1, (size_t)sb.st_size, f) : 0;
	if (!ok(f && data && (len == (size_t)sb.st_size), "%s read", path)) {
		free(data);
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	replay_one(path, data, len, verbose, false);
	free(data);
	return 0;
}

int main(int argc, char **argv)
{
	struct pf_seed seeds[MAX_SEEDS];
	int n = pf_seeds(seeds, MAX_SEEDS);
	if (n < 0) {
		fprintf(stderr, "proto_replay: out of memory\n");
		return 1;
	}
	if (argc == 3 && !strcmp(argv[1], "--write-seeds")) {
		int r = write_seeds(argv[2], seeds, n);
		for (int i = 0; i < n; i++)
			free(seeds[i].data);
		return r;
	}
	bool verbose = argc > 1 && !strcmp(argv[1], "-v");
	char why[512];
	int r = pf_setup(why, sizeof why);
	if (r > 0)
		tap_skip_all(why);
	if (r < 0) {
		printf("Bail out! rf_platform_create: %s\n", why);
		return 1;
	}
	if (argc > 1 + verbose) {
		for (int i = 1 + verbose; i < argc; i++)
			replay_path(argv[i], verbose);
	} else {
		for (int i = 0; i < n; i++)
			replay_one(seeds[i].name, seeds[i].data, seeds[i].len, verbose, !strncmp(seeds[i].name, "valid-", 6));
	}
	for (int i = 0; i < n; i++)
		free(seeds[i].data);
	return tap_done();
}
