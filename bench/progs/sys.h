/* SPDX-License-Identifier: MIT */
/* Shared by the bench programs: their own _start, raw syscalls and argv parsing, nothing else. The
 * programs are freestanding so one binary runs natively, under `ringfence run` and under a ptrace
 * runner that serves only getppid, openat, write and exit_group. */
#ifndef RINGFENCE_BENCH_SYS_H
#define RINGFENCE_BENCH_SYS_H

#define SYS_write      1
#define SYS_getppid    110
#define SYS_exit_group 231
#define SYS_openat     257
#define AT_FDCWD       (-100)
#define O_WRONLY       1
#define O_CLOEXEC      02000000

#define BENCH_DEFAULT_COUNT 100000ul

static inline long sys1(long nr, long a)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a) : "rcx", "r11", "memory");
	return r;
}

static inline long sys3(long nr, long a, long b, long c)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return r;
}

static inline long sys4(long nr, long a, long b, long c, long d)
{
	long r;
	register long r10 __asm__("r10") = d;
	__asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
	return r;
}

/* The program's body: argc and argv as the kernel laid them out; returns the exit status. */
int bench_main(long argc, char **argv);

/* The kernel enters with rsp at argc (16-byte aligned); bench_main gets a normal call frame. */
__asm__(".text\n"
        ".globl _start\n"
        "_start:\n"
        "	xor %ebp, %ebp\n"
        "	mov (%rsp), %rdi\n"
        "	lea 8(%rsp), %rsi\n"
        "	call bench_main\n"
        "	mov %eax, %edi\n"
        "	mov $231, %eax\n"
        "	syscall\n"
        "	ud2\n");

/* argv[i] as a decimal count, or def if absent; 0 (rejected by callers) if it is not one. */
static inline unsigned long bench_count(long argc, char **argv, long i, unsigned long def)
{
	if (argc <= i)
		return def;
	unsigned long n = 0;
	const char *s = argv[i];
	if (!*s)
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || n > (~0ul - 9) / 10)
			return 0;
		n = n * 10 + (unsigned long)(*s - '0');
	}
	return n;
}

static inline unsigned long bench_strlen(const char *s)
{
	unsigned long n = 0;
	while (s[n])
		n++;
	return n;
}

#endif
