/* SPDX-License-Identifier: MIT */
/* Guest program: says "ready" on stdout, then pause()s until a signal ends it. With no handler, a
 * SIGTERM sent to ringfence (forwarded to the program) must end it as it would natively: 143. */
#include "progs.h"
#define SYS_pause 34
	.text
	.globl _start
_start:
	WRITE $1, msg(%rip), $msg_len
1:	mov $SYS_pause, %eax
	syscall
	jmp 1b

	.section .rodata
msg:	.ascii "ready\n"
	.set msg_len, . - msg

	NO_EXEC_STACK
