/* SPDX-License-Identifier: MIT */
/* Acceptance program: argv, one chosen environment variable, the working directory and
 * /proc/self/exe. Exits 3, so that the exit status is compared too. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
	printf("argc %d\n", argc);
	for (int i = 0; i <= argc; i++)
		printf("argv[%d] = %s%s%s\n", i, argv[i] ? "\"" : "", argv[i] ? argv[i] : "NULL", argv[i] ? "\"" : "");
	const char *v = getenv("RINGFENCE_TEST_VAR");
	printf("RINGFENCE_TEST_VAR = %s\n", v ? v : "(unset)");
	printf("RINGFENCE_TEST_UNSET = %s\n", getenv("RINGFENCE_TEST_UNSET") ? "set" : "(unset)");
	int n = 0, found = 0;
	for (char **e = environ; *e; e++, n++)
		found += !strncmp(*e, "RINGFENCE_TEST_VAR=", 19);
	printf("environ has RINGFENCE_TEST_VAR %d time(s), envp == environ: %s\n", found,
	       argv + argc + 1 == environ ? "yes" : "no");
	char cwd[PATH_MAX];
	printf("getcwd: %s\n", getcwd(cwd, sizeof cwd) ? cwd : strerror(errno));
	char small[2];
	printf("getcwd into 2 bytes: %s\n", getcwd(small, sizeof small) ? "fits?" : strerror(errno));
	char exe[PATH_MAX];
	ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (k >= 0)
		exe[k] = 0;
	char *real = realpath(argv[0], NULL);
	printf("/proc/self/exe is the program: %s\n", k >= 0 && real && !strcmp(exe, real) ? "yes" : "no");
	free(real);
	printf("setenv then getenv: %s\n", setenv("RINGFENCE_TEST_NEW", "new", 1) == 0 && getenv("RINGFENCE_TEST_NEW") ?
	       getenv("RINGFENCE_TEST_NEW") : "failed");
	fflush(stdout);
	exit(3);
}
