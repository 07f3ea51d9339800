/* SPDX-License-Identifier: MIT */
/* Acceptance program: AVX2 vector code when the CPU has it, the same results from scalar code when it
 * does not, and a vector register kept across a syscall. Which path ran goes to stderr only, so the
 * output is the same on every host. */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define N 4096

static int32_t a[N], b[N], out_vec[N], out_scalar[N];
static float fa[N], fb[N], fout_vec[N], fout_scalar[N];

__attribute__((target("avx2"))) static void kernel_avx2(void)
{
	for (int i = 0; i < N; i += 8) {
		__m256i x = _mm256_loadu_si256((const __m256i *)(a + i));
		__m256i y = _mm256_loadu_si256((const __m256i *)(b + i));
		__m256i r = _mm256_add_epi32(_mm256_mullo_epi32(x, y), _mm256_srai_epi32(x, 3));
		r = _mm256_xor_si256(r, _mm256_shuffle_epi32(y, 0x1b));
		_mm256_storeu_si256((__m256i *)(out_vec + i), r);
		__m256 fx = _mm256_loadu_ps(fa + i), fy = _mm256_loadu_ps(fb + i);
		_mm256_storeu_ps(fout_vec + i, _mm256_add_ps(_mm256_mul_ps(fx, fy), _mm256_sqrt_ps(fx)));
	}
}

static void kernel_scalar(int32_t *out, float *fout)
{
	static const int shuffle[8] = { 3, 2, 1, 0, 7, 6, 5, 4 };   /* _mm256_shuffle_epi32(y, 0x1b) */
	for (int i = 0; i < N; i++) {
		uint32_t prod = (uint32_t)a[i] * (uint32_t)b[i];
		int32_t r = (int32_t)(prod + (uint32_t)(a[i] >> 3));
		out[i] = r ^ b[i - i % 8 + shuffle[i % 8]];
		volatile float m = fa[i] * fb[i];   /* rounded on its own, as the vector multiply is */
		fout[i] = m + __builtin_sqrtf(fa[i]);
	}
}

/* Puts a pattern in ymm8 (xmm8 without AVX), makes a syscall, and reads it back. */
__attribute__((target("avx2"))) static int ymm_survives_syscall(void)
{
	static const uint32_t pattern[8] = { 0x01234567, 0x89abcdef, 0xdeadbeef, 0xcafef00d,
	                                     0x0badf00d, 0x12345678, 0x9abcdef0, 0x55aa55aa };
	uint32_t back[8];
	long ret;
	__asm__ volatile("vmovdqu %[in], %%ymm8\n\t"
	                 "mov $39, %%eax\n\t"   /* getpid */
	                 "syscall\n\t"
	                 "vmovdqu %%ymm8, %[out]"
	                 : [out] "=m"(back), "=&a"(ret)
	                 : [in] "m"(pattern)
	                 : "rcx", "r11", "xmm8", "memory");
	(void)ret;
	return !memcmp(pattern, back, sizeof back);
}

static int xmm_survives_syscall(void)
{
	static const uint32_t pattern[4] = { 0x01234567, 0x89abcdef, 0xdeadbeef, 0xcafef00d };
	uint32_t back[4];
	long ret;
	__asm__ volatile("movdqu %[in], %%xmm8\n\t"
	                 "mov $39, %%eax\n\t"
	                 "syscall\n\t"
	                 "movdqu %%xmm8, %[out]"
	                 : [out] "=m"(back), "=&a"(ret)
	                 : [in] "m"(pattern)
	                 : "rcx", "r11", "xmm8", "memory");
	(void)ret;
	return !memcmp(pattern, back, sizeof back);
}

int main(void)
{
	__builtin_cpu_init();
	int avx2 = __builtin_cpu_supports("avx2");
	fprintf(stderr, "vector: %s path\n", avx2 ? "AVX2" : "scalar");
	for (int i = 0; i < N; i++) {
		a[i] = (int32_t)((uint32_t)i * 2654435761u);
		b[i] = i * 7 - 5000;
		fa[i] = (float)i * 0.37f + 1.0f;
		fb[i] = 1.0f / (float)(i + 1);
	}
	kernel_scalar(out_scalar, fout_scalar);
	if (avx2)
		kernel_avx2();
	else
		kernel_scalar(out_vec, fout_vec);
	uint64_t isum = 0;
	double fsum = 0;
	for (int i = 0; i < N; i++) {
		isum = isum * 31 + (uint32_t)out_vec[i];
		fsum += fout_vec[i];
	}
	printf("integer kernel: checksum %016llx, matches scalar: %s\n", (unsigned long long)isum,
	       memcmp(out_vec, out_scalar, sizeof out_vec) ? "no" : "yes");
	printf("float kernel: sum %.9g, matches scalar: %s\n", fsum,
	       memcmp(fout_vec, fout_scalar, sizeof fout_vec) ? "no" : "yes");
	printf("out[0..3] = %d %d %d %d, fout[4095] = %.9g\n", out_vec[0], out_vec[1], out_vec[2], out_vec[3],
	       (double)fout_vec[N - 1]);
	int kept = avx2 ? ymm_survives_syscall() : xmm_survives_syscall();
	printf("vector register survives a syscall: %s\n", kept ? "yes" : "no");
	return 0;
}
