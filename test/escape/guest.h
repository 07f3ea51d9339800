/* SPDX-License-Identifier: MIT */
/* Helpers for the guest programs of test/escape: TAP lines without a plan (the driver renumbers
 * them and prints the plan), errno names that read the same under glibc and musl. */
#ifndef ESCAPE_GUEST_H
#define ESCAPE_GUEST_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* One pair of counters for all of a program's files (weak: each file's copy is the same one). */
__attribute__((weak)) int guest_count, guest_failed;

static inline const char *guest_errname(int e)
{
	static const struct { int e; const char *name; } names[] = {
		{ EPERM, "EPERM" }, { ENOENT, "ENOENT" }, { ESRCH, "ESRCH" }, { EINTR, "EINTR" },
		{ EIO, "EIO" }, { ENXIO, "ENXIO" }, { E2BIG, "E2BIG" }, { ENOEXEC, "ENOEXEC" },
		{ EBADF, "EBADF" }, { ECHILD, "ECHILD" }, { EAGAIN, "EAGAIN" }, { ENOMEM, "ENOMEM" },
		{ EACCES, "EACCES" }, { EFAULT, "EFAULT" }, { EBUSY, "EBUSY" }, { EEXIST, "EEXIST" },
		{ EXDEV, "EXDEV" }, { ENODEV, "ENODEV" }, { ENOTDIR, "ENOTDIR" }, { EISDIR, "EISDIR" },
		{ EINVAL, "EINVAL" }, { ENFILE, "ENFILE" }, { EMFILE, "EMFILE" }, { ENOTTY, "ENOTTY" },
		{ EFBIG, "EFBIG" }, { ENOSPC, "ENOSPC" }, { ESPIPE, "ESPIPE" }, { EROFS, "EROFS" },
		{ EMLINK, "EMLINK" }, { EPIPE, "EPIPE" }, { ERANGE, "ERANGE" }, { ENAMETOOLONG, "ENAMETOOLONG" },
		{ ENOSYS, "ENOSYS" }, { ENOTEMPTY, "ENOTEMPTY" }, { ELOOP, "ELOOP" }, { ENODATA, "ENODATA" },
		{ EOVERFLOW, "EOVERFLOW" }, { ENOTSUP, "ENOTSUP" }, { EAFNOSUPPORT, "EAFNOSUPPORT" },
		{ ECONNREFUSED, "ECONNREFUSED" }, { EPROTONOSUPPORT, "EPROTONOSUPPORT" },
		{ ESTALE, "ESTALE" }, { ENOTSOCK, "ENOTSOCK" }, { EBADMSG, "EBADMSG" },
	};
	static char other[32];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].e == e)
			return names[i].name;
	snprintf(other, sizeof other, "errno %d", e);
	return other;
}

__attribute__((format(printf, 2, 3))) static inline bool guest_ok(bool pass, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%sok %d - ", pass ? "" : "not ", ++guest_count);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	guest_failed += !pass;
	fflush(stdout);
	return pass;
}

/* r is a libc return value (-1 and errno on failure). want 0: any failure will do. */
static inline bool guest_fails(long r, int err, int want, const char *what)
{
	if (r >= 0)
		return guest_ok(false, "%s fails (it succeeded: %ld)", what, r);
	if (want && err != want)
		return guest_ok(false, "%s fails with %s (got %s)", what, guest_errname(want), guest_errname(err));
	return guest_ok(true, "%s fails with %s", what, guest_errname(err));
}

/* Evaluates a call once, then checks it failed (with want, unless 0). */
#define FAILS(want, what, call)                                                                   \
	do {                                                                                      \
		errno = 0;                                                                        \
		long r_ = (long)(call);                                                           \
		guest_fails(r_, errno, (want), (what));                                           \
	} while (0)

#define SUCCEEDS(what, call)                                                                      \
	do {                                                                                      \
		errno = 0;                                                                        \
		long r_ = (long)(call);                                                           \
		int e_ = errno;                                                                   \
		if (!guest_ok(r_ >= 0, "%s succeeds", (what)))                                    \
			printf("#   got %s\n", guest_errname(e_));                                  \
	} while (0)

#endif
