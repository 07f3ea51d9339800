/* SPDX-License-Identifier: MIT */
/* Bad pointers and hostile sizes for the calls that move bytes: read, write, pread64, pwrite64,
 * readv, writev, getrandom, pipe2. A read that fails part way must not lose data. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "badptr.h"

#define SZ_MAX   (~0ul)
#define SZ_M4096 (~0ul - 4095)
#define SZ_2_62  (1ul << 62)
#define SZ_2_31  (1ul << 31)

static int data_fd, w_fd;

static long rewound(int fd)
{
	return lseek(fd, 0, SEEK_SET);
}

/* A fresh non-blocking pipe, with `fill` bytes in it; returns the read end, *wr the write end. */
static int fresh_pipe(int *wr, int fill)
{
	int p[2];
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC)) {
		printf("Bail out! pipe2: %s\n", guest_errname(errno));
		exit(1);
	}
	for (int i = 0; i < fill; i++)
		if (write(p[1], &"0123456789abcdef"[i % 16], 1) != 1)
			break;
	*wr = p[1];
	return p[0];
}

static void reads(void)
{
	int z = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	FOR_BAD(1, '=', "read.file.%s", (rewound(data_fd), syscall(SYS_read, data_fd, p, 64)));
	FOR_BAD(1, '=', "read.zero.%s", syscall(SYS_read, z, p, 64));
	rewound(data_fd);
	long r = syscall(SYS_read, data_fd, badptr_bad[4].p, 64);
	long pos = lseek(data_fd, 0, SEEK_CUR);
	badptr_value('=', "read.file.cross.position_matches_count", pos == (r < 0 ? 0 : r));
	int wr, rd = fresh_pipe(&wr, 64);
	FOR_BAD(1, '=', "read.pipe.%s", syscall(SYS_read, rd, p, 64));
	close(rd);
	close(wr);
	rd = fresh_pipe(&wr, 64);
	char all[128] = { 0 };
	long got = 0;
	r = syscall(SYS_read, rd, badptr_bad[4].p, 64);
	if (r > 0) {
		memcpy(all, badptr_bad[4].p, (size_t)r);
		got = r;
	}
	r = read(rd, all + got, 64);
	got += r > 0 ? r : 0;
	badptr_value('=', "read.pipe.cross.no_data_lost", got == 64 && !memcmp(all, "0123456789abcdef0123", 20));
	close(rd);
	close(wr);
	unsigned char *g = badptr_good;
	CASE('=', "read.file.size_max", (rewound(data_fd), syscall(SYS_read, data_fd, g, SZ_MAX)));
	CASE('=', "read.file.size_minus_4096", (rewound(data_fd), syscall(SYS_read, data_fd, g, SZ_M4096)));
	CASE('=', "read.file.size_2^62", (rewound(data_fd), syscall(SYS_read, data_fd, g, SZ_2_62)));
	CASE('~', "read.file.size_2^31", (rewound(data_fd), syscall(SYS_read, data_fd, g, SZ_2_31)));
	CASE('=', "read.file.size_0", (rewound(data_fd), syscall(SYS_read, data_fd, g, 0)));
	CASE('~', "read.zero.size_2^31_into_64k", syscall(SYS_read, z, g, SZ_2_31));
	CASE('=', "read.zero.size_max", syscall(SYS_read, z, g, SZ_MAX));
	CASE('=', "read.fd_minus_1", syscall(SYS_read, -1, g, 16));
	CASE('=', "read.fd_2^31", syscall(SYS_read, 1l << 31, g, 16));
	CASE('=', "read.fd_high_bits_are_ignored", (rewound(data_fd), syscall(SYS_read, (1l << 32) | data_fd, g, 16)));
	close(z);
}

static void writes(void)
{
	int wr, rd = fresh_pipe(&wr, 0);
	unsigned char *g = badptr_good;
	FOR_BAD(0, '=', "write.pipe.%s", syscall(SYS_write, wr, p, 64));
	FOR_BAD(0, '=', "write.file.%s", syscall(SYS_pwrite64, w_fd, p, 64, 0));
	CASE('=', "write.pipe.size_max", syscall(SYS_write, wr, g, SZ_MAX));
	CASE('=', "write.pipe.size_minus_4096", syscall(SYS_write, wr, g, SZ_M4096));
	CASE('=', "write.pipe.size_2^62", syscall(SYS_write, wr, g, SZ_2_62));
	close(rd);
	close(wr);
	rd = fresh_pipe(&wr, 0);
	CASE('~', "write.pipe.size_2^31_from_64k", syscall(SYS_write, wr, g, SZ_2_31));
	close(rd);
	close(wr);
	CASE('=', "write.fd_minus_1", syscall(SYS_write, -1, g, 1));
	CASE('=', "pread.bad_offset_-1", syscall(SYS_pread64, data_fd, g, 16, -1l));
	CASE('=', "pread.offset_min", syscall(SYS_pread64, data_fd, g, 16, 1l << 63));
	CASE('=', "pread.offset_2^62_is_eof", syscall(SYS_pread64, data_fd, g, 16, 1l << 62));
	CASE('=', "pread.size_max", syscall(SYS_pread64, data_fd, g, SZ_MAX, 0));
	FOR_BAD(1, '=', "pread.%s", syscall(SYS_pread64, data_fd, p, 64, 0));
	rd = fresh_pipe(&wr, 4);
	CASE('=', "pread.pipe_is_espipe", syscall(SYS_pread64, rd, g, 1, 0));
	CASE('=', "pwrite.pipe_is_espipe", syscall(SYS_pwrite64, wr, g, 1, 0));
	close(rd);
	close(wr);
	CASE('=', "pwrite.bad_offset_-1", syscall(SYS_pwrite64, w_fd, g, 16, -1l));
	CASE('=', "pwrite.size_max", syscall(SYS_pwrite64, w_fd, g, SZ_MAX, 0));
	CASE('=', "pwrite.size_2^62", syscall(SYS_pwrite64, w_fd, g, SZ_2_62, 0));
}

static void vectors(void)
{
	unsigned char *g = badptr_good;
	struct iovec *iov = (struct iovec *)(g + 4096);
	int wr, rd = fresh_pipe(&wr, 0);
	FOR_BAD(0, '=', "readv.iov_array.%s", (rewound(data_fd), syscall(SYS_readv, data_fd, p, 1)));
	FOR_BAD(0, '=', "writev.iov_array.%s", syscall(SYS_writev, wr, p, 1));
	FOR_BAD(1, '=', "readv.base.%s",
	        (rewound(data_fd), iov[0] = (struct iovec){ p, 64 }, syscall(SYS_readv, data_fd, iov, 1)));
	FOR_BAD(0, '=', "writev.base.%s", (iov[0] = (struct iovec){ p, 64 }, syscall(SYS_writev, wr, iov, 1)));
	iov[0] = (struct iovec){ g, 16 };
	iov[1] = (struct iovec){ badptr_bad[2].p, 16 };
	CASE('~', "readv.good_then_hole", (rewound(data_fd), syscall(SYS_readv, data_fd, iov, 2)));
	CASE('~', "writev.good_then_hole", syscall(SYS_writev, wr, iov, 2));
	CASE('=', "readv.iovcnt_0", syscall(SYS_readv, data_fd, iov, 0));
	CASE('=', "readv.iovcnt_-1", syscall(SYS_readv, data_fd, iov, -1));
	CASE('=', "readv.iovcnt_1025", syscall(SYS_readv, data_fd, iov, 1025));
	CASE('=', "writev.iovcnt_2^31", syscall(SYS_writev, wr, iov, 1l << 31));
	iov[0] = (struct iovec){ g, SZ_MAX };
	CASE('=', "readv.len_size_max", syscall(SYS_readv, data_fd, iov, 1));
	iov[0] = (struct iovec){ g, SZ_2_62 };
	iov[1] = (struct iovec){ g, SZ_2_62 };
	CASE('=', "writev.lens_sum_past_ssize_max", syscall(SYS_writev, wr, iov, 2));
	/* The array itself runs into PROT_NONE: one iovec fits in the 16 good bytes, the second not. */
	struct iovec *edge = badptr_bad[4].p;
	*edge = (struct iovec){ g, 16 };
	CASE('=', "writev.iov_array_crosses_into_prot_none", syscall(SYS_writev, wr, edge, 2));
	memset(edge, 'a', 16);
	close(rd);
	close(wr);
}

static void others(void)
{
	unsigned char *g = badptr_good;
	FOR_BAD(1, '=', "getrandom.%s", syscall(SYS_getrandom, p, 64, 0));
	CASE('~', "getrandom.size_max_into_64k", syscall(SYS_getrandom, g, SZ_MAX, 0));
	CASE('=', "getrandom.bad_flags", syscall(SYS_getrandom, g, 16, 0x1000));
	CASE('=', "getrandom.nonblock", syscall(SYS_getrandom, g, 16, 1));
	CASE('=', "getrandom.size_0", syscall(SYS_getrandom, g, 0, 0));
	FOR_BAD(1, '=', "pipe2.%s", syscall(SYS_pipe2, p, 0));
	int *made = badptr_bad[4].p;           /* 16 good bytes: the cross case may have made a pipe */
	if (made[0] != 0x61616161) {
		close(made[0]);
		close(made[1]);
		memset(made, 'a', 16);
	}
	CASE('=', "pipe2.bad_flags", syscall(SYS_pipe2, g, 0xffff));
	long fd = dup(0);
	badptr_value('=', "pipe2.failures_leak_no_fd.lowest_free", fd);
	close((int)fd);
}

void badptr_io(const char *tmp)
{
	(void)tmp;
	data_fd = open("data", O_RDONLY | O_CLOEXEC);
	w_fd = open("rw/w", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (data_fd < 0 || w_fd < 0) {
		printf("Bail out! open data, rw/w: %s\n", guest_errname(errno));
		exit(1);
	}
	reads();
	writes();
	vectors();
	others();
	close(data_fd);
	close(w_fd);
}
