/* SPDX-License-Identifier: MIT */
/* Per-thread error sentences behind rf_last_error(). */
#include <stdarg.h>
#include <stdio.h>

#include "platform.h"

static __thread char last[512];   /* room for a fatal exit's last exits */

int rf_error(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last, sizeof last, fmt, ap);
	va_end(ap);
	return err;
}

const char *rf_last_error(void)
{
	return last[0] ? last : "no error";
}

const char *rf_vector_name(unsigned vector)
{
	static const char *const names[] = {
		"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#CSO", "#TS", "#NP",
		"#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
	};
	if (vector < sizeof names / sizeof names[0])
		return names[vector];
	return vector == 32 ? "kick" : "vector";
}
