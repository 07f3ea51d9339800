/* SPDX-License-Identifier: MIT */
/* Guest program: write() with buffers it was never given must return -EFAULT (and write nothing)
 * or -EBADF, never hurt the host; a buffer that runs into a hole is written up to the hole, as
 * Linux's copy stops there; good ones, also one spanning two segments or on the stack, work.
 * Prints "ABCD\nok\n" on stdout and "123\nerr\n" on stderr; a failed check exits with its own
 * status. */
#include "progs.h"

	.text
	.globl _start
_start:
	WRITE_AT $1, $0, $1
	EXPECT $-EFAULT, $1
	WRITE_AT $1, $0xffffffffc0000000, $1      /* the shim's text */
	EXPECT $-EFAULT, $2
	WRITE_AT $1, $0x0000800000000000, $1      /* first non-canonical address */
	EXPECT $-EFAULT, $3
	WRITE_AT $1, $0x10000, $1                 /* below the first segment */
	EXPECT $-EFAULT, $14
	movabs $STACK_TOP, %rax                   /* "123\n" in the last 4 bytes of the stack */
	movl $0x0a333231, -4(%rax)
	WRITE_AT $2, $(STACK_TOP - 4), $8         /* runs off the top of the stack: the 4 that exist */
	EXPECT $4, $4
	WRITE_AT $1, $(STACK_TOP - 0x800000 - 4), $8  /* starts below the stack */
	EXPECT $-EFAULT, $5
	WRITE $1, msg(%rip), $0x7fffffffffffffff  /* leaves the user half */
	EXPECT $-EFAULT, $6
	WRITE_AT $1, $STACK_TOP, $0x200000        /* nothing of it mapped */
	EXPECT $-EFAULT, $15
	WRITE $1, msg(%rip), $-1                  /* buf + len wraps around */
	EXPECT $-EFAULT, $7
	WRITE $3, msg(%rip), $1
	EXPECT $-EBADF, $8
	WRITE $0, msg(%rip), $1
	EXPECT $-EBADF, $9
	WRITE_AT $1, $0, $0                       /* nothing to read: Linux returns 0 too */
	EXPECT $0, $10

	/* "AB" ends the read-only data's last page and "CD\n" starts the data's first: one write
	 * across two regions of different protection. The linker put them next to each other here;
	 * if a different one does not, say so with its own status rather than fail obscurely. */
	lea tail_end(%rip), %rax
	lea data(%rip), %rcx
	cmp %rax, %rcx
	je 1f
	EXIT $99
1:	WRITE $1, tail(%rip), $5
	EXPECT $5, $11

	/* From the stack, below rsp as a leaf function would. */
	movl $0x000a6b6f, -8(%rsp)                /* "ok\n" */
	WRITE $1, -8(%rsp), $3
	EXPECT $3, $12
	/* fd is an int to the kernel: the upper half of rdi does not count. */
	mov $SYS_write, %eax
	movabs $0x100000002, %rdi
	lea errmsg(%rip), %rsi
	mov $4, %edx
	syscall
	EXPECT $4, $13
	EXIT $0

	.section .rodata
msg:	.ascii "x"
errmsg:	.ascii "err\n"
	.balign 4096
	.skip 4094
tail:	.ascii "AB"
tail_end:

	.data
	.balign 4096
data:	.ascii "CD\n"

	NO_EXEC_STACK
