/* SPDX-License-Identifier: MIT */
/* Acceptance program: dies of SIGSEGV on purpose, after one line of output (exit status 139). */
#include <stdio.h>

int main(void)
{
	printf("about to write to address 16\n");
	fflush(stdout);
	int *volatile where = (int *)16;   /* through a volatile, so the compiler cannot see it coming */
	*where = 1;
	printf("still alive\n");
	return 0;
}
