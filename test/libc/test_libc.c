/* SPDX-License-Identifier: MIT */
/* Acceptance: each test/libc program, built with glibc and with musl, runs natively and under
 * `ringfence run`; stdout must match byte for byte and the exit status must be the same.
 *
 *   test_libc RINGFENCE FIXTURE_DIR [no-musl] PROGRAM...
 * Programs are found by file name, NAME-glibc and NAME-musl. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"
#include "tap.h"

#define BUDGET 270   /* seconds for the whole test; meson gives it 300 */

struct lcase {
	const char *prog;
	const char *args[5];
	const char *stdin_file;   /* in the fixture directory */
	int status;               /* what the native run must exit with */
	bool dies;                /* the runner must say "ringfence: ... SIGSEGV" on stderr */
};

static const struct lcase cases[] = {
	{ "hello", { NULL }, NULL, 0, false },
	{ "readfile", { "text.txt" }, NULL, 0, false },
	{ "readfile", { NULL }, "stdin.txt", 0, false },
	{ "listdir", { "dir" }, NULL, 0, false },
	{ "args", { "one", "two words", "", "--three" }, NULL, 3, false },
	{ "memory", { NULL }, NULL, 0, false },
	{ "signals", { NULL }, NULL, 0, false },
	{ "timers", { NULL }, NULL, 0, false },
	{ "clocks", { NULL }, NULL, 0, false },
	{ "float", { NULL }, NULL, 0, false },
	{ "vector", { NULL }, NULL, 0, false },
	{ "segfault", { NULL }, NULL, 128 + 11, true },
};

static char *const *programs;
static int nprograms;

static const char *find(const char *name)
{
	for (int i = 0; i < nprograms; i++) {
		const char *slash = strrchr(programs[i], '/');
		if (!strcmp(slash ? slash + 1 : programs[i], name))
			return programs[i];
	}
	return NULL;
}

/* Has stderr a line "ringfence: ..." that names SIGSEGV? */
static bool says_segv(const char *err)
{
	for (const char *line = err; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		if (!strncmp(line, "ringfence: ", 11) && memmem(line, len, "SIGSEGV", 7))
			return true;
	}
	return false;
}

static void one(const struct lcase *c, const char *libc, const char *fixture)
{
	char name[64], label[160], stdin_path[4096];
	snprintf(name, sizeof name, "%s-%s", c->prog, libc);
	snprintf(label, sizeof label, "%s%s%s (%s)", c->prog, c->stdin_file ? " < " : "",
	         c->stdin_file ? c->stdin_file : "", libc);
	const char *path = find(name);
	if (!path) {
		ok(0, "%s", label);
		printf("#   program %s not among the arguments\n", name);
		return;
	}
	char *real = realpath(path, NULL);
	const char *argv[8] = { real ? real : path };
	for (int i = 0; i < 5 && c->args[i]; i++)
		argv[i + 1] = c->args[i];
	if (c->stdin_file)
		snprintf(stdin_path, sizeof stdin_path, "%s/%s", fixture, c->stdin_file);
	struct cmp_spec spec = { .argv = argv, .stdin_path = c->stdin_file ? stdin_path : NULL, .cwd = fixture };
	struct cmp_result native, boxed;
	cmp_run(&native, &spec, false);
	cmp_run(&boxed, &spec, true);
	bool native_good = native.status == c->status && native.outlen > 0;
	bool same = cmp_same(&native, &boxed);
	bool said = !c->dies || says_segv(boxed.err);
	if (!ok(native_good && same && said, "%s", label)) {
		if (!native_good) {
			printf("#   the native run itself is wrong: status %d, want %d, %zu bytes of output\n", native.status,
			       c->status, native.outlen);
			cmp_show("native", &native);
		} else if (!same) {
			cmp_explain(&native, &boxed);
		} else {
			printf("#   the runner's stderr has no line \"ringfence: ...SIGSEGV...\"\n");
			cmp_show("sandboxed", &boxed);
		}
	}
	cmp_free(&native);
	cmp_free(&boxed);
	free(real);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		printf("Bail out! usage: %s RINGFENCE FIXTURE_DIR [no-musl] PROGRAM...\n", argv[0]);
		return 1;
	}
	bool musl = strcmp(argv[3], "no-musl") != 0;
	programs = argv + (musl ? 3 : 4);
	nprograms = argc - (musl ? 3 : 4);
	char *fixture = realpath(argv[2], NULL);
	if (!fixture) {
		printf("Bail out! fixture directory %s not found\n", argv[2]);
		return 1;
	}
	cmp_init(argv[1], BUDGET);
	setenv("RINGFENCE_TEST_VAR", "a value with spaces = and an equals sign", 1);
	unsetenv("RINGFENCE_TEST_UNSET");

	const char *probe[] = { find("hello-glibc"), NULL };
	if (!probe[0]) {
		printf("Bail out! hello-glibc not among the arguments\n");
		return 1;
	}
	cmp_require_kvm(probe);

	static const char *const libcs[] = { "glibc", "musl" };
	for (int l = 0; l < 2; l++) {
		if (l == 1 && !musl) {
			printf("# musl-gcc was not found when the build was configured: only glibc programs were built\n");
			ok(1, "musl variants # SKIP musl-gcc not found (install musl-tools)");
			continue;
		}
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
			one(&cases[i], libcs[l], fixture);
	}
	free(fixture);
	return tap_done();
}
