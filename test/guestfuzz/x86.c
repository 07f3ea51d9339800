/* SPDX-License-Identifier: MIT */
/* The x86-64 encodings the fuzzer needs, written out once; each is checked by disassembly in the
 * program dump (GUESTFUZZ_DUMP=1 writes the bytes for objdump -D -b binary -mi386:x86-64). */
#include <string.h>

#include "x86.h"

void x86_bytes(struct x86 *a, const uint8_t *p, size_t n)
{
	/* Overflow would only truncate a program; generators stay far below X86_MAX. */
	if (a->n + n > X86_MAX)
		n = X86_MAX - a->n;
	memcpy(a->b + a->n, p, n);
	a->n += n;
}

void x86_u8(struct x86 *a, uint8_t v)
{
	x86_bytes(a, &v, 1);
}

void x86_u16(struct x86 *a, uint16_t v)
{
	uint8_t p[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	x86_bytes(a, p, 2);
}

void x86_u32(struct x86 *a, uint32_t v)
{
	x86_u16(a, (uint16_t)v);
	x86_u16(a, (uint16_t)(v >> 16));
}

void x86_u64(struct x86 *a, uint64_t v)
{
	x86_u32(a, (uint32_t)v);
	x86_u32(a, (uint32_t)(v >> 32));
}

uint64_t x86_here(const struct x86 *a)
{
	return a->va + a->n;
}

static void rex(struct x86 *a, unsigned w, unsigned r, unsigned b)
{
	x86_u8(a, (uint8_t)(0x40 | (w << 3) | ((r >> 3) << 2) | (b >> 3)));
}

void x86_mov_imm(struct x86 *a, unsigned reg, uint64_t v)
{
	rex(a, 1, 0, reg);
	x86_u8(a, (uint8_t)(0xb8 + (reg & 7)));
	x86_u64(a, v);
}

void x86_push(struct x86 *a, unsigned reg)
{
	if (reg >= 8)
		x86_u8(a, 0x41);
	x86_u8(a, (uint8_t)(0x50 + (reg & 7)));
}

void x86_pop(struct x86 *a, unsigned reg)
{
	if (reg >= 8)
		x86_u8(a, 0x41);
	x86_u8(a, (uint8_t)(0x58 + (reg & 7)));
}

void x86_push_imm(struct x86 *a, uint64_t v)
{
	x86_mov_imm(a, RAX, v);
	x86_push(a, RAX);
}

void x86_mov_to_sreg(struct x86 *a, unsigned sreg, uint16_t sel)
{
	x86_u8(a, 0xb8);                    /* mov $sel, %eax */
	x86_u32(a, sel);
	x86_u8(a, 0x8e);                    /* mov %eax, %sreg */
	x86_u8(a, (uint8_t)(0xc0 | (sreg << 3)));
}

void x86_mov_from_sreg(struct x86 *a, unsigned reg, unsigned sreg)
{
	rex(a, 1, 0, reg);                  /* REX.W: the selector zero-extended into all 64 bits */
	x86_u8(a, 0x8c);
	x86_u8(a, (uint8_t)(0xc0 | (sreg << 3) | (reg & 7)));
}

void x86_store_reg(struct x86 *a, unsigned reg, uint64_t addr)
{
	unsigned base = reg == RAX ? RDX : RAX;
	x86_mov_imm(a, base, addr);
	rex(a, 1, reg, base);               /* mov %reg, (%base) */
	x86_u8(a, 0x89);
	x86_u8(a, (uint8_t)(((reg & 7) << 3) | (base & 7)));
}

void x86_set_tf(struct x86 *a)
{
	X86(a, 0x9c, 0x48, 0x81, 0x0c, 0x24, 0x00, 0x01, 0x00, 0x00, 0x9d);
}
