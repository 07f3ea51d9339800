/* SPDX-License-Identifier: MIT */
/* Guest program: a syscall number no kernel has (999), then exit with minus its result: ENOSYS
 * (38) from a runtime that answers unknown syscalls as Linux does. */
#include "progs.h"
	.text
	.globl _start
_start:
	mov $999, %eax
	syscall
	mov %eax, %edi
	neg %edi
	mov $SYS_exit_group, %eax
	syscall
	ud2
	NO_EXEC_STACK
