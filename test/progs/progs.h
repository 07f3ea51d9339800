/* SPDX-License-Identifier: MIT */
/* Shared by the guest programs for `ringfence run`: syscall numbers and one-line syscall macros. */
#ifndef RINGFENCE_PROGS_H
#define RINGFENCE_PROGS_H

#define SYS_write      1
#define SYS_getpid     39
#define SYS_exit       60
#define SYS_exit_group 231

#define EBADF  9
#define EFAULT 14

/* The first user page Linux leaves unmapped above the stack; ringfence run does the same. */
#define STACK_TOP 0x7ffffffff000

/* write(fd, buf, len) with buf an address expression (lea-able); result in rax. */
.macro WRITE fd, buf, len
	mov $SYS_write, %eax
	mov \fd, %edi
	lea \buf, %rsi
	mov \len, %rdx
	syscall
.endm

/* write with a raw 64-bit buffer address, for pointers the program was never given. */
.macro WRITE_AT fd, addr, len
	mov $SYS_write, %eax
	mov \fd, %edi
	movabs \addr, %rsi
	movabs \len, %rdx
	syscall
.endm

.macro EXIT code
	mov $SYS_exit, %eax
	mov \code, %edi
	syscall
.endm

/* Exits with code unless rax == want (sign-extended 32-bit immediate, so -EFAULT works). */
.macro EXPECT want, code
	cmp \want, %rax
	je 1f
	EXIT \code
1:
.endm

/* Without it the linker warns about (and gives) an executable stack. */
#define NO_EXEC_STACK .section .note.GNU-stack, "", @progbits

#endif
