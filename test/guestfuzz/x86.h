/* SPDX-License-Identifier: MIT */
/* A tiny x86-64 encoder: appends machine code to a buffer, for the snippet menu and the checker. */
#ifndef GUESTFUZZ_X86_H
#define GUESTFUZZ_X86_H

#include <stddef.h>
#include <stdint.h>

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };
enum { SR_ES, SR_CS, SR_SS, SR_DS, SR_FS, SR_GS };

#define X86_MAX 8192

struct x86 {
	uint8_t b[X86_MAX];
	size_t n;
	uint64_t va;        /* guest address of b[0], for absolute targets */
};

void x86_bytes(struct x86 *a, const uint8_t *p, size_t n);
#define X86(a, ...)                                                                               \
	do {                                                                                      \
		static const uint8_t x86_b_[] = { __VA_ARGS__ };                                  \
		x86_bytes((a), x86_b_, sizeof x86_b_);                                            \
	} while (0)
void x86_u8(struct x86 *a, uint8_t v);
void x86_u16(struct x86 *a, uint16_t v);
void x86_u32(struct x86 *a, uint32_t v);
void x86_u64(struct x86 *a, uint64_t v);

uint64_t x86_here(const struct x86 *a);                    /* guest address of the next byte */
void x86_mov_imm(struct x86 *a, unsigned reg, uint64_t v); /* movabs $v, %reg */
void x86_push(struct x86 *a, unsigned reg);
void x86_pop(struct x86 *a, unsigned reg);
void x86_push_imm(struct x86 *a, uint64_t v);              /* via %rax */
void x86_mov_to_sreg(struct x86 *a, unsigned sreg, uint16_t sel); /* via %eax */
void x86_mov_from_sreg(struct x86 *a, unsigned reg, unsigned sreg); /* zero-extended to 64 bits */
void x86_store_reg(struct x86 *a, unsigned reg, uint64_t addr);  /* mov %reg, addr (via %rax as base unless reg is rax) */
void x86_set_tf(struct x86 *a);                            /* pushfq; orq $0x100,(%rsp); popfq */

#endif
