/* SPDX-License-Identifier: MIT */
/* Syscalls on open descriptors: reading and writing (straight between the host descriptor and the
 * guest's pages, no bounce copy), seeking, duplicating, fcntl, the few read-only tty ioctls libcs
 * ask, pipes, directory entries and fstat. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "runtime.h"

#define RW_MAX   0x7ffff000ull   /* Linux's MAX_RW_COUNT: one call moves at most this */
#define IOV_HOST 1024

static struct rt_files *ft(struct rt_thread *t) { return &t->proc->files; }

/* A read from a pipe or a terminal may wait; it waits interruptibly, so a signal ends the wait
 * as it would natively. Regular files never wait. */
static int wait_readable(struct rt_thread *t, int fd)
{
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		return 0;
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		return 0;
	struct pollfd p = { fd, POLLIN, 0 };
	int r = waker_wait(t, &p, 1, -1);
	return r < 0 ? r : 0;
}

static long device_read(struct rt_file *f, const struct iovec *iov, int n)
{
	long total = 0;
	for (int i = 0; i < n; i++) {
		if (f->kind == FILE_NULL)
			return 0;
		if (f->kind == FILE_ZERO)
			memset(iov[i].iov_base, 0, iov[i].iov_len);
		else if (getrandom(iov[i].iov_base, iov[i].iov_len, 0) != (ssize_t)iov[i].iov_len)
			return total ? total : -EIO;
		total += (long)iov[i].iov_len;
	}
	return total;
}

/* Moves bytes between f and host iovecs; pos < 0: the file position. */
static long transfer(struct rt_thread *t, struct rt_file *f, bool write, struct iovec *iov, int n, int64_t pos)
{
	if (f->kind != FILE_HOST) {
		if (!write)
			return device_read(f, iov, n);
		long total = 0;
		for (int i = 0; i < n; i++)
			total += (long)iov[i].iov_len;
		return total;
	}
	if (!write && pos < 0) {
		int w = wait_readable(t, f->host);
		if (w < 0)
			return RT_RESTART;
	}
	ssize_t r = pos < 0 ? (write ? writev(f->host, iov, n) : readv(f->host, iov, n))
	                    : (write ? pwritev(f->host, iov, n, pos) : preadv(f->host, iov, n, pos));
	if (r < 0 && errno == EPIPE)
		signal_raise(t, SIGPIPE, 0 /* SI_USER */, 0, t->proc->pid);
	return r < 0 ? -errno : r;
}

static long rw(struct rt_thread *t, uint64_t fd, uint64_t buf, uint64_t len, bool write, int64_t pos)
{
	struct rt_file *f = files_get(ft(t), fd);
	if (!f)
		return -EBADF;
	/* As Linux's access_ok(), on the whole count before it is capped: leaving the user half is
	 * EFAULT whatever is mapped. */
	if (len > RF_USER_END || buf > RF_USER_END - len)
		return -EFAULT;
	if (len > RW_MAX)
		len = RW_MAX;
	struct iovec iov[64];
	int n;
	size_t got = mem_iov(&t->proc->mem, buf, len, write ? RF_PROT_READ : RF_PROT_WRITE, iov, 64, &n);
	if (len && !got)
		return -EFAULT;
	return transfer(t, f, write, iov, n, pos);
}

long sys_read(struct rt_thread *t, const uint64_t a[6]) { return rw(t, a[0], a[1], a[2], false, -1); }
long sys_write(struct rt_thread *t, const uint64_t a[6]) { return rw(t, a[0], a[1], a[2], true, -1); }

long sys_pread64(struct rt_thread *t, const uint64_t a[6])
{
	return (int64_t)a[3] < 0 ? -EINVAL : rw(t, a[0], a[1], a[2], false, (int64_t)a[3]);
}

long sys_pwrite64(struct rt_thread *t, const uint64_t a[6])
{
	return (int64_t)a[3] < 0 ? -EINVAL : rw(t, a[0], a[1], a[2], true, (int64_t)a[3]);
}

static long rwv(struct rt_thread *t, const uint64_t a[6], bool write)
{
	struct rt_file *f = files_get(ft(t), a[0]);
	if (!f)
		return -EBADF;
	if (a[2] > 1024)
		return -EINVAL;
	struct { uint64_t base, len; } g[1024];
	unsigned cnt = (unsigned)a[2];
	if (mem_copy_in(&t->proc->mem, g, a[1], cnt * sizeof g[0]) < 0)
		return -EFAULT;
	static struct iovec iov[IOV_HOST];   /* one thread per process today */
	int n = 0;
	uint64_t total = 0;
	for (unsigned i = 0; i < cnt; i++) {
		if ((int64_t)g[i].len < 0)
			return -EINVAL;
		if (g[i].len > RF_USER_END || g[i].base > RF_USER_END - g[i].len)
			return -EFAULT;
		uint64_t len = g[i].len < RW_MAX - total ? g[i].len : RW_MAX - total;
		int k;
		size_t got = mem_iov(&t->proc->mem, g[i].base, len, write ? RF_PROT_READ : RF_PROT_WRITE, iov + n,
		                     IOV_HOST - n, &k);
		n += k;
		total += got;
		if (got < len) {
			if (!total)
				return -EFAULT;
			break;   /* a short transfer up to the bad pointer, as Linux's copy would stop there */
		}
	}
	return transfer(t, f, write, iov, n, -1);
}

long sys_readv(struct rt_thread *t, const uint64_t a[6]) { return rwv(t, a, false); }
long sys_writev(struct rt_thread *t, const uint64_t a[6]) { return rwv(t, a, true); }

long sys_lseek(struct rt_thread *t, const uint64_t a[6])
{
	struct rt_file *f = files_get(ft(t), a[0]);
	if (!f)
		return -EBADF;
	if (f->kind != FILE_HOST)
		return 0;
	off_t r = lseek(f->host, (off_t)a[1], (int)a[2]);
	return r < 0 ? -errno : r;
}

long sys_close(struct rt_thread *t, const uint64_t a[6]) { return files_close(ft(t), a[0]); }

long sys_close_range(struct rt_thread *t, const uint64_t a[6])
{
	unsigned lo = (unsigned)a[0], hi = (unsigned)a[1];
	if (lo > hi || a[2] & ~(uint64_t)(CLOSE_RANGE_CLOEXEC))
		return -EINVAL;
	for (unsigned fd = lo; fd <= hi && fd < RT_MAX_FDS; fd++) {
		if (a[2] & CLOSE_RANGE_CLOEXEC)
			ft(t)->cloexec[fd] = ft(t)->fd[fd] != NULL;
		else
			files_close(ft(t), fd);
	}
	return 0;
}

long sys_dup(struct rt_thread *t, const uint64_t a[6])
{
	struct rt_file *f = files_get(ft(t), a[0]);
	return f ? files_install(ft(t), f, 0, false) : -EBADF;
}

static long dup_to(struct rt_thread *t, uint64_t old, uint64_t new, bool cloexec)
{
	struct rt_file *f = files_get(ft(t), old);
	if (!f)
		return -EBADF;
	if ((int)new < 0 || (int)new >= RT_MAX_FDS)
		return -EBADF;
	if (files_get(ft(t), new))
		files_close(ft(t), new);
	return files_install(ft(t), f, (int)new, cloexec);
}

long sys_dup2(struct rt_thread *t, const uint64_t a[6])
{
	if ((int)a[0] == (int)a[1])
		return files_get(ft(t), a[0]) ? (long)(int)a[1] : -EBADF;
	return dup_to(t, a[0], a[1], false);
}

long sys_dup3(struct rt_thread *t, const uint64_t a[6])
{
	if ((int)a[0] == (int)a[1] || (a[2] & ~(uint64_t)O_CLOEXEC))
		return -EINVAL;
	return dup_to(t, a[0], a[1], a[2] & O_CLOEXEC);
}

long sys_fcntl(struct rt_thread *t, const uint64_t a[6])
{
	struct rt_file *f = files_get(ft(t), a[0]);
	if (!f)
		return -EBADF;
	int fd = (int)a[0];
	switch ((int)a[1]) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		if ((int)a[2] < 0 || (int)a[2] >= RT_MAX_FDS)
			return -EINVAL;
		return files_install(ft(t), f, (int)a[2], (int)a[1] == F_DUPFD_CLOEXEC);
	case F_GETFD:
		return ft(t)->cloexec[fd] ? FD_CLOEXEC : 0;
	case F_SETFD:
		ft(t)->cloexec[fd] = a[2] & FD_CLOEXEC;
		return 0;
	case F_GETFL:
		if (f->kind != FILE_HOST)
			return O_RDWR;
		return fcntl(f->host, F_GETFL) < 0 ? -errno : fcntl(f->host, F_GETFL);
	case F_SETFL:
		/* Only the status flags a program may change; the host's access mode stays. */
		if (f->kind != FILE_HOST)
			return 0;
		return fcntl(f->host, F_SETFL, (int)(a[2] & (O_APPEND | O_NONBLOCK))) < 0 ? -errno : 0;
	default:
		return -EINVAL;
	}
}

long sys_ioctl(struct rt_thread *t, const uint64_t a[6])
{
	struct rt_file *f = files_get(ft(t), a[0]);
	if (!f)
		return -EBADF;
	/* Read-only questions about a terminal, answered by the host's; nothing that changes it. */
	size_t size;
	switch ((unsigned)a[1]) {
	case TCGETS: size = sizeof(struct termios); break;
	case TIOCGWINSZ: size = sizeof(struct winsize); break;
	case TIOCGPGRP: case FIONREAD: size = sizeof(int); break;
	default: return f->kind == FILE_HOST && isatty(f->host) ? -EINVAL : -ENOTTY;
	}
	if (f->kind != FILE_HOST)
		return -ENOTTY;
	unsigned char buf[64];
	if (ioctl(f->host, (unsigned long)(unsigned)a[1], buf) < 0)
		return -errno;
	return mem_copy_out(&t->proc->mem, a[2], buf, size);
}

static long make_pipe(struct rt_thread *t, uint64_t out, int flags)
{
	if (flags & ~(O_CLOEXEC | O_NONBLOCK))
		return -EINVAL;
	int h[2];
	if (pipe2(h, O_CLOEXEC | (flags & O_NONBLOCK)) < 0)
		return -errno;
	struct rt_file *r = file_new(FILE_HOST, h[0], NULL), *w = file_new(FILE_HOST, h[1], NULL);
	int fds[2] = { -1, -1 };
	if (r && w) {
		w->writable = true;
		fds[0] = files_install(ft(t), r, 0, flags & O_CLOEXEC);
		fds[1] = fds[0] >= 0 ? files_install(ft(t), w, 0, flags & O_CLOEXEC) : -EMFILE;
	} else {
		if (!r)
			close(h[0]);
		if (!w)
			close(h[1]);
	}
	file_put(r);
	file_put(w);
	long e = !r || !w ? -ENOMEM : fds[1] < 0 ? -EMFILE : mem_copy_out(&t->proc->mem, out, fds, sizeof fds);
	if (e < 0) {
		if (fds[0] >= 0)
			files_close(ft(t), (uint64_t)fds[0]);
		if (fds[1] >= 0)
			files_close(ft(t), (uint64_t)fds[1]);
	}
	return e;
}

long sys_pipe2(struct rt_thread *t, const uint64_t a[6]) { return make_pipe(t, a[0], (int)a[1]); }
long sys_pipe(struct rt_thread *t, const uint64_t a[6]) { return make_pipe(t, a[0], 0); }

long sys_getdents64(struct rt_thread *t, const uint64_t a[6])
{
	struct rt_file *f = files_get(ft(t), a[0]);
	if (!f)
		return -EBADF;
	if (f->kind != FILE_HOST || !f->dir)
		return -ENOTDIR;
	static char buf[65536];
	unsigned count = (unsigned)a[2];   /* an unsigned int to the kernel */
	if (count > INT32_MAX)
		return -EINVAL;   /* as Linux: such a count is refused before anything is read */
	size_t n = count < sizeof buf ? count : sizeof buf;
	long r = syscall(SYS_getdents64, f->host, buf, n);
	if (r < 0)
		return -errno;
	return mem_copy_out(&t->proc->mem, a[1], buf, (size_t)r) < 0 ? -EFAULT : r;
}

/* poll over guest descriptors: served devices are always ready, host ones are asked; waiting is
 * the waker's, so a signal ends it (EINTR, as Linux's poll with a handler). */
static long do_poll(struct rt_thread *t, uint64_t va, uint64_t nfds, int64_t timeout_ns)
{
	if (nfds > RT_MAX_FDS)
		return -EINVAL;
	static struct pollfd g[RT_MAX_FDS], h[RT_MAX_FDS];
	static int map[RT_MAX_FDS];
	if (mem_copy_in(&t->proc->mem, g, va, nfds * sizeof g[0]) < 0)
		return -EFAULT;
	int k = 0;
	for (uint64_t i = 0; i < nfds; i++) {
		g[i].revents = 0;
		if (g[i].fd < 0)
			continue;
		struct rt_file *f = files_get(ft(t), (uint64_t)g[i].fd);
		if (!f)
			g[i].revents = POLLNVAL;
		else if (f->kind != FILE_HOST)
			g[i].revents = g[i].events & (POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM);
		else {
			h[k] = (struct pollfd){ f->host, g[i].events, 0 };
			map[k++] = (int)i;
		}
	}
	int ready = 0;
	for (uint64_t i = 0; i < nfds; i++)
		ready += g[i].revents != 0;
	int r = poll(h, (nfds_t)k, 0);
	if (r == 0 && !ready && timeout_ns != 0)
		r = waker_wait(t, h, k, timeout_ns);
	if (r < 0)
		return r == -EINTR ? -EINTR : r;
	for (int j = 0; j < k; j++) {
		g[map[j]].revents = h[j].revents;
		ready += h[j].revents != 0;
	}
	return mem_copy_out(&t->proc->mem, va, g, nfds * sizeof g[0]) < 0 ? -EFAULT : ready;
}

long sys_poll(struct rt_thread *t, const uint64_t a[6])
{
	int ms = (int)a[2];
	return do_poll(t, a[0], a[1], ms < 0 ? -1 : (int64_t)ms * 1000000);
}

long sys_ppoll(struct rt_thread *t, const uint64_t a[6])
{
	int64_t ns = -1;
	if (a[2]) {
		struct timespec ts;
		if (mem_copy_in(&t->proc->mem, &ts, a[2], sizeof ts) < 0)
			return -EFAULT;
		if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000)
			return -EINVAL;
		ns = ts.tv_sec * 1000000000 + ts.tv_nsec;
	}
	/* The temporary signal mask, as sigsuspend keeps it until a handler has run. */
	if (a[3]) {
		uint64_t set;
		if (a[4] != 8)
			return -EINVAL;
		if (mem_copy_in(&t->proc->mem, &set, a[3], sizeof set) < 0)
			return -EFAULT;
		t->saved_mask = t->mask;
		t->has_saved_mask = true;
		t->mask = set & ~(sigbit(SIGKILL) | sigbit(SIGSTOP));
	}
	long r = do_poll(t, a[0], a[1], ns);
	if (a[3] && r != -EINTR) {
		t->mask = t->saved_mask;
		t->has_saved_mask = false;
	}
	return r;
}

int fd_stat(struct rt_file *f, struct stat *st)
{
	if (f->kind == FILE_HOST)
		return fstat(f->host, st) < 0 ? -errno : 0;
	memset(st, 0, sizeof *st);
	st->st_mode = S_IFCHR | 0666;
	st->st_nlink = 1;
	st->st_blksize = 4096;
	st->st_rdev = makedev(1, f->kind == FILE_NULL ? 3 : f->kind == FILE_ZERO ? 5 : 9);
	return 0;
}

long sys_fstat(struct rt_thread *t, const uint64_t a[6])
{
	struct rt_file *f = files_get(ft(t), a[0]);
	if (!f)
		return -EBADF;
	struct stat st;
	int e = fd_stat(f, &st);
	return e < 0 ? e : mem_copy_out(&t->proc->mem, a[1], &st, sizeof st);
}

long sys_ftruncate(struct rt_thread *t, const uint64_t a[6])
{
	struct rt_file *f = files_get(ft(t), a[0]);
	if (!f)
		return -EBADF;
	if (f->kind != FILE_HOST)
		return -EINVAL;
	return ftruncate(f->host, (off_t)a[1]) < 0 ? -errno : 0;
}

long sys_fsync(struct rt_thread *t, const uint64_t a[6])
{
	struct rt_file *f = files_get(ft(t), a[0]);
	if (!f)
		return -EBADF;
	return f->kind == FILE_HOST && fsync(f->host) < 0 && errno != EINVAL ? -errno : 0;
}
