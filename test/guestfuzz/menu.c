/* SPDX-License-Identifier: MIT */
/* The snippet menu: each kind draws its parameters from the seed, then emits ring-3 machine code.
 * Parameters are stored, not re-drawn, so a program can be shrunk snippet by snippet. */
#include "program.h"

enum kind {
	K_SEG, K_SHADOW, K_IRET, K_POPF, K_SYSCALL, K_PRIV, K_FSGS, K_XSTATE, K_MXCSR, K_FCW, K_VEC,
	K_JUMP, K_MEM, K_DIV, K_RANDOM, K_GPR, K_RSP, K_SPIN, K_COUNT
};

static const char *const names[K_COUNT] = {
	"seg", "shadow", "iret", "popf", "syscall", "priv", "fsgs", "xstate", "mxcsr", "fcw", "vec",
	"jump", "mem", "div", "random", "gpr", "rsp", "spin",
};

/* Relative weights: odd states and the instructions that leave them come often; spins rarely,
 * since each costs a watchdog timeout. */
static const unsigned weight[K_COUNT] = {
	[K_SEG] = 10, [K_SHADOW] = 6, [K_IRET] = 8, [K_POPF] = 6, [K_SYSCALL] = 10, [K_PRIV] = 8,
	[K_FSGS] = 6, [K_XSTATE] = 6, [K_MXCSR] = 5, [K_FCW] = 4, [K_VEC] = 4, [K_JUMP] = 6,
	[K_MEM] = 6, [K_DIV] = 2, [K_RANDOM] = 5, [K_GPR] = 4, [K_RSP] = 8, [K_SPIN] = 0,
};

unsigned menu_kinds(void)
{
	return K_COUNT;
}

const char *choice_name(const struct choice *c)
{
	return c->kind < K_COUNT ? names[c->kind] : "code";   /* a replayed reproducer */
}

static const uint16_t selectors[] = { 0, 0x18, 0x19, 0x1a, 0x1b, 0x23, 0x2b, 0x28, 0x08, 0x10, 0x13, 0x03, 0x20 };

static uint16_t draw_selector(struct rng *r)
{
	if (rng_one_in(r, 6))
		return (uint16_t)rng_next(r);
	return selectors[rng_below(r, sizeof selectors / sizeof selectors[0])];
}

/* RFLAGS a caller or a program might try: the interesting bits one by one, sometimes anything. */
static uint64_t draw_rflags(struct rng *r)
{
	static const uint64_t bits[] = {
		0x100 /* TF */, 0x40000 /* AC */, 0x400 /* DF */, 0x4000 /* NT */, 0x3000 /* IOPL */,
		0x80000 /* VIF */, 0x100000 /* VIP */, 0x10000 /* RF */, 0x200000 /* ID */, 0x20000 /* VM */,
		0x8 /* reserved */, 0x20, 0x8000, 0x400000, 1ull << 63, 0x1 /* CF */, 0x800 /* OF */,
	};
	if (rng_one_in(r, 8))
		return rng_next(r);
	uint64_t f = 0x2 | (rng_one_in(r, 4) ? 0 : 0x200);
	for (unsigned i = 0; i < sizeof bits / sizeof bits[0]; i++)
		if (rng_one_in(r, 5))
			f |= bits[i];
	return f;
}

/* Addresses worth touching: the edges of the user half, the shim, and the non-canonical hole. */
static uint64_t draw_address(struct rng *r)
{
	uint64_t x = rng_next(r);
	switch (rng_below(r, 12)) {
	case 0: return 0;
	case 1: return x & 0x7fffffffffffull;
	case 2: return GF_DATA_VA + (x & 0xfff8);
	case 3: return GF_CODE_VA + (x & 0xfff);
	case 4: return GF_STACK_TOP - 8 - (x & 0xff8);
	case 5: return GF_STACK_TOP + (x & 0xff8);
	case 6: return GF_SHIM_VA + (x & 0x3ff8);
	case 7: return 0xffff800000000000ull | x;
	case 8: return RF_USER_END + (x & 0xffff);
	case 9: return 0x7ffffffffff9ull;
	case 10: return 0x7ffffffffffeull;
	default: return x;
	}
}

void menu_draw(struct rng *r, struct choice *c)
{
	unsigned total = 0;
	for (unsigned k = 0; k < K_COUNT; k++)
		total += weight[k];
	unsigned w = rng_below(r, total), k = 0;
	while (w >= weight[k])
		w -= weight[k++];
	/* A spin now and then, so the watchdog's kick is exercised in every default run. */
	if (rng_one_in(r, 1500))
		k = K_SPIN;
	c->kind = (uint8_t)k;
	c->sub = (uint8_t)rng_next(r);
	c->a = rng_next(r);
	c->b = rng_next(r);
	c->c = rng_next(r);
	c->d = rng_next(r);
	switch (k) {
	case K_SEG:
		c->b = draw_selector(r);
		break;
	case K_SHADOW:
		c->b = rng_one_in(r, 2) ? 0x1b : draw_selector(r);
		break;
	case K_IRET:
		/* 0x1b (user data) as CS is the selector that reached the shim's LSTAR page */
		c->a = rng_one_in(r, 3) ? 0x23 : rng_one_in(r, 2) ? 0x1b : draw_selector(r);
		c->b = draw_rflags(r);
		c->d = (c->d & ~0xffffull) | (rng_one_in(r, 2) ? 0x1b : draw_selector(r));
		break;
	case K_POPF:
		c->a = draw_rflags(r);
		break;
	case K_JUMP:
	case K_MEM:
		c->a = draw_address(r);
		break;
	default:
		break;
	}
}

static void mov_eax_edx(struct x86 *a, uint64_t v)
{
	x86_u8(a, 0xb8);
	x86_u32(a, (uint32_t)v);
	x86_u8(a, 0xba);
	x86_u32(a, (uint32_t)(v >> 32));
}

static void emit_seg(struct x86 *a, const struct choice *c)
{
	static const unsigned sregs[] = { SR_DS, SR_ES, SR_FS, SR_GS, SR_SS, SR_DS, SR_FS, SR_CS };
	switch (c->sub % 5) {
	case 0: case 1:
		x86_mov_to_sreg(a, sregs[c->a % 8], (uint16_t)c->b);
		break;
	case 2:                                   /* pop %fs / pop %gs */
		x86_push_imm(a, c->b);
		X86(a, 0x0f);
		x86_u8(a, c->a & 1 ? 0xa1 : 0xa9);
		break;
	case 3:                                   /* pop %ss, %ds, %es: invalid in 64-bit mode */
		x86_u8(a, (uint8_t[]){ 0x17, 0x1f, 0x07 }[c->a % 3]);
		break;
	default:                                  /* push %fs; pop %gs: a selector moved as data */
		X86(a, 0x0f, 0xa0, 0x0f, 0xa9);
		break;
	}
}

/* What follows a MOV SS, or an odd state: each leaves ring 3 in its own way. */
static void emit_exit_insn(struct x86 *a, unsigned which, uint8_t n)
{
	switch (which % 8) {
	case 0: X86(a, 0x0f, 0x05); break;                        /* syscall */
	case 1: X86(a, 0xcc); break;                              /* int3 */
	case 2: X86(a, 0x0f, 0x0b); break;                        /* ud2 */
	case 3: X86(a, 0xf1); break;                              /* icebp */
	case 4: x86_u8(a, 0xcd); x86_u8(a, n); break;             /* int $n */
	case 5: X86(a, 0xf4); break;                              /* hlt */
	case 6: X86(a, 0x48, 0x8b, 0x08); break;                  /* mov (%rax), %rcx */
	default: X86(a, 0x0f, 0x05, 0x0f, 0x05); break;           /* two syscalls */
	}
}

static void emit_shadow(struct x86 *a, const struct choice *c)
{
	if (c->sub & 1)
		x86_set_tf(a);
	if (c->sub & 2)
		X86(a, 0x8c, 0xd0, 0x8e, 0xd0);                   /* mov %ss,%eax; mov %eax,%ss */
	else
		x86_mov_to_sreg(a, SR_SS, (uint16_t)c->b);
	emit_exit_insn(a, (unsigned)c->a, (uint8_t)c->c);
}

static uint64_t rip_target(const struct choice *c, uint64_t next)
{
	uint64_t x = c->c;
	switch ((c->d >> 16) % 12) {
	case 6: return RF_USER_END + (x & 0xfff);
	case 7: return GF_SHIM_VA + (x & 0x1f8);
	case 8: return x & 0x7fffffffffffull;
	case 9: return 0xffff800000000000ull | x;
	case 10: return 0x7ffffffffffeull;
	case 11: return x;
	default: return next;
	}
}

static void emit_iret(struct x86 *a, const struct choice *c)
{
	if (c->sub & 1) {                                         /* lretq: rip, cs */
		x86_push_imm(a, c->a);
		uint64_t next = x86_here(a) + 11 + 2 + 0;
		x86_push_imm(a, rip_target(c, next));
		X86(a, 0x48, 0xcb);
	} else {                                                  /* iretq: rip, cs, rflags, rsp, ss */
		X86(a, 0x48, 0x89, 0xe3);                             /* mov %rsp, %rbx */
		x86_push_imm(a, c->d & 0xffff);
		switch ((c->d >> 24) % 8) {
		case 4: x86_push_imm(a, RF_USER_END); break;
		case 5: x86_push_imm(a, c->c | 0x8000000000000000ull); break;
		case 6: x86_push_imm(a, GF_SHIM_VA + 0x200000 + (c->c & 0xff8)); break;
		case 7: X86(a, 0x48, 0x8d, 0x43, 0xfd); x86_push(a, RAX); break; /* lea -3(%rbx) */
		default: x86_push(a, RBX); break;
		}
		x86_push_imm(a, c->b);
		x86_push_imm(a, c->a);
		uint64_t next = x86_here(a) + 11 + 2;
		x86_push_imm(a, rip_target(c, next));
		X86(a, 0x48, 0xcf);
	}
	if (c->sub & 2)
		X86(a, 0x0f, 0x05);                                   /* then a syscall */
}

static void emit_popf(struct x86 *a, const struct choice *c)
{
	x86_push_imm(a, c->a);
	X86(a, 0x9d);
	for (unsigned i = 0; i < (c->sub >> 4) % 4; i++)
		X86(a, 0x90);
	if (c->sub & 1)
		X86(a, 0x0f, 0x05);
}

static void emit_syscall(struct x86 *a, const struct choice *c)
{
	switch (c->sub % 9) {
	case 0: X86(a, 0x0f, 0x05); break;
	case 1:                                                   /* the kvm-pvm emulation trigger */
		x86_mov_imm(a, RSP, RF_USER_END);
		X86(a, 0x0f, 0x05, 0x0f, 0x05);
		break;
	case 2: x86_mov_imm(a, RSP, c->a | 0x8000000000000000ull); X86(a, 0x0f, 0x05); break;
	case 3: x86_mov_imm(a, RSP, 0xffffffffc0202000ull); X86(a, 0x0f, 0x05); break;
	case 4: x86_mov_imm(a, RSP, GF_STACK_TOP - 3); X86(a, 0x0f, 0x05); break;
	case 5: x86_set_tf(a); X86(a, 0x0f, 0x05); break;
	case 6: x86_push_imm(a, c->a); X86(a, 0x9d, 0x0f, 0x05); break;
	case 7: x86_mov_imm(a, RCX, c->b); x86_mov_imm(a, R11, c->c); X86(a, 0x0f, 0x05); break;
	default:                                                  /* sysenter, sysretq, sysexit */
		if (c->a % 3 == 0)
			X86(a, 0x0f, 0x34);
		else if (c->a % 3 == 1)
			X86(a, 0x48, 0x0f, 0x07);
		else
			X86(a, 0x0f, 0x35);
		break;
	}
}

static void emit_priv(struct x86 *a, const struct choice *c)
{
	switch (c->sub % 24) {
	case 0: x86_u8(a, 0xcd); x86_u8(a, (uint8_t)c->a); break;        /* int $n */
	case 1: X86(a, 0xcc); break;
	case 2: X86(a, 0xf1); break;
	case 3: X86(a, 0xce); break;                                      /* into: #UD in 64-bit */
	case 4: X86(a, 0x0f, 0x0b); break;
	case 5: X86(a, 0xf4); break;
	case 6: X86(a, 0xfa); break;
	case 7: X86(a, 0xfb); break;
	case 8: x86_u8(a, 0xe4); x86_u8(a, (uint8_t)c->a); break;        /* in $n, %al */
	case 9: x86_u8(a, 0xe6); x86_u8(a, (uint8_t)c->a); break;        /* out %al, $n */
	case 10: x86_mov_imm(a, RDX, c->a & 0xffff); X86(a, 0xec); break;
	case 11: x86_mov_imm(a, RDX, c->a & 0xffff); X86(a, 0xee); break;
	case 12: x86_mov_imm(a, RCX, c->b); X86(a, 0x0f, 0x32); break;    /* rdmsr */
	case 13: x86_mov_imm(a, RCX, 0xc0000082); X86(a, 0x0f, 0x30); break; /* wrmsr LSTAR */
	case 14: X86(a, 0x0f, 0x01, 0xf8); break;                         /* swapgs */
	case 15: x86_mov_imm(a, RAX, GF_DATA_VA + 0xff40); X86(a, 0x0f, 0x01, 0x00); break; /* sgdt */
	case 16: x86_mov_imm(a, RAX, c->b & 0xf); X86(a, 0x0f, 0xa2); break; /* cpuid */
	case 17: X86(a, 0x0f, 0x31); break;                               /* rdtsc */
	case 18: x86_mov_imm(a, RCX, c->b & 3); X86(a, 0x0f, 0x33); break; /* rdpmc */
	case 19: x86_mov_imm(a, RCX, c->b & 1); X86(a, 0x0f, 0x01, 0xd0); break; /* xgetbv */
	case 20: X86(a, 0x0f, 0x20, 0xc0); break;                         /* mov %cr0, %rax */
	case 21: X86(a, 0x0f, 0x06); break;                               /* clts */
	case 22: X86(a, 0x0f, 0x01, 0xf9); break;                         /* rdtscp */
	default: X86(a, 0x0f, 0x00, 0xc8); break;                         /* str %eax */
	}
}

static uint64_t draw_base(uint64_t kind, uint64_t x)
{
	switch (kind % 7) {
	case 0: return 0;
	case 1: return x & 0x7fffffffffffull;
	case 2: return RF_USER_END | (x & 0xffffffffull);
	case 3: return 0xffff800000000000ull | x;
	case 4: return GF_DATA_VA;
	case 5: return x;
	default: return 0x7ffffffff000ull;
	}
}

static void emit_fsgs(struct x86 *a, const struct choice *c)
{
	static const uint8_t modrm[] = { 0xd0, 0xd8, 0xc0, 0xc8 };  /* wrfs, wrgs, rdfs, rdgs %rax */
	x86_mov_imm(a, RAX, draw_base(c->a, c->b));
	X86(a, 0xf3, 0x48, 0x0f, 0xae);
	x86_u8(a, modrm[c->sub % 4]);
	if (c->sub & 4)
		X86(a, 0x64, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0);     /* mov %fs:0, %rax */
	if (c->sub & 8)
		X86(a, 0x0f, 0x05);
}

static void emit_xstate(struct x86 *a, const struct choice *c)
{
	static const uint8_t ops[][4] = {
		{ 0x48, 0x0f, 0xae, 0x2b }, /* xrstor64 (%rbx) */
		{ 0x48, 0x0f, 0xae, 0x23 }, /* xsave64 */
		{ 0x48, 0x0f, 0xae, 0x0b }, /* fxrstor64 */
		{ 0x48, 0x0f, 0xae, 0x03 }, /* fxsave64 */
		{ 0x48, 0x0f, 0xae, 0x33 }, /* xsaveopt64 */
		{ 0x48, 0x0f, 0xc7, 0x23 }, /* xsavec64 */
		{ 0x48, 0x0f, 0xc7, 0x1b }, /* xrstors64: ring 0 only */
		{ 0x90, 0x0f, 0xae, 0x0b }, /* fxrstor (legacy layout) */
		{ 0x90, 0x0f, 0xae, 0x2b }, /* xrstor */
		{ 0x48, 0x0f, 0xae, 0x2b }, /* xrstor64 again: the interesting one */
	};
	/* The garbage area holds crafted images every 4 KiB (see program_garbage). */
	uint64_t off = (c->a % (GF_GARBAGE / 4096)) * 4096;
	if (rng_mix(c->a) % 8 == 0)
		off += c->a >> 58;                                  /* misaligned: #GP */
	x86_mov_imm(a, RBX, GF_DATA_VA + off);
	uint64_t mask = c->b % 4 == 0 ? ~0ull : c->b % 4 == 1 ? 7 : rng_mix(c->b);
	mov_eax_edx(a, mask);
	x86_bytes(a, ops[c->sub % 10], 4);
}

static void emit_mxcsr(struct x86 *a, const struct choice *c)
{
	static const uint32_t vals[] = { 0x1f80, 0x1d80, 0xffbf, 0x9fc0, 0x10000, 0x0, 0x7f80 };
	uint32_t v = c->b % 3 == 0 ? (uint32_t)c->a : c->b % 3 == 1 ? (uint32_t)c->a & 0xffff :
	             vals[(c->a >> 32) % 7];
	x86_mov_imm(a, RBX, GF_DATA_VA + 0xff00);
	X86(a, 0xc7, 0x03);                                       /* movl $v, (%rbx) */
	x86_u32(a, v);
	X86(a, 0x0f, 0xae, 0x13);                                 /* ldmxcsr (%rbx) */
	if (c->sub & 1)                                           /* 1.0 / 0.0 in SSE */
		X86(a, 0x66, 0x0f, 0xef, 0xc9, 0xb8, 1, 0, 0, 0, 0xf3, 0x0f, 0x2a, 0xc0, 0xf3, 0x0f, 0x5e, 0xc1);
}

static void emit_fcw(struct x86 *a, const struct choice *c)
{
	x86_mov_imm(a, RBX, GF_DATA_VA + 0xff10);
	if (c->sub & 2)
		X86(a, 0xdb, 0xe3);                                   /* fninit */
	X86(a, 0x66, 0xc7, 0x03);                                 /* movw $v, (%rbx) */
	x86_u16(a, c->b & 1 ? 0x037b : (uint16_t)c->a);
	X86(a, 0xd9, 0x2b);                                       /* fldcw (%rbx) */
	if (c->sub & 1)                                           /* 1.0 / 0.0 in x87, then fwait */
		X86(a, 0xd9, 0xe8, 0xd9, 0xee, 0xde, 0xf1, 0x9b);
}

static void emit_vec(struct x86 *a, const struct choice *c)
{
	x86_mov_imm(a, RBX, GF_DATA_VA + (c->a & 0xffc0));
	uint8_t n = (uint8_t)((c->b & 7) << 3 | 3);              /* register n, memory (%rbx) */
	switch (c->sub % 7) {
	case 0: X86(a, 0xc5, 0xfe, 0x6f); x86_u8(a, n); break;    /* vmovdqu (%rbx), %ymmN */
	case 1: X86(a, 0xf3, 0x0f, 0x6f); x86_u8(a, n); break;    /* movdqu (%rbx), %xmmN */
	case 2: X86(a, 0xc5, 0xf8, 0x77); break;                  /* vzeroupper */
	case 3: X86(a, 0xc5, 0xfc, 0x77); break;                  /* vzeroall */
	case 4: X86(a, 0xdb, 0x2b); break;                        /* fldt (%rbx) */
	case 5: X86(a, 0x0f, 0x6f, 0x03); break;                  /* movq (%rbx), %mm0 */
	default: X86(a, 0x0f, 0x77); break;                       /* emms */
	}
}

static void emit_jump(struct x86 *a, const struct choice *c)
{
	uint64_t target = c->a;
	if (c->sub % 4 == 0)                                      /* the shim's entries, 8-aligned */
		target = GF_SHIM_VA + (c->c % 0x30) * 8;
	if (c->sub & 4) {                                         /* SYSCALL's registers, forged */
		x86_mov_imm(a, RCX, c->sub & 8 ? GF_CODE_VA + (c->b & 0xfff) : c->b);
		x86_mov_imm(a, R11, c->d);
	}
	x86_mov_imm(a, RAX, target);
	X86(a, 0xff);
	x86_u8(a, c->sub & 16 ? 0xd0 : 0xe0);                     /* call / jmp *%rax */
}

static void emit_mem(struct x86 *a, const struct choice *c)
{
	x86_mov_imm(a, RAX, c->a);
	switch (c->sub % 4) {
	case 0: X86(a, 0x48, 0x8b, 0x08); break;                  /* mov (%rax), %rcx */
	case 1: X86(a, 0x48, 0x89, 0x08); break;                  /* mov %rcx, (%rax) */
	case 2: X86(a, 0xf0, 0x48, 0xff, 0x00); break;            /* lock incq (%rax) */
	default: X86(a, 0x66, 0x0f, 0x6f, 0x10); break;           /* movdqa (%rax), %xmm2 */
	}
}

static void emit_div(struct x86 *a, const struct choice *c)
{
	if (c->sub & 1) {
		x86_mov_imm(a, RAX, 0x8000000000000000ull);
		X86(a, 0x48, 0x99);                                   /* cqo */
		x86_mov_imm(a, RCX, ~0ull);
		X86(a, 0x48, 0xf7, 0xf9);                             /* idiv %rcx */
	} else {
		X86(a, 0x31, 0xc9, 0x48, 0xf7, 0xf1);                 /* xor %ecx,%ecx; div %rcx */
	}
}

static void emit_random(struct x86 *a, const struct choice *c)
{
	uint8_t b[16];
	for (unsigned i = 0; i < 8; i++) {
		b[i] = (uint8_t)(c->b >> (8 * i));
		b[8 + i] = (uint8_t)(c->c >> (8 * i));
	}
	x86_bytes(a, b, 1 + c->a % 16);
}

static void emit_gpr(struct x86 *a, const struct choice *c)
{
	unsigned reg = (unsigned)(c->a % 16);
	x86_mov_imm(a, reg == RSP ? RBP : reg, c->b);
}

static void emit_rsp(struct x86 *a, const struct choice *c)
{
	x86_mov_imm(a, RSP, GF_STACK_TOP - 0x100 - (c->a & 0xff0));
}

static void emit_spin(struct x86 *a, const struct choice *c)
{
	if (c->sub & 1)
		X86(a, 0x48, 0xff, 0xc3, 0xeb, 0xfb);                 /* 1: inc %rbx; jmp 1b */
	else
		X86(a, 0xeb, 0xfe);                                   /* 1: jmp 1b */
}

void menu_emit(struct x86 *a, const struct choice *c)
{
	static void (*const emit[K_COUNT])(struct x86 *, const struct choice *) = {
		[K_SEG] = emit_seg, [K_SHADOW] = emit_shadow, [K_IRET] = emit_iret, [K_POPF] = emit_popf,
		[K_SYSCALL] = emit_syscall, [K_PRIV] = emit_priv, [K_FSGS] = emit_fsgs,
		[K_XSTATE] = emit_xstate, [K_MXCSR] = emit_mxcsr, [K_FCW] = emit_fcw, [K_VEC] = emit_vec,
		[K_JUMP] = emit_jump, [K_MEM] = emit_mem, [K_DIV] = emit_div, [K_RANDOM] = emit_random,
		[K_GPR] = emit_gpr, [K_RSP] = emit_rsp, [K_SPIN] = emit_spin,
	};
	if (c->kind < K_COUNT)
		emit[c->kind](a, c);
}
