/* SPDX-License-Identifier: MIT */
/* Guest program: getpid, which ringfence run does not serve. The syscall instruction is at entry + 5
 * (after the 5-byte `mov $imm32, %eax`), which the test checks in the message. */
#include "progs.h"

	.text
	.globl _start
_start:
	mov $SYS_getpid, %eax
	syscall
	EXIT $0

	NO_EXEC_STACK
