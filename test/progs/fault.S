/* SPDX-License-Identifier: MIT */
/* Guest program: its first instruction writes to address 0, so the test knows the faulting RIP
 * (the entry point) and address without reading the disassembly. */
#include "progs.h"

	.text
	.globl _start
_start:
	movl $1, 0
	EXIT $0

	NO_EXEC_STACK
