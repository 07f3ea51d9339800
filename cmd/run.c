/* SPDX-License-Identifier: MIT */
/* ringfence run: the command-line front of the runtime (runtime/): options in, exit status out. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "runtime.h"

_Static_assert(RUN_EXIT_PLATFORM == RT_EXIT_PLATFORM && RUN_EXIT_NOLOAD == RT_EXIT_NOLOAD &&
               RUN_EXIT_SIGNAL == RT_EXIT_SIGNAL, "the command's statuses are the runtime's");

extern char **environ;

int cmd_fail(int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	dprintf(STDERR_FILENO, "ringfence: %s\n", msg);
	return status;
}

static int usage(void)
{
	fprintf(stderr, "usage: ringfence run [--root DIR] [--rw DIR]... [--memory SIZE] [--trace[=FILE]] [--stats]\n"
	                "                     [--no-seccomp] [--] PROGRAM [ARGS...]\n");
	return 2;
}

/* "512M", "2G", "1073741824": bytes, or 0 if it is not a size. */
static uint64_t parse_size(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return 0;
	unsigned shift = 0;
	switch (toupper((unsigned char)*end)) {
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 0: break;
	default: return 0;
	}
	if (*end && strcasecmp(end, "iB") && strcasecmp(end, "B"))
		return 0;
	if (v > (UINT64_MAX >> shift))
		return 0;
	return (uint64_t)v << shift;
}

int cmd_run(int argc, char **argv)
{
	static const char *rw[64];
	struct rt_config cfg = { .envp = environ, .rw = rw };
	const char *trace = NULL;
	int i = 0;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (!strcmp(a, "--root") && i + 1 < argc) {
			cfg.root = argv[++i];
		} else if (!strcmp(a, "--rw") && i + 1 < argc) {
			if (cfg.nrw == sizeof rw / sizeof rw[0])
				return cmd_fail(2, "at most %zu --rw directories", sizeof rw / sizeof rw[0]);
			rw[cfg.nrw++] = argv[++i];
		} else if (!strcmp(a, "--memory") && i + 1 < argc) {
			cfg.memory = parse_size(argv[++i]);
			if (cfg.memory < (16ull << 20) || cfg.memory > RT_MEMORY_MAX)
				return cmd_fail(2, "--memory %s: a size from 16M to %lluG", argv[i], RT_MEMORY_MAX >> 30);
		} else if (!strcmp(a, "--trace")) {
			trace = "-";
		} else if (!strncmp(a, "--trace=", 8)) {
			trace = a + 8;
		} else if (!strcmp(a, "--stats")) {
			cfg.stats = true;
		} else if (!strcmp(a, "--no-seccomp")) {
			cfg.no_seccomp = true;
		} else {
			fprintf(stderr, "ringfence: run: unknown option '%s'\n", a);
			return usage();
		}
	}
	if (i >= argc)
		return usage();
	cfg.argv = argv + i;
	if (trace) {
		cfg.trace = !strcmp(trace, "-") ? stderr : fopen(trace, "we");
		if (!cfg.trace)
			return cmd_fail(2, "--trace=%s: %s", trace, strerror(errno));
	}
	if (cfg.no_seccomp)
		dprintf(STDERR_FILENO, "ringfence: --no-seccomp: running without a syscall filter (debugging only)\n");
	/* Output to a closed pipe must come back as EPIPE to hand to the program, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	int st = rt_run(&cfg);
	if (cfg.trace && cfg.trace != stderr)
		fclose(cfg.trace);
	return st;
}
