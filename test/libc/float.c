/* SPDX-License-Identifier: MIT */
/* Acceptance program: floating-point formatting and parsing (%f %e %g %a, long double too), x87 and
 * SSE arithmetic, and rounding modes, which live in MXCSR and the x87 control word. */
#include <fenv.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static void show(double d)
{
	printf("%f | %.3f | %e | %.10e | %g | %.17g | %a | %15.4f|%-12.2e|\n", d, d, d, d, d, d, d, d, d);
}

static void show_long(long double d)
{
	printf("%Lf | %.20Le | %Lg | %.21Lg | %La\n", d, d, d, d, d);
}

/* Through volatiles, so the compiler cannot fold them at build time. */
static volatile double one = 1.0, three = 3.0, tiny = 1e-310, big = 1e308;
static volatile long double lone = 1.0L, lthree = 3.0L;

int main(void)
{
	static const double values[] = { 0.0, -0.0, 1.0, -1.5, 0.1, 1.0 / 3.0, 2.0 / 3.0, 123456789.125, 1e-5,
	                                 6.02214076e23, 1e300, 5e-324, DBL_MAX, DBL_MIN, DBL_EPSILON, 0.5, 2.5 };
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
		show(values[i]);
	show(INFINITY);
	show(-INFINITY);
	printf("nan: %f %e %g\n", (double)NAN, (double)NAN, (double)NAN);
	printf("float: %f %g %e\n", 3.14159265f, 1.0f / 3.0f, 16777217.0f);

	show_long(lone / lthree);
	show_long(LDBL_MAX);
	show_long(LDBL_MIN);
	show_long(LDBL_EPSILON);
	show_long(-1234567890.0987654321L);
	show_long(sqrtl(2.0L));

	printf("1/3 in SSE: %.17g, in x87: %.21Lg\n", one / three, lone / lthree);
	printf("sqrt(2) = %.17g, sqrt(1e-310) = %.17g\n", sqrt(2.0 * one), sqrt(tiny));
	printf("1e308 * 10 = %g, 1e-310 / 1e10 = %g, 0/0 is nan: %s\n", big * 10.0, tiny / 1e10,
	       isnan((one - one) / (one - one)) ? "yes" : "no");

	static const char *inputs[] = { "0.1", "1e-400", "1e400", "-0", "0x1.8p3", "123.456e-2", "nan", "-inf",
	                                "2.2250738585072011e-308", "3.141592653589793238462643383279" };
	for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
		printf("strtod(%s) = %.17g, strtold = %.21Lg\n", inputs[i], strtod(inputs[i], NULL),
		       strtold(inputs[i], NULL));

	static const struct { int mode; const char *name; } modes[] = {
		{ FE_TONEAREST, "nearest" }, { FE_UPWARD, "upward" }, { FE_DOWNWARD, "downward" },
		{ FE_TOWARDZERO, "toward zero" },
	};
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		fesetround(modes[i].mode);
		volatile double q = one / three, nq = -one / three;
		volatile long double lq = lone / lthree;
		printf("rounding %s: 1/3 = %a, -1/3 = %a, long 1/3 = %La, rint(2.5) = %g, mode reads back: %s\n",
		       modes[i].name, q, nq, lq, rint(2.5 * one), fegetround() == modes[i].mode ? "yes" : "no");
	}
	fesetround(FE_TONEAREST);
	feclearexcept(FE_ALL_EXCEPT);
	volatile double z = one / (one - one);
	printf("1/0 = %g raises FE_DIVBYZERO: %s\n", z, fetestexcept(FE_DIVBYZERO) ? "yes" : "no");

	double acc = 0;
	long double lacc = 0;
	for (int i = 1; i <= 100000; i++) {
		acc += one / i;
		lacc += lone / i;
	}
	printf("harmonic(100000) = %.17g (SSE), %.21Lg (x87)\n", acc, lacc);
	return 0;
}
