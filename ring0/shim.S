/* SPDX-License-Identifier: MIT */
/* The ring-0 shim: exception, interrupt and syscall entries that hand every event to the host.
 *
 * On kvm-pvm every instruction here is emulated (~1 us each), so each entry is one `out` and each
 * return one `iretq`: the host saves and restores the user registers itself through sync regs.
 * Nothing here touches a general register or memory, so a hostile user state cannot make the shim
 * misbehave; the trailing ud2 only runs if the host failed to redirect RIP, and then reports.
 */
#include "ring0.h"

	.text
	.code64

	/* One stub per vector, RING0_VEC_STRIDE bytes apart; the host builds the IDT from them. */
	.macro vector n
	.balign RING0_VEC_STRIDE
	.globl ring0_vec_\n
ring0_vec_\n:
	outb %al, $(RING0_PORT_VECTOR + \n)
	ud2
	.endm

	.globl ring0_vectors
ring0_vectors:
	.altmacro
	.set i, 0
	.rept RING0_NUM_VECTORS
	vector %i
	.set i, i + 1
	.endr

	/* The kick vector. Its gate has no IST: from ring 3 the CPU switches to RSP0 (the same stack
	 * top, so the frame is where every other exit puts it); in ring 0 it pushes below the frame
	 * the shim is using instead of overwriting it. A correct host never injects into ring 0,
	 * but a kernel without fa7a549d can deliver it there: then the host counts it and returns
	 * to the interrupted shim code, and reports the kick at the next clean exit. */
	.balign 16
	.globl ring0_kick
ring0_kick:
	testb $3, 8(%rsp)          /* the saved CS: where did it arrive? */
	jz ring0_kick_ring0
	.globl ring0_kick_user
ring0_kick_user:
	outb %al, $(RING0_PORT_VECTOR + RING0_KICK_VECTOR)
	ud2
	.globl ring0_kick_ring0
ring0_kick_ring0:
	outb %al, $RING0_PORT_KICK0
	ud2

	/* MSR_LSTAR. On hardware KVM SYSCALL lands here in ring 0 with the user's RSP: nothing is
	 * pushed. On kvm-pvm SYSCALL stays in ring 3 and this supervisor page faults instead; the
	 * host recognises that #PF (CR2 == RIP == this address) as the syscall. */
	.balign 16
	.globl ring0_syscall
ring0_syscall:
	outb %al, $RING0_PORT_SYSCALL
	ud2

	/* Return to user code from the frame the host wrote. */
	.balign 16
	.globl ring0_iret
ring0_iret:
	iretq

	/* Same, after reloading CR3: without PCIDs and global pages this flushes every user
	 * translation, which the host asks for after an unmap, a protection change or an
	 * address-space switch. RAX is the user's, so it is preserved on the IST stack. */
	.balign 16
	.globl ring0_flush_iret
ring0_flush_iret:
	pushq %rax
	movq %cr3, %rax
	movq %rax, %cr3
	popq %rax
	.globl ring0_flush_iretq
ring0_flush_iretq:
	iretq

	/* Maintenance vCPU only: makes host edits to page tables visible to a shadow MMU. RSI points
	 * at RCX virtual addresses of table pages (through a supervisor-only alias that exists only in
	 * the maintenance vCPU's root). A shadow MMU write-protects every table page it shadows, so
	 * each write here traps into KVM; a write narrower than 4 bytes counts as misaligned and drops
	 * the shadow of the whole page. Bytes 2-3 of an entry are address bits KVM never updates, and
	 * OR 0 changes nothing. The CR3 reload at the end flushes what the emulated TLB kept. */
	.balign 16
	.globl ring0_zap
ring0_zap:
	testq %rcx, %rcx
	jz 2f
1:	movq (%rsi), %rdi
	lock orw $0, 2(%rdi)
	addq $8, %rsi
	decq %rcx
	jnz 1b
2:	movq %cr3, %rax
	movq %rax, %cr3
	.globl ring0_zap_out
ring0_zap_out:
	outb %al, $RING0_PORT_ZAP
	ud2

	/* Benchmark floor only: the cheapest possible ring-0 exit, an `out` in a loop. The host
	 * parks a vCPU here to measure what one exit costs on this machine. */
	.balign 16
	.globl ring0_bench_out
ring0_bench_out:
	outb %al, $RING0_PORT_BENCH
	jmp ring0_bench_out

	.globl ring0_end
ring0_end:
