/* SPDX-License-Identifier: MIT */
/* Guest program: exit_group(0x12a), which must end the run with status 42: only the low 8 bits of
 * the status reach the parent, as with a native exit. */
#include "progs.h"

	.text
	.globl _start
_start:
	mov $SYS_exit_group, %eax
	mov $0x12a, %edi
	syscall
	ud2

	NO_EXEC_STACK
