/* SPDX-License-Identifier: MIT */
/* Syscalls that name files by path: open, stat, access, readlink, the working directory, and the
 * writing ones (unlink, mkdir, rename, symlink, chmod, utimensat), which work only below --rw. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime.h"

#define WRITE_FLAGS (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)

static struct rt_fs *fs(struct rt_thread *t) { return &t->proc->fs; }

static long install(struct rt_thread *t, enum file_kind kind, int host, const char *abs, int flags)
{
	bool dir = false;
	char gpath[RT_PATH_MAX];
	if (kind == FILE_HOST) {
		struct stat st;
		dir = fstat(host, &st) == 0 && S_ISDIR(st.st_mode);
		/* Directories remember where they are (for *at calls), as the kernel resolves it. */
		if (dir && path_of_fd(fs(t), host, gpath) == 0)
			abs = gpath;
	}
	struct rt_file *f = file_new(kind, host, abs);
	if (!f) {
		if (host >= 0)
			close(host);
		return -ENOMEM;
	}
	f->dir = dir;
	f->writable = (flags & O_ACCMODE) != O_RDONLY;
	long fd = files_install(&t->proc->files, f, 0, flags & O_CLOEXEC);
	file_put(f);
	return fd;
}

/* An existing file opened for writing: checked where it really is, then reopened through the
 * checked descriptor so what is opened is what was checked. */
static int reopen_for_write(struct rt_thread *t, int pfd, int flags)
{
	int e = path_fd_writable(fs(t), pfd);
	if (e < 0)
		return e;
	char link[64];
	snprintf(link, sizeof link, "/proc/self/fd/%d", pfd);
	int fd = open(link, (flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static long do_open(struct rt_thread *t, int64_t dirfd, uint64_t path, int flags, unsigned mode)
{
	char abs[RT_PATH_MAX];
	int e = path_in(t, dirfd, path, abs, false);
	if (e < 0)
		return e;
	int special = path_special(abs);
	if (special < 0)
		return special;
	if (special > 0)
		return flags & O_DIRECTORY ? -ENOTDIR : install(t, (enum file_kind)special, -1, abs, flags);
	if ((flags & O_TMPFILE) == O_TMPFILE)
		return -EOPNOTSUPP;
	bool write = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
	if (!write && !(flags & O_CREAT)) {
		int fd = path_open(fs(t), abs, flags, 0);
		return fd < 0 ? fd : install(t, FILE_HOST, fd, abs, flags);
	}
	int pfd = path_open(fs(t), abs, O_PATH | (flags & O_NOFOLLOW), 0);
	if (pfd >= 0) {
		int fd;
		if ((flags & O_CREAT) && (flags & O_EXCL))
			fd = -EEXIST;
		else if (!write)
			fd = path_open(fs(t), abs, flags & ~O_CREAT, 0);
		else
			fd = reopen_for_write(t, pfd, flags);
		close(pfd);
		return fd < 0 ? fd : install(t, FILE_HOST, fd, abs, flags);
	}
	if (pfd != -ENOENT || !(flags & O_CREAT))
		return pfd;
	char base[256];
	int dfd = path_parent_rw(fs(t), abs, base);
	if (dfd < 0)
		return dfd;
	/* O_NOFOLLOW: a dangling symlink is not followed out of the directory that was checked. */
	int fd = openat(dfd, base, flags | O_NOFOLLOW | O_CLOEXEC, mode & ~fs(t)->umask & 07777);
	e = errno;
	close(dfd);
	return fd < 0 ? -e : install(t, FILE_HOST, fd, abs, flags);
}

long sys_open(struct rt_thread *t, const uint64_t a[6]) { return do_open(t, AT_FDCWD, a[0], (int)a[1], (unsigned)a[2]); }
long sys_openat(struct rt_thread *t, const uint64_t a[6])
{
	return do_open(t, (int)a[0], a[1], (int)a[2], (unsigned)a[3]);
}
long sys_creat(struct rt_thread *t, const uint64_t a[6])
{
	return do_open(t, AT_FDCWD, a[0], O_CREAT | O_WRONLY | O_TRUNC, (unsigned)a[1]);
}

/* An O_PATH descriptor for the object a *at call names (the fd itself for an empty path), or the
 * served device's kind (> 0 through *kind, fd -1). */
static int lookup(struct rt_thread *t, int64_t dirfd, uint64_t path, int atflags, enum file_kind *kind,
                  char abs[RT_PATH_MAX])
{
	*kind = FILE_HOST;
	int e = path_in(t, dirfd, path, abs, atflags & AT_EMPTY_PATH);
	if (e < 0)
		return e;
	if (!abs[0]) {
		struct rt_file *f = files_get(&t->proc->files, (uint64_t)dirfd);
		if (!f)
			return -EBADF;
		*kind = f->kind;
		return f->kind == FILE_HOST ? fcntl(f->host, F_DUPFD_CLOEXEC, 0) : -1;
	}
	int special = path_special(abs);
	if (special < 0)
		return special;
	if (special > 0) {
		*kind = (enum file_kind)special;
		return -1;
	}
	return path_open(fs(t), abs, O_PATH | (atflags & AT_SYMLINK_NOFOLLOW ? O_NOFOLLOW : 0), 0);
}

static long stat_at(struct rt_thread *t, int64_t dirfd, uint64_t path, uint64_t out, int flags)
{
	if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT))
		return -EINVAL;
	enum file_kind kind;
	char abs[RT_PATH_MAX];
	int fd = lookup(t, dirfd, path, flags, &kind, abs);
	struct stat st;
	if (kind != FILE_HOST) {
		struct rt_file dev = { .kind = kind };
		fd_stat(&dev, &st);
	} else if (fd < 0) {
		return fd;
	} else {
		int r = fstatat(fd, "", &st, AT_EMPTY_PATH);
		int e = errno;
		close(fd);
		if (r < 0)
			return -e;
	}
	return mem_copy_out(&t->proc->mem, out, &st, sizeof st);
}

long sys_newfstatat(struct rt_thread *t, const uint64_t a[6]) { return stat_at(t, (int)a[0], a[1], a[2], (int)a[3]); }
long sys_stat(struct rt_thread *t, const uint64_t a[6]) { return stat_at(t, AT_FDCWD, a[0], a[1], 0); }
long sys_lstat(struct rt_thread *t, const uint64_t a[6])
{
	return stat_at(t, AT_FDCWD, a[0], a[1], AT_SYMLINK_NOFOLLOW);
}

long sys_statx(struct rt_thread *t, const uint64_t a[6])
{
	int flags = (int)a[2];
	if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE) ||
	    (flags & AT_STATX_SYNC_TYPE) == AT_STATX_SYNC_TYPE || (a[3] & STATX__RESERVED))
		return -EINVAL;
	enum file_kind kind;
	char abs[RT_PATH_MAX];
	int fd = lookup(t, (int)a[0], a[1], flags, &kind, abs);
	if (kind != FILE_HOST)
		return -ENOSYS;   /* libcs fall back to fstatat, which describes the device */
	if (fd < 0)
		return fd;
	struct statx sx;
	int r = statx(fd, "", AT_EMPTY_PATH | (flags & AT_STATX_SYNC_TYPE), (unsigned)a[3], &sx);
	int e = errno;
	close(fd);
	return r < 0 ? -e : mem_copy_out(&t->proc->mem, a[4], &sx, sizeof sx);
}

static long access_at(struct rt_thread *t, int64_t dirfd, uint64_t path, int mode, int flags)
{
	if (mode & ~(R_OK | W_OK | X_OK))
		return -EINVAL;
	enum file_kind kind;
	char abs[RT_PATH_MAX];
	int fd = lookup(t, dirfd, path, flags, &kind, abs);
	if (kind != FILE_HOST)
		return mode & X_OK ? -EACCES : 0;
	if (fd < 0)
		return fd;
	long r = syscall(SYS_faccessat2, fd, "", mode, AT_EMPTY_PATH | (flags & AT_EACCESS));
	long e = r < 0 ? -errno : 0;
	/* A read-only file system refuses writing whatever the mode bits say. */
	if (!e && (mode & W_OK))
		e = path_fd_writable(fs(t), fd);
	close(fd);
	return e;
}

long sys_access(struct rt_thread *t, const uint64_t a[6]) { return access_at(t, AT_FDCWD, a[0], (int)a[1], 0); }
long sys_faccessat(struct rt_thread *t, const uint64_t a[6]) { return access_at(t, (int)a[0], a[1], (int)a[2], 0); }
long sys_faccessat2(struct rt_thread *t, const uint64_t a[6])
{
	return access_at(t, (int)a[0], a[1], (int)a[2], (int)a[3]);
}

static long readlink_at(struct rt_thread *t, int64_t dirfd, uint64_t path, uint64_t buf, uint64_t size)
{
	if ((int)size <= 0)
		return -EINVAL;
	char abs[RT_PATH_MAX], target[RT_PATH_MAX];
	int e = path_in(t, dirfd, path, abs, false);
	if (e < 0)
		return e;
	ssize_t n;
	if (!strcmp(abs, "/proc/self/exe")) {
		/* The one /proc entry libcs need (glibc's static start-up asks it). */
		n = (ssize_t)strlen(t->proc->exe_guest);
		memcpy(target, t->proc->exe_guest, (size_t)n);
	} else {
		enum file_kind kind;
		int fd = lookup(t, dirfd, path, AT_SYMLINK_NOFOLLOW, &kind, abs);
		if (kind != FILE_HOST)
			return -EINVAL;
		if (fd < 0)
			return fd;
		n = readlinkat(fd, "", target, sizeof target);
		e = errno;
		close(fd);
		if (n < 0)
			return e == ENOENT ? -EINVAL : -e;   /* not a symlink */
	}
	size_t len = (size_t)n < (size_t)size ? (size_t)n : (size_t)size;
	return mem_copy_out(&t->proc->mem, buf, target, len) < 0 ? -EFAULT : (long)len;
}

long sys_readlink(struct rt_thread *t, const uint64_t a[6]) { return readlink_at(t, AT_FDCWD, a[0], a[1], a[2]); }
long sys_readlinkat(struct rt_thread *t, const uint64_t a[6]) { return readlink_at(t, (int)a[0], a[1], a[2], a[3]); }

long sys_getcwd(struct rt_thread *t, const uint64_t a[6])
{
	size_t n = strlen(fs(t)->cwd) + 1;
	if (a[1] < n)
		return -ERANGE;
	return mem_copy_out(&t->proc->mem, a[0], fs(t)->cwd, n) < 0 ? -EFAULT : (long)n;
}

static long enter_dir(struct rt_thread *t, int fd)
{
	struct stat st;
	char where[RT_PATH_MAX];
	long e = fstat(fd, &st) < 0 ? -errno : !S_ISDIR(st.st_mode) ? -ENOTDIR : path_of_fd(fs(t), fd, where);
	close(fd);
	if (e == 0)
		memcpy(fs(t)->cwd, where, strlen(where) + 1);
	return e;
}

long sys_chdir(struct rt_thread *t, const uint64_t a[6])
{
	char abs[RT_PATH_MAX];
	int e = path_in(t, AT_FDCWD, a[0], abs, false);
	if (e < 0)
		return e;
	if (path_special(abs))
		return path_special(abs) < 0 ? -EACCES : -ENOTDIR;
	int fd = path_open(fs(t), abs, O_PATH | O_DIRECTORY, 0);
	return fd < 0 ? fd : enter_dir(t, fd);
}

long sys_fchdir(struct rt_thread *t, const uint64_t a[6])
{
	struct rt_file *f = files_get(&t->proc->files, a[0]);
	if (!f)
		return -EBADF;
	if (f->kind != FILE_HOST || !f->dir)
		return -ENOTDIR;
	int fd = fcntl(f->host, F_DUPFD_CLOEXEC, 0);
	return fd < 0 ? -errno : enter_dir(t, fd);
}

long sys_umask(struct rt_thread *t, const uint64_t a[6])
{
	unsigned old = fs(t)->umask;
	fs(t)->umask = (unsigned)a[0] & 0777;
	return old;
}

/* ---- writing: only below --rw ---- */

/* The checked parent directory and last component of a path argument. */
static int parent(struct rt_thread *t, int64_t dirfd, uint64_t path, char base[256])
{
	char abs[RT_PATH_MAX];
	int e = path_in(t, dirfd, path, abs, false);
	if (e < 0)
		return e;
	if (path_special(abs))
		return -EACCES;
	return path_parent_rw(fs(t), abs, base);
}

/* Linux looks a new name up before it asks for write access: an existing one is EEXIST even on a
 * read-only file system. */
static int exists_or(struct rt_thread *t, int64_t dirfd, uint64_t path, int err)
{
	char abs[RT_PATH_MAX];
	if (err != -EROFS || path_in(t, dirfd, path, abs, false) < 0)
		return err;
	int fd = path_open(fs(t), abs, O_PATH | O_NOFOLLOW, 0);
	if (fd < 0)
		return err;
	close(fd);
	return -EEXIST;
}

static long unlink_at(struct rt_thread *t, int64_t dirfd, uint64_t path, int flags)
{
	if (flags & ~AT_REMOVEDIR)
		return -EINVAL;
	char base[256];
	int dfd = parent(t, dirfd, path, base);
	if (dfd < 0)
		return dfd;
	long r = unlinkat(dfd, base, flags) < 0 ? -errno : 0;
	close(dfd);
	return r;
}

long sys_unlink(struct rt_thread *t, const uint64_t a[6]) { return unlink_at(t, AT_FDCWD, a[0], 0); }
long sys_unlinkat(struct rt_thread *t, const uint64_t a[6]) { return unlink_at(t, (int)a[0], a[1], (int)a[2]); }
long sys_rmdir(struct rt_thread *t, const uint64_t a[6]) { return unlink_at(t, AT_FDCWD, a[0], AT_REMOVEDIR); }

static long mkdir_at(struct rt_thread *t, int64_t dirfd, uint64_t path, unsigned mode)
{
	char base[256];
	int dfd = parent(t, dirfd, path, base);
	if (dfd < 0)
		return dfd == -EINVAL ? -EEXIST : exists_or(t, dirfd, path, dfd);
	long r = mkdirat(dfd, base, mode & ~fs(t)->umask & 07777) < 0 ? -errno : 0;
	close(dfd);
	return r;
}

long sys_mkdir(struct rt_thread *t, const uint64_t a[6]) { return mkdir_at(t, AT_FDCWD, a[0], (unsigned)a[1]); }
long sys_mkdirat(struct rt_thread *t, const uint64_t a[6]) { return mkdir_at(t, (int)a[0], a[1], (unsigned)a[2]); }

static long rename_at(struct rt_thread *t, int64_t olddir, uint64_t old, int64_t newdir, uint64_t new, unsigned flags)
{
	char ob[256], nb[256];
	int ofd = parent(t, olddir, old, ob);
	if (ofd < 0)
		return ofd;
	int nfd = parent(t, newdir, new, nb);
	if (nfd < 0) {
		close(ofd);
		return nfd;
	}
	long r = syscall(SYS_renameat2, ofd, ob, nfd, nb, flags) < 0 ? -errno : 0;
	close(ofd);
	close(nfd);
	return r;
}

long sys_rename(struct rt_thread *t, const uint64_t a[6]) { return rename_at(t, AT_FDCWD, a[0], AT_FDCWD, a[1], 0); }
long sys_renameat(struct rt_thread *t, const uint64_t a[6]) { return rename_at(t, (int)a[0], a[1], (int)a[2], a[3], 0); }
long sys_renameat2(struct rt_thread *t, const uint64_t a[6])
{
	return rename_at(t, (int)a[0], a[1], (int)a[2], a[3], (unsigned)a[4]);
}

static long symlink_at(struct rt_thread *t, uint64_t target, int64_t dirfd, uint64_t path)
{
	char tgt[RT_PATH_MAX], base[256];
	long n = mem_str_in(&t->proc->mem, tgt, target, sizeof tgt);
	if (n < 0)
		return n;
	if (n == 0)
		return -ENOENT;
	int dfd = parent(t, dirfd, path, base);
	if (dfd < 0)
		return exists_or(t, dirfd, path, dfd);
	/* The link's text is data: whatever it says, lookups through it stay below the root. */
	long r = symlinkat(tgt, dfd, base) < 0 ? -errno : 0;
	close(dfd);
	return r;
}

long sys_symlink(struct rt_thread *t, const uint64_t a[6]) { return symlink_at(t, a[0], AT_FDCWD, a[1]); }
long sys_symlinkat(struct rt_thread *t, const uint64_t a[6]) { return symlink_at(t, a[0], (int)a[1], a[2]); }

/* chmod, utimensat: an existing object, checked where it is. */
static int existing_rw(struct rt_thread *t, int64_t dirfd, uint64_t path, int atflags)
{
	enum file_kind kind;
	char abs[RT_PATH_MAX];
	int fd = lookup(t, dirfd, path, atflags, &kind, abs);
	if (kind != FILE_HOST)
		return -EPERM;
	if (fd < 0)
		return fd;
	int e = path_fd_writable(fs(t), fd);
	if (e < 0) {
		close(fd);
		return e;
	}
	return fd;
}

static long chmod_at(struct rt_thread *t, int64_t dirfd, uint64_t path, unsigned mode, int atflags)
{
	int fd = existing_rw(t, dirfd, path, atflags);
	if (fd < 0)
		return fd;
	char link[64];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	long r = chmod(link, mode & 07777) < 0 ? -errno : 0;
	close(fd);
	return r;
}

long sys_chmod(struct rt_thread *t, const uint64_t a[6]) { return chmod_at(t, AT_FDCWD, a[0], (unsigned)a[1], 0); }
long sys_fchmodat(struct rt_thread *t, const uint64_t a[6]) { return chmod_at(t, (int)a[0], a[1], (unsigned)a[2], 0); }
long sys_fchmod(struct rt_thread *t, const uint64_t a[6])
{
	struct rt_file *f = files_get(&t->proc->files, a[0]);
	if (!f)
		return -EBADF;
	if (f->kind != FILE_HOST || path_fd_writable(fs(t), f->host) < 0)
		return -EROFS;
	return fchmod(f->host, (unsigned)a[1] & 07777) < 0 ? -errno : 0;
}

long sys_utimensat(struct rt_thread *t, const uint64_t a[6])
{
	struct timespec ts[2];
	if (a[2] && mem_copy_in(&t->proc->mem, ts, a[2], sizeof ts) < 0)
		return -EFAULT;
	int fd = a[1] ? existing_rw(t, (int)a[0], a[1], (int)a[3] & AT_SYMLINK_NOFOLLOW) : -EINVAL;
	if (!a[1]) {
		struct rt_file *f = files_get(&t->proc->files, a[0]);
		if (!f || f->kind != FILE_HOST)
			return -EBADF;
		if (path_fd_writable(fs(t), f->host) < 0)
			return -EROFS;
		return futimens(f->host, a[2] ? ts : NULL) < 0 ? -errno : 0;
	}
	if (fd < 0)
		return fd;
	long r = utimensat(fd, "", a[2] ? ts : NULL, AT_EMPTY_PATH) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static long statfs_fd(struct rt_thread *t, int fd, uint64_t out)
{
	struct statfs s;
	int r = fstatfs(fd, &s);
	int e = errno;
	close(fd);
	return r < 0 ? -e : mem_copy_out(&t->proc->mem, out, &s, sizeof s);
}

long sys_statfs(struct rt_thread *t, const uint64_t a[6])
{
	enum file_kind kind;
	char abs[RT_PATH_MAX];
	int fd = lookup(t, AT_FDCWD, a[0], 0, &kind, abs);
	if (kind != FILE_HOST)
		return -ENOSYS;
	return fd < 0 ? fd : statfs_fd(t, fd, a[1]);
}

long sys_fstatfs(struct rt_thread *t, const uint64_t a[6])
{
	struct rt_file *f = files_get(&t->proc->files, a[0]);
	if (!f)
		return -EBADF;
	if (f->kind != FILE_HOST)
		return -ENOSYS;
	int fd = fcntl(f->host, F_DUPFD_CLOEXEC, 0);
	return fd < 0 ? -errno : statfs_fd(t, fd, a[1]);
}
