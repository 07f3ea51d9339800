/* SPDX-License-Identifier: MIT */
/* Guest program: an illegal instruction at the entry point (#UD, which a native run gets as SIGILL). */
#include "progs.h"

	.text
	.globl _start
_start:
	ud2
	EXIT $0

	NO_EXEC_STACK
