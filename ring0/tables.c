/* SPDX-License-Identifier: MIT */
/* Builds the IDT (shared by every vCPU) and each vCPU's GDT and TSS. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ring0.h"

struct idt_gate {
	uint16_t off_lo, sel;
	uint8_t ist, type;
	uint16_t off_mid;
	uint32_t off_hi, zero;
} __attribute__((packed));
_Static_assert(sizeof(struct idt_gate) == 16, "64-bit IDT gate");

struct tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3, iomap_base;
} __attribute__((packed));
_Static_assert(sizeof(struct tss64) == 104, "64-bit TSS");

void ring0_write_idt(void *page)
{
	struct idt_gate *idt = page;
	memset(page, 0, 4096);
	uint64_t kick = RING0_VA(RING0_OFF_kick);
	idt[RING0_KICK_VECTOR] = (struct idt_gate){
		.off_lo = (uint16_t)kick, .sel = RING0_SEL_KCODE, .ist = 0, .type = 0x8e,
		.off_mid = (uint16_t)(kick >> 16), .off_hi = (uint32_t)(kick >> 32),
	};
	for (unsigned v = 0; v < RING0_NUM_VECTORS; v++) {
		uint64_t off = RING0_VA(RING0_OFF_vec_0) + v * RING0_VEC_STRIDE;
		/* Interrupt gates keep IF=0 in the shim. Only int3 and into may be raised by user
		 * software (DPL 3); `int n` to any other vector is a #GP, so user code can never fake
		 * an exception, a kick or a syscall. */
		bool user = v == 3 || v == 4;
		idt[v] = (struct idt_gate){
			.off_lo = (uint16_t)off, .sel = RING0_SEL_KCODE, .ist = v == 8 ? RING0_IST_DF : RING0_IST,
			.type = user ? 0xee : 0x8e, .off_mid = (uint16_t)(off >> 16),
			.off_hi = (uint32_t)(off >> 32),
		};
	}
}

static uint64_t seg(unsigned type, unsigned dpl, bool code64)
{
	/* base 0, limit 0xfffff, G=1; type includes the accessed bit so the CPU never writes it. */
	uint64_t d = 0xffffull | (0xfull << 48) | (1ull << 55);
	d |= (uint64_t)type << 40 | 1ull << 44 | (uint64_t)dpl << 45 | 1ull << 47;
	if (code64)
		d |= 1ull << 53;   /* L */
	else
		d |= 1ull << 54;   /* D/B */
	return d;
}

void ring0_write_gdt_tss(void *page, uint64_t page_va, uint64_t stack_top_va, uint64_t df_top_va)
{
	memset(page, 0, 4096);
	uint64_t *gdt = page;
	gdt[RING0_SEL_KCODE >> 3] = seg(0xb, 0, true);
	gdt[RING0_SEL_KDATA >> 3] = seg(0x3, 0, false);
	gdt[RING0_SEL_UDATA >> 3] = seg(0x3, 3, false);
	gdt[RING0_SEL_UCODE >> 3] = seg(0xb, 3, true);

	struct tss64 *tss = (struct tss64 *)((uint8_t *)page + RING0_TSS_OFF);
	tss->rsp[0] = stack_top_va;
	tss->ist[RING0_IST - 1] = stack_top_va;
	tss->ist[RING0_IST_DF - 1] = df_top_va;
	tss->iomap_base = sizeof *tss;   /* no I/O bitmap: every port faults in ring 3 */

	uint64_t base = page_va + RING0_TSS_OFF, limit = sizeof *tss - 1;
	/* type 0xb: busy 64-bit TSS, as KVM_SET_SREGS loads TR without an ltr. */
	gdt[RING0_SEL_TSS >> 3] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0xbull << 40 |
	                          1ull << 47 | ((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
	gdt[(RING0_SEL_TSS >> 3) + 1] = base >> 32;
}
