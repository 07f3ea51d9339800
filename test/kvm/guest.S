/* SPDX-License-Identifier: MIT */
/* User-mode guest snippets for the KVM tests: position-independent, copied to KT_CODE_VA. Each
 * name_start..name_end pair is one program; comments say what the host expects at each stop. */
#include "../../ring0/ring0.h"

	.section .rodata, "a"
	.code64

	.macro guest name
	.globl \name\()_start, \name\()_end
	.balign 16
\name\()_start:
	.endm
	.macro endguest name
\name\()_end:
	.endm

/* Two syscalls: registers set by the host are seen by the first, changes by the host are seen
 * at the second. */
guest regs_roundtrip
	syscall
	syscall
	ud2
endguest regs_roundtrip

/* FS/GS base: reads through both, then sets FS with wrfsbase (from rdi). */
guest fsgs
	movq %fs:0, %rax
	movq %gs:0, %rbx
	syscall
	wrfsbase %rdi
	syscall
	ud2
endguest fsgs

/* SSE/AVX: xmm0 and ymm2's upper half take rax; then the host's xmm1 and ymm3 upper half are read
 * back; last, xmm0 is read again (another context may have run on the vCPU meanwhile). */
guest fpu
	movq %rax, %xmm0
	vinsertf128 $1, %xmm0, %ymm2, %ymm2
	syscall
	movq %xmm1, %rax
	vextractf128 $1, %ymm3, %xmm4
	movq %xmm4, %rbx
	syscall
	movq %xmm0, %rax
	vextractf128 $1, %ymm2, %xmm5
	movq %xmm5, %rbx
	syscall
	ud2
endguest fpu

/* xrstor64 of the image at (rbx), every component; then syscall. The image's MXCSR has reserved
 * bits: hardware raises #GP, QEMU's TCG CPU loads it. */
guest xrstor_mxcsr
	movl $-1, %eax
	movl $-1, %edx
	xrstor64 (%rbx)
	syscall
	ud2
endguest xrstor_mxcsr

/* Counts in rbx and exits by syscall forever: threads and stress. */
guest count_loop
1:	incq %rbx
	syscall
	jmp 1b
endguest count_loop

/* Spins reading (rdi) until it differs from rbx, counting laps in (rsi) so the host can see it
 * run, then returns the value by syscall: shows a remap or unmap on another thread. */
guest watch
1:	incq (%rsi)
	movq (%rdi), %rax
	cmpq %rax, %rbx
	je 1b
	syscall
	ud2
endguest watch

/* Loads rax from (rdi), then syscall: the smallest memory probe. */
guest load
	movq (%rdi), %rax
	syscall
	ud2
endguest load

/* Stores rsi to (rdi), then syscall. */
guest store
	movq %rsi, (%rdi)
	syscall
	ud2
endguest store

/* Jumps to rax (exec faults, non-canonical targets, the shim). */
guest jump
	jmp *%rax
endguest jump

guest divide_error
	xorl %ecx, %ecx
	divq %rcx
	ud2
endguest divide_error

guest breakpoint
	int3
	syscall
endguest breakpoint

guest int1
	.byte 0xf1            /* icebp: #DB as a trap */
	syscall
endguest int1

guest single_step
	pushfq
	orq $0x100, (%rsp)
	popfq
	nop                   /* #DB after this one */
	ud2
endguest single_step

guest int4
	int $4                /* the only way to #OF in 64-bit mode (into is invalid) */
	syscall
endguest int4

guest invalid_opcode
	ud2
endguest invalid_opcode

guest push_noncanonical
	movabsq $0x8000000000000000, %rsp
	pushq %rax
	ud2
endguest push_noncanonical

/* Misaligned load with RFLAGS.AC set by the host: #AC (CR0.AM is on). */
guest alignment
	movq 1(%rdi), %rax
	syscall
endguest alignment

guest x87_fault
	fninit
	pushq $0x37b          /* zero-divide unmasked */
	fldcw (%rsp)
	fld1
	fldz
	fdivrp
	fwait
	ud2
endguest x87_fault

guest simd_fault
	pushq $0x1d80         /* MXCSR with zero-divide unmasked */
	ldmxcsr (%rsp)
	pxor %xmm1, %xmm1
	movl $1, %eax
	cvtsi2ss %eax, %xmm0
	divss %xmm1, %xmm0
	ud2
endguest simd_fault

/* ---- hostile user code: each must be an event, nothing else ---- */
guest h_hlt
	hlt
endguest h_hlt
guest h_cli
	cli
endguest h_cli
guest h_lgdt
	lgdt (%rsp)
endguest h_lgdt
guest h_lidt
	lidt (%rsp)
endguest h_lidt
guest h_mov_cr3
	movq %rax, %cr3
endguest h_mov_cr3
guest h_wrmsr
	wrmsr
endguest h_wrmsr
guest h_rdmsr
	rdmsr
endguest h_rdmsr
guest h_in
	inb $0x40, %al
endguest h_in
guest h_out
	outb %al, $RING0_PORT_SYSCALL
endguest h_out
guest h_invlpg
	invlpg (%rsp)
endguest h_invlpg
guest h_swapgs
	swapgs
endguest h_swapgs
guest h_ltr
	movw $RING0_SEL_TSS, %ax
	ltr %ax
endguest h_ltr
/* iretq to ring 0: build a frame with the kernel code selector. */
guest h_iret_ring0
	movq %rsp, %rax
	pushq $RING0_SEL_KDATA
	pushq %rax
	pushfq
	pushq $RING0_SEL_KCODE
	leaq 1f(%rip), %rax
	pushq %rax
	iretq
1:	hlt
endguest h_iret_ring0
guest h_sysret
	sysretq
endguest h_sysret
guest h_int_kick
	int $RING0_KICK_VECTOR
endguest h_int_kick
guest h_int_pf
	int $14
endguest h_int_pf
/* Two syscalls with a non-canonical RSP (kvm-pvm then emulates ring 3 and enters ring 0 at LSTAR),
 * then RSP back from rbx and one more: each is a syscall event. Syscalls at +13, +15 and +20. */
guest h_noncanon_rsp_syscall
	movq %rsp, %rbx
	movabsq $0x800000000000, %rsp
	syscall
	syscall
	movq %rbx, %rsp
	syscall
	ud2
endguest h_noncanon_rsp_syscall
/* Single-stepping into SYSCALL: hardware delivers the #DB in ring 0 at LSTAR. */
guest h_tf_syscall
	pushfq
	orq $0x100, (%rsp)
	popfq
	syscall
	ud2
endguest h_tf_syscall
guest h_load_kernel_cs
	movw $RING0_SEL_KCODE, %ax
	movw %ax, %ds
endguest h_load_kernel_cs
/* Kicks: spins forever counting laps in (rsi) and rbx; only a kick takes it back. */
guest spin
1:	incq (%rsi)
	incq %rbx
	jmp 1b
endguest spin

/* Kicks during a fault storm: every lap faults on (rdi); the host skips the load and re-enters. */
guest fault_loop
1:	incq %rbx
	.globl fault_loop_pf, fault_loop_pf_end
fault_loop_pf:
	movq (%rdi), %rax
fault_loop_pf_end:
	jmp 1b
endguest fault_loop

/* Stress: a deterministic mix chosen by r12 % 8 after each increment: 0 syscall, 1 #PF on (rdi),
 * 2 #UD, 3 #GP (hlt), 4 #DE, 5 a tight spin, 6-7 a long loop of r14 laps. The host skips each
 * faulting instruction (labels below) and checks that the sequence of events is exactly the one
 * this code makes, whatever kicks land in between. r15 and rbp are never written. */
	.macro glabel name
	.globl \name
\name:
	.endm
guest stress
1:	incq %r12
	movq %r12, %rax
	andq $7, %rax
	jz 10f
	cmpq $1, %rax
	je 11f
	cmpq $2, %rax
	je 12f
	cmpq $3, %rax
	je 13f
	cmpq $4, %rax
	je 14f
	cmpq $5, %rax
	je 15f
	cmpq $6, %rax
	je 16f
	movq %r14, %rcx
2:	decq %rcx
	jnz 2b
	jmp 1b
10:	syscall
	jmp 1b
11:	glabel stress_pf
	movq (%rdi), %rax
	glabel stress_pf_end
	jmp 1b
12:	glabel stress_ud
	ud2
	glabel stress_ud_end
	jmp 1b
13:	glabel stress_gp
	hlt
	glabel stress_gp_end
	jmp 1b
14:	xorl %ecx, %ecx
	glabel stress_de
	divq %rcx
	glabel stress_de_end
	jmp 1b
15:	movq $64, %rcx
3:	movw %ss, %ax         /* MOV SS shadows for kicks to land beside */
	movw %ax, %ss
	decq %rcx
	jnz 3b
	jmp 1b
16:	pushfq                /* single-step one instruction: TF is set for kicks to land beside */
	orq $0x100, (%rsp)
	popfq
	glabel stress_db
	nop                   /* #DB trap after it; the host clears TF */
	glabel stress_db_end
	jmp 1b
endguest stress


/* State a context cannot carry in struct rf_regs, dirtied: DS, ES, FS, GS loaded with the selector
 * in edi (each load 2 bytes, at +0, +2, +4, +6: one that faults is skipped by the host), then
 * MXCSR and the x87 control word (which it does carry, in its FPU image). Ends in ud2. */
guest iso_dirty
	movl %edi, %ds
	movl %edi, %es
	movl %edi, %fs
	movl %edi, %gs
	subq $16, %rsp
	movl $0x9fc0, (%rsp)
	ldmxcsr (%rsp)
	movw $0x27f, 4(%rsp)
	fldcw 4(%rsp)
	addq $16, %rsp
	ud2
endguest iso_dirty

/* Reads it all back: rax ds, rbx es, r9 fs, rdx gs, r10 ss, rsi MXCSR, rdi x87 control word,
 * r8 RFLAGS; then a syscall. */
guest iso_read
	movq $0, %rax
	movw %ds, %ax
	movq $0, %rbx
	movw %es, %bx
	movq $0, %r9
	movw %fs, %r9w
	movq $0, %rdx
	movw %gs, %dx
	movq $0, %r10
	movw %ss, %r10w
	subq $16, %rsp
	stmxcsr (%rsp)
	movl (%rsp), %esi
	fnstcw 4(%rsp)
	movzwl 4(%rsp), %edi
	addq $16, %rsp
	pushfq
	popq %r8
	syscall
	ud2
endguest iso_read

/* An iretq to the next instruction with flags ring 3 cannot own: IOPL 3, VIF, VIP, reserved bits
 * 3, 5 and 15, plus AC and DF which it can. Then ud2. (AC is not set before the iretq: under QEMU's
 * TCG with KVM's shadow MMU the frame read then faults in a loop that never leaves KVM.) */
guest iso_iret_flags
	movq %rsp, %rbx
	leaq 1f(%rip), %rax
	pushq $RING0_SEL_UDATA
	pushq %rbx
	pushq $0x1f3e2a
	pushq $RING0_SEL_UCODE
	pushq %rax
	iretq
1:	ud2
endguest iso_iret_flags

/* AC and DF, which ring 3 owns, set by popfq. Then ud2. */
guest iso_popf_flags
	pushq $0x40602
	popfq
	ud2
endguest iso_popf_flags

/* wrfsbase of rdi, then a syscall. */
guest iso_wrfsbase
	wrfsbase %rdi
	syscall
	ud2
endguest iso_wrfsbase
/* An iretq to the next instruction with CS = the user DATA selector, then a syscall. Hardware
 * refuses the iretq (#GP with the selector); kvm-pvm accepts it and runs on as 32-bit code. */
guest h_iret_cs_udata
	movq %rsp, %rbx
	leaq 1f(%rip), %rax
	pushq $RING0_SEL_UDATA
	pushq %rbx
	pushq $0x202
	pushq $RING0_SEL_UDATA
	pushq %rax
	iretq
1:	syscall
	ud2
endguest h_iret_cs_udata
/* Just #UD. */
guest ud2_only
	ud2
endguest ud2_only
	.section .note.GNU-stack,"",@progbits
