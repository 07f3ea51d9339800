/* SPDX-License-Identifier: MIT */
/* Guest program: "hello, world" on stdout; exits 0 only if write returned the full length. */
#include "progs.h"

	.text
	.globl _start
_start:
	WRITE $1, msg(%rip), $msg_len
	EXPECT $msg_len, $1
	EXIT $0

	.section .rodata
msg:	.ascii "hello, world\n"
	.set msg_len, . - msg

	NO_EXEC_STACK
