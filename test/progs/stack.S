/* SPDX-License-Identifier: MIT */
/* Guest program: checks the entry state ringfence run builds (zeroed registers, 16-byte aligned rsp
 * near the stack top, argc/argv/empty envp, auxv), then prints its arguments one per line. Each
 * failed check exits with its own status so the test says which one broke. */
#include "progs.h"

#define AT_NULL   0
#define AT_PHDR   3
#define AT_PHENT  4
#define AT_PHNUM  5
#define AT_PAGESZ 6
#define AT_ENTRY  9
#define AT_RANDOM 25
#define AT_EXECFN 31

	.text
	.globl _start
_start:
	/* Linux hands over every register but rsp zeroed; glibc's _start relies on rdx == 0. */
	mov %rax, %r8
	or %rbx, %r8
	or %rcx, %r8
	or %rdx, %r8
	or %rsi, %r8
	or %rdi, %r8
	or %rbp, %r8
	or %r9, %r8
	or %r10, %r8
	or %r11, %r8
	or %r12, %r8
	or %r13, %r8
	or %r14, %r8
	or %r15, %r8
	jz 1f
	EXIT $20
1:
	mov %rsp, %rbx
	test $15, %bl
	jz 1f
	EXIT $10
1:	/* within 64 KiB below the stack top: the arguments here are small */
	movabs $STACK_TOP, %rax
	cmp %rax, %rbx
	jae 2f
	sub %rbx, %rax
	cmp $0x10000, %rax
	jb 1f
2:	EXIT $19
1:
	mov (%rbx), %r12                  /* argc */
	lea 8(%rbx), %r13                 /* argv */
	cmpq $0, (%r13,%r12,8)
	je 1f
	EXIT $11
1:	lea 8(%r13,%r12,8), %r14          /* envp */
	cmpq $0, (%r14)
	je 1f
	EXIT $12
1:	lea 8(%r14), %r15                 /* auxv */

	xor %ebp, %ebp                    /* AT_EXECFN string */
	xor %r9d, %r9d                    /* AT_PHDR */
	xor %r10d, %r10d                  /* AT_PHNUM */
	xor %r8d, %r8d                    /* bit 0: AT_PAGESZ, 1: AT_ENTRY, 2: AT_RANDOM seen and right */
aux:	mov (%r15), %rax
	mov 8(%r15), %rdx
	add $16, %r15
	cmp $AT_NULL, %rax
	je aux_done
	cmp $AT_PAGESZ, %rax
	jne 1f
	cmp $4096, %rdx
	jne fail13
	or $1, %r8
1:	cmp $AT_ENTRY, %rax
	jne 1f
	lea _start(%rip), %rcx
	cmp %rcx, %rdx
	jne fail14
	or $2, %r8
1:	cmp $AT_RANDOM, %rax
	jne 1f
	mov (%rdx), %rcx                  /* 16 random bytes all zero: 2^-128 */
	or 8(%rdx), %rcx
	jz fail15
	or $4, %r8
1:	cmp $AT_PHENT, %rax
	jne 1f
	cmp $56, %rdx
	jne fail16
1:	cmp $AT_PHDR, %rax
	cmove %rdx, %r9
	cmp $AT_PHNUM, %rax
	cmove %rdx, %r10
	cmp $AT_EXECFN, %rax
	cmove %rdx, %rbp
	jmp aux
aux_done:
	cmp $7, %r8
	jne fail18
	/* The headers are loaded with the first segment: AT_PHDR is where the linker put them. */
	lea __ehdr_start(%rip), %rcx
	mov 32(%rcx), %rax                /* e_phoff */
	add %rcx, %rax
	cmp %rax, %r9
	jne fail16
	movzwl 56(%rcx), %eax             /* e_phnum */
	cmp %rax, %r10
	jne fail16
	/* AT_EXECFN is the path that was run, which is also argv[0] here. */
	test %rbp, %rbp
	jz fail17
	mov (%r13), %rsi
1:	mov (%rsi), %al
	cmp (%rbp), %al
	jne fail17
	inc %rsi
	inc %rbp
	test %al, %al
	jnz 1b

	/* Print argv, one per line: the strings live on the stack, so write reads them from there. */
	xor %ebx, %ebx
print:	cmp %r12, %rbx
	jae done
	mov (%r13,%rbx,8), %rsi
	xor %edx, %edx
1:	cmpb $0, (%rsi,%rdx)
	je 2f
	inc %rdx
	jmp 1b
2:	mov $SYS_write, %eax
	mov $1, %edi
	syscall
	WRITE $1, newline(%rip), $1
	inc %rbx
	jmp print
done:	EXIT $0

fail13:	EXIT $13
fail14:	EXIT $14
fail15:	EXIT $15
fail16:	EXIT $16
fail17:	EXIT $17
fail18:	EXIT $18

	.section .rodata
newline: .ascii "\n"

	NO_EXEC_STACK
