/* SPDX-License-Identifier: MIT */
/* Bad pointers and hostile sizes for the path and metadata calls: openat, newfstatat, fstat, statx,
 * getdents64, readlink, getcwd. TMP holds `data` (8192 bytes) and `link` -> data. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "badptr.h"

#define STATX_BASIC 0x7ffu   /* STATX_BASIC_STATS, spelled out: musl's headers lack statx */

static long closed(long fd)
{
	if (fd >= 0)
		close((int)fd);
	return fd;
}

static void paths(void)
{
	char *g = (char *)badptr_good;
	FOR_BAD(0, '=', "openat.path.%s", closed(syscall(SYS_openat, AT_FDCWD, p, O_RDONLY)));
	memset(g, 'a', 5000);
	g[5000] = 0;
	CASE('=', "openat.path_5000_bytes", closed(syscall(SYS_openat, AT_FDCWD, g, O_RDONLY)));
	g[256] = 0;
	CASE('=', "openat.component_256_bytes", closed(syscall(SYS_openat, AT_FDCWD, g, O_RDONLY)));
	CASE('=', "openat.empty_path", closed(syscall(SYS_openat, AT_FDCWD, "", O_RDONLY)));
	CASE('=', "openat.dirfd_-1_relative", closed(syscall(SYS_openat, -1, "data", O_RDONLY)));
	CASE('=', "openat.dirfd_high_bits_ignored", closed(syscall(SYS_openat, 0x12345678ffffff9cl, "data", O_RDONLY)));
	CASE('=', "openat.flags_high_bits_ignored", closed(syscall(SYS_openat, AT_FDCWD, "data", (1l << 40) | O_RDONLY)));
	CASE('=', "openat.fd_number", closed(syscall(SYS_openat, AT_FDCWD, "data", O_RDONLY)));
}

static void stats(void)
{
	unsigned char *g = badptr_good;
	int fd = open("data", O_RDONLY | O_CLOEXEC);
	FOR_BAD(0, '=', "newfstatat.path.%s", syscall(SYS_newfstatat, AT_FDCWD, p, g, 0));
	FOR_BAD(1, '=', "newfstatat.buf.%s", syscall(SYS_newfstatat, AT_FDCWD, "data", p, 0));
	CASE('=', "newfstatat.bad_flags", syscall(SYS_newfstatat, AT_FDCWD, "data", g, 0x80000000));
	CASE('=', "newfstatat.empty_path_no_flag", syscall(SYS_newfstatat, fd, "", g, 0));
	CASE('=', "newfstatat.empty_path", syscall(SYS_newfstatat, fd, "", g, AT_EMPTY_PATH));
	FOR_BAD(1, '=', "fstat.%s", syscall(SYS_fstat, fd, p));
	CASE('=', "fstat.fd_-1", syscall(SYS_fstat, -1, g));
	FOR_BAD(1, '=', "statx.buf.%s", syscall(SYS_statx, AT_FDCWD, "data", 0, STATX_BASIC, p));
	FOR_BAD(0, '=', "statx.path.%s", syscall(SYS_statx, AT_FDCWD, p, 0, STATX_BASIC, g));
	CASE('=', "statx.bad_flags", syscall(SYS_statx, AT_FDCWD, "data", 0x80000000, STATX_BASIC, g));
	CASE('=', "statx.reserved_mask", syscall(SYS_statx, AT_FDCWD, "data", 0, 0x80000000u, g));
	CASE('=', "statx.ok", syscall(SYS_statx, AT_FDCWD, "data", 0, STATX_BASIC, g));
	close(fd);
}

static void dirs(void)
{
	unsigned char *g = badptr_good;
	int d = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int f = open("data", O_RDONLY | O_CLOEXEC);
	FOR_BAD(1, '=', "getdents64.%s", (lseek(d, 0, SEEK_SET), syscall(SYS_getdents64, d, p, 4096)));
	CASE('=', "getdents64.count_0", (lseek(d, 0, SEEK_SET), syscall(SYS_getdents64, d, g, 0)));
	CASE('=', "getdents64.count_1", (lseek(d, 0, SEEK_SET), syscall(SYS_getdents64, d, g, 1)));
	CASE('s', "getdents64.count_size_max", (lseek(d, 0, SEEK_SET), syscall(SYS_getdents64, d, g, ~0ul)));
	CASE('s', "getdents64.count_high_bits", (lseek(d, 0, SEEK_SET), syscall(SYS_getdents64, d, g, (1l << 32) | 4096)));
	CASE('=', "getdents64.file", syscall(SYS_getdents64, f, g, 4096));
	CASE('=', "getdents64.fd_-1", syscall(SYS_getdents64, -1, g, 4096));
	close(d);
	close(f);
}

static void links(void)
{
	char *g = (char *)badptr_good;
	FOR_BAD(0, '=', "readlink.path.%s", syscall(SYS_readlink, p, g, 64));
	FOR_BAD(1, '=', "readlink.buf.%s", syscall(SYS_readlink, "link", p, 64));
	CASE('=', "readlink.size_0", syscall(SYS_readlink, "link", g, 0));
	CASE('=', "readlink.size_-1", syscall(SYS_readlink, "link", g, -1l));
	CASE('=', "readlink.size_max", syscall(SYS_readlink, "link", g, ~0ul));
	CASE('=', "readlink.size_2^62", syscall(SYS_readlink, "link", g, 1ul << 62));
	CASE('=', "readlink.size_high_bits_ignored", syscall(SYS_readlink, "link", g, (1l << 32) | 64));
	CASE('=', "readlink.not_a_link", syscall(SYS_readlink, "data", g, 64));
	FOR_BAD(1, '=', "getcwd.%s", syscall(SYS_getcwd, p, 4096));
	CASE('=', "getcwd.size_0", syscall(SYS_getcwd, g, 0));
	CASE('=', "getcwd.size_1", syscall(SYS_getcwd, g, 1));
	CASE('s', "getcwd.size_max", syscall(SYS_getcwd, g, ~0ul));
	CASE('=', "getcwd.null_size_0", syscall(SYS_getcwd, NULL, 0));
}

void badptr_files(const char *tmp)
{
	(void)tmp;
	paths();
	stats();
	dirs();
	links();
}
