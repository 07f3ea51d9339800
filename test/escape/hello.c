/* SPDX-License-Identifier: MIT */
/* A libc hello, built static and static-PIE: what the loader tests run. */
#include <stdio.h>

int main(int argc, char **argv)
{
	printf("hello from %s with %d arguments\n", argc > 0 ? "a static libc program" : "nowhere", argc);
	(void)argv;
	return 0;
}
