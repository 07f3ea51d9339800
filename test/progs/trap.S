/* SPDX-License-Identifier: MIT */
/* Guest program: `trap MODE` does one forbidden thing picked by MODE's first letter, to check that
 * segment permissions hold and that each exception ends the run as the right signal would:
 *   w write own code   r write read-only data   x run data   s run stack   u read above the stack
 *   k read the shim     c non-canonical read     g cli (#GP) d divide by 0 i int3
 *   b check the 3 MiB bss is zero and writable, then exit 0 */
#include "progs.h"

	.text
	.globl _start
_start:
	cmpq $2, (%rsp)
	jae 1f
	EXIT $2
1:	mov 16(%rsp), %rax                /* argv[1] */
	movzbl (%rax), %eax
	cmp $'w', %al
	je write_text
	cmp $'r', %al
	je write_rodata
	cmp $'x', %al
	je exec_data
	cmp $'s', %al
	je exec_stack
	cmp $'u', %al
	je above_stack
	cmp $'k', %al
	je read_shim
	cmp $'c', %al
	je noncanonical
	cmp $'g', %al
	je privileged
	cmp $'d', %al
	je divide
	cmp $'i', %al
	je breakpoint
	cmp $'b', %al
	je bss_check
	EXIT $3

write_text:
	movb $0xcc, _start(%rip)
	EXIT $4
write_rodata:
	movb $0, rodata(%rip)
	EXIT $4
exec_data:
	lea data_code(%rip), %rax
	jmp *%rax
exec_stack:
	movw $0x0b0f, -16(%rsp)           /* ud2: if the stack ran, the run ends as #UD instead */
	lea -16(%rsp), %rax
	jmp *%rax
above_stack:
	movabs $STACK_TOP, %rax
	mov (%rax), %rax
	EXIT $4
read_shim:
	movabs $0xffffffffc0000000, %rax
	mov (%rax), %rax
	EXIT $4
noncanonical:
	movabs $0x0000800000000000, %rax
	mov (%rax), %rax
	EXIT $4
privileged:
	cli
	EXIT $4
divide:
	xor %ecx, %ecx
	xor %edx, %edx
	mov $1, %eax
	div %ecx
	EXIT $4
breakpoint:
	int3
	EXIT $4

bss_check:
	lea bss(%rip), %rdi
	mov $bss_len, %rcx
	xor %eax, %eax
1:	cmpb $0, -1(%rdi,%rcx)            /* every byte, top down */
	jne 2f
	loop 1b
	movb $1, bss(%rip)
	movb $1, bss + bss_len - 1(%rip)
	cmpb $1, bss + bss_len - 1(%rip)
	jne 2f
	EXIT $0
2:	EXIT $5

	.section .rodata
rodata:	.byte 1

	.data
data_code:
	ud2                               /* reached only if data were executable */

	.bss
bss:	.skip 3 << 20
	.set bss_len, . - bss

	NO_EXEC_STACK
