/* SPDX-License-Identifier: MIT */
/* Acceptance program: printf to stdout, the smallest thing a libc must get through the sandbox. */
#include <stdio.h>

int main(void)
{
	printf("hello, world\n");
	printf("%d %5s|%-5s| %x %o %c %%\n", 42, "ab", "cd", 0xbeefu, 8u, 'z');
	return 0;
}
