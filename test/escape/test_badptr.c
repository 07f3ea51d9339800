/* SPDX-License-Identifier: MIT */
/* Bad pointers and hostile sizes: runs the badptr guest natively and under `ringfence run`, and
 * compares the two case by case (badptr.h: `=` exact, `~` the sandbox may fail or copy less).
 *
 *   test_badptr RINGFENCE BADPTR [LABEL] */
#define _GNU_SOURCE
#include "badptr.h"
#include "driver.h"

struct outcome {
	char *name, cls, *result;
};

static struct outcome *parse(const char *out, size_t *n, bool *done)
{
	size_t cap = 64;
	struct outcome *v = malloc(cap * sizeof *v);
	*n = 0;
	*done = false;
	char *copy = strdup(out), *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strcmp(line, "done"))
			*done = true;
		char name[256], cls;
		int used = 0;
		if (strncmp(line, "case ", 5) || sscanf(line + 5, "%255s %c %n", name, &cls, &used) < 2 || !used)
			continue;
		if (*n == cap)
			v = realloc(v, (cap *= 2) * sizeof *v);
		v[(*n)++] = (struct outcome){ strdup(name), cls, strdup(line + 5 + used) };
	}
	free(copy);
	return v;
}

static void free_outcomes(struct outcome *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].result);
	}
	free(v);
}

/* `~`: the sandbox may fail with EFAULT, or copy no more than Linux did (BAD_CROSS_GOOD bytes, the
 * good part of a crossing buffer, where Linux failed). */
static bool tolerated(const char *native, const char *sandbox)
{
	if (!strcmp(native, sandbox) || !strcmp(sandbox, "EFAULT"))
		return true;
	if (sandbox[0] != '=')
		return false;
	long got = atol(sandbox + 1), most = native[0] == '=' ? atol(native + 1) : BAD_CROSS_GOOD;
	return got >= 0 && got <= most;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		printf("Bail out! usage: %s RINGFENCE BADPTR [LABEL]\n", argv[0]);
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *label = argc > 3 ? argv[3] : "glibc";
	driver_need_kvm();
	char *tmp = driver_mkdtemp("badptr");
	char path[4096], data[8192];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (char)(i % 251);
	snprintf(path, sizeof path, "%s/data", tmp);
	driver_write(path, data, sizeof data);
	snprintf(path, sizeof path, "%s/link", tmp);
	driver_symlink("data", path);
	snprintf(path, sizeof path, "%s/rw", tmp);
	driver_mkdir(path);

	struct drive_result native, sandbox;
	drive(&native, (const char *const[]){ argv[2], "ptr", tmp, NULL }, -1, DRIVER_DEADLINE);
	drive(&sandbox, (const char *const[]){ argv[1], "run", "--rw", path, "--", argv[2], "ptr", tmp, NULL }, -1,
	      DRIVER_DEADLINE);
	size_t nn, ns;
	bool native_done, sandbox_done;
	struct outcome *nat = parse(native.out, &nn, &native_done), *sb = parse(sandbox.out, &ns, &sandbox_done);
	if (!ok(native.status == 0 && native_done && nn > 200, "%s natively: %zu cases, then done", label, nn))
		drive_show(&native);
	size_t missing = 0;
	const char *first_missing = NULL;
	for (size_t i = 0; i < nn; i++) {
		const struct outcome *s = NULL;
		for (size_t j = 0; j < ns && !s; j++)
			if (!strcmp(sb[j].name, nat[i].name))
				s = &sb[j];
		if (!s) {
			if (!missing++)
				first_missing = nat[i].name;
			continue;
		}
		bool same = nat[i].cls == '~' ? tolerated(nat[i].result, s->result) : !strcmp(nat[i].result, s->result);
		if (same)
			ok(1, "%s %s: %s as Linux", label, nat[i].name, s->result);
		else
			ok(0, "%s %s: sandbox %s, Linux %s", label, nat[i].name, s->result, nat[i].result);
	}
	if (!ok(missing == 0, "%s: every case ran in the sandbox", label))
		printf("#   %zu missing, the first is %s\n", missing, first_missing);
	if (!ok(sandbox.status == 0 && sandbox_done, "%s: the sandboxed run printed done and exited 0", label))
		drive_show(&sandbox);
	else if (sandbox.errlen)
		driver_show_text("stderr", sandbox.err, 20);
	drive_free(&native);
	drive_free(&sandbox);
	driver_rmtree(tmp);
	free_outcomes(nat, nn);
	free_outcomes(sb, ns);
	free(tmp);
	return tap_done();
}
