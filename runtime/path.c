/* SPDX-License-Identifier: MIT */
/* Guest paths to host objects. Every lookup is openat2(RESOLVE_IN_ROOT) from the root's descriptor,
 * so `..`, absolute symlinks and relative ones all stay below the root, and the kernel does the
 * walking (no check-then-use race in our own string handling). What it returns is checked once more
 * against the host's /proc, /sys and /dev mounts and device nodes; writes must land below --rw. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "runtime.h"

static bool below(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == 0);
}

/* The devices of every host mount at or below /proc, /sys and /dev (devtmpfs, devpts, mqueue,
 * cgroup, ...), from the runner's own mountinfo. */
static void read_denied_mounts(struct rt_fs *fs)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return;   /* then the file-type and fs-magic checks still refuse devices, proc and sysfs */
	char line[4096];
	while (fgets(line, sizeof line, f) && fs->ndeny < sizeof fs->deny / sizeof fs->deny[0]) {
		unsigned maj, min;
		char mnt[4096];
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mnt) != 3)
			continue;
		if (below(mnt, "/proc") || below(mnt, "/sys") || below(mnt, "/dev"))
			fs->deny[fs->ndeny++] = makedev(maj, min);
	}
	fclose(f);
}

int fs_init(struct rt_fs *fs, const char *root, const char *const *rw, unsigned nrw)
{
	memset(fs, 0, sizeof *fs);
	fs->root = -1;
	char *real = realpath(root ? root : "/", NULL);
	if (!real)
		return rt_fail(2, "--root %s: %s", root, strerror(errno));
	fs->root = open(real, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->root < 0) {
		int e = errno;
		free(real);
		return rt_fail(2, "--root %s: %s", root, strerror(e));
	}
	if (!strcmp(real, "/"))
		real[0] = 0;
	fs->root_path = real;
	fs->rw = calloc(nrw + 1, sizeof *fs->rw);
	if (!fs->rw)
		return rt_fail(2, "out of memory");
	for (unsigned i = 0; i < nrw; i++) {
		char *d = realpath(rw[i], NULL);
		if (!d)
			return rt_fail(2, "--rw %s: %s", rw[i], strerror(errno));
		fs->rw[fs->nrw++] = d;
		struct stat st;
		if (stat(d, &st) < 0 || !S_ISDIR(st.st_mode))
			return rt_fail(2, "--rw %s: not a directory", rw[i]);
		if (!below(d, fs->root_path[0] ? fs->root_path : "/") && fs->root_path[0])
			return rt_fail(2, "--rw %s: not below --root %s", rw[i], fs->root_path);
	}
	/* The caller's working directory if the program can see it, else the root. */
	char cwd[RT_PATH_MAX];
	strcpy(fs->cwd, "/");
	if (getcwd(cwd, sizeof cwd)) {
		if (!fs->root_path[0])
			snprintf(fs->cwd, sizeof fs->cwd, "%s", cwd);
		else if (below(cwd, fs->root_path) && cwd[strlen(fs->root_path)])
			snprintf(fs->cwd, sizeof fs->cwd, "%s", cwd + strlen(fs->root_path));
	}
	/* The guest's umask is applied by hand; the host's must not narrow it further. */
	fs->umask = umask(0);
	read_denied_mounts(fs);
	return 0;
}

void fs_destroy(struct rt_fs *fs)
{
	if (fs->root >= 0)
		close(fs->root);
	for (unsigned i = 0; i < fs->nrw; i++)
		free(fs->rw[i]);
	free(fs->rw);
	free(fs->root_path);
	memset(fs, 0, sizeof *fs);
	fs->root = -1;
}

/* The path with `.`, `..` and repeated slashes taken out, `..` stopping at /. Only for deciding
 * what the runtime serves itself; host lookups use the path as given, which the kernel walks. */
static void clean(const char *abs, char out[RT_PATH_MAX])
{
	size_t n = 0;
	out[n++] = '/';
	for (const char *p = abs; *p;) {
		while (*p == '/')
			p++;
		const char *e = p;
		while (*e && *e != '/')
			e++;
		size_t len = (size_t)(e - p);
		if (len == 0 || (len == 1 && p[0] == '.')) {
			/* nothing */
		} else if (len == 2 && p[0] == '.' && p[1] == '.') {
			while (n > 1 && out[n - 1] != '/')
				n--;
			if (n > 1)
				n--;
			while (n > 1 && out[n - 1] != '/')
				n--;
		} else if (n + len + 1 < RT_PATH_MAX) {
			if (out[n - 1] != '/')
				out[n++] = '/';
			memcpy(out + n, p, len);
			n += len;
		}
		p = e;
	}
	if (n > 1 && out[n - 1] == '/')
		n--;
	out[n] = 0;
}

int path_special(const char *abs)
{
	char c[RT_PATH_MAX];
	clean(abs, c);
	if (!strcmp(c, "/dev/null"))
		return FILE_NULL;
	if (!strcmp(c, "/dev/zero"))
		return FILE_ZERO;
	if (!strcmp(c, "/dev/urandom") || !strcmp(c, "/dev/random"))
		return FILE_RANDOM;
	if (below(c, "/proc") || below(c, "/sys") || below(c, "/dev"))
		return -EACCES;
	return 0;
}

bool path_fd_denied(const struct rt_fs *fs, int fd)
{
	struct stat st;
	struct statfs sfs;
	if (fstat(fd, &st) < 0)
		return true;
	/* Some file systems (9p) answer no fstatfs on an O_PATH descriptor of a symlink; its device
	 * is still checked below. */
	if (fstatfs(fd, &sfs) < 0) {
		if (!S_ISLNK(st.st_mode))
			return true;
		sfs.f_type = 0;
	}
	/* No device node, socket or FIFO of the host: /dev/kvm, /dev/mem, a tty elsewhere, ... */
	if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode))
		return true;
	switch ((unsigned long)sfs.f_type) {
	case PROC_SUPER_MAGIC: case SYSFS_MAGIC: case DEVPTS_SUPER_MAGIC: case CGROUP_SUPER_MAGIC:
	case CGROUP2_SUPER_MAGIC: case DEBUGFS_MAGIC: case SECURITYFS_MAGIC: case TRACEFS_MAGIC:
	case BPF_FS_MAGIC:
		return true;
	}
	for (unsigned i = 0; i < fs->ndeny; i++)
		if (st.st_dev == fs->deny[i])
			return true;
	return false;
}

int path_open(struct rt_fs *fs, const char *abs, int flags, unsigned mode)
{
	struct open_how how = {
		.flags = (uint64_t)(unsigned)(flags | O_CLOEXEC),
		.mode = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? mode : 0,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	while (*abs == '/')
		abs++;
	/* openat2 answers EAGAIN when a rename anywhere on the host raced with a `..` it resolved
	 * (RESOLVE_IN_ROOT's check): the lookup is retried, boundedly, as its manual page asks. */
	int fd = -1;
	for (int tries = 0; tries < 64; tries++) {
		fd = (int)syscall(SYS_openat2, fs->root, *abs ? abs : ".", &how, sizeof how);
		if (fd >= 0 || errno != EAGAIN)
			break;
	}
	if (fd < 0)
		return -errno;
	if (path_fd_denied(fs, fd)) {
		close(fd);
		return -EACCES;
	}
	return fd;
}

static int host_path(int fd, char out[RT_PATH_MAX])
{
	char link[64];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, out, RT_PATH_MAX - 1);
	if (n < 0)
		return -errno;
	out[n] = 0;
	return 0;
}

int path_fd_writable(const struct rt_fs *fs, int fd)
{
	char p[RT_PATH_MAX];
	if (host_path(fd, p) < 0)
		return -EROFS;
	for (unsigned i = 0; i < fs->nrw; i++)
		if (below(p, fs->rw[i]))
			return 0;
	return -EROFS;
}

int path_of_fd(const struct rt_fs *fs, int fd, char out[RT_PATH_MAX])
{
	char p[RT_PATH_MAX];
	int e = host_path(fd, p);
	if (e < 0)
		return e;
	if (!fs->root_path[0]) {
		memcpy(out, p, strlen(p) + 1);
		return 0;
	}
	if (!below(p, fs->root_path))
		return -ENOENT;
	const char *rest = p + strlen(fs->root_path);
	snprintf(out, RT_PATH_MAX, "%s", *rest ? rest : "/");
	return 0;
}

int path_parent_rw(struct rt_fs *fs, const char *abs, char base[256])
{
	char dir[RT_PATH_MAX];
	size_t n = strlen(abs);
	memcpy(dir, abs, n + 1);
	while (n > 1 && dir[n - 1] == '/')
		dir[--n] = 0;
	char *slash = strrchr(dir, '/');
	const char *b = slash + 1;
	if (!*b || !strcmp(b, ".") || !strcmp(b, ".."))
		return -EINVAL;   /* the root itself, or a name that is not a new entry */
	if (strlen(b) > 255)
		return -ENAMETOOLONG;
	strcpy(base, b);
	if (slash == dir)
		dir[1] = 0;
	else
		*slash = 0;
	int dfd = path_open(fs, dir, O_PATH | O_DIRECTORY, 0);
	if (dfd < 0)
		return dfd;
	int e = path_fd_writable(fs, dfd);
	if (e < 0) {
		close(dfd);
		return e;
	}
	return dfd;
}

int path_in(struct rt_thread *t, int64_t dirfd, uint64_t va, char out[RT_PATH_MAX], bool empty_ok)
{
	char rel[RT_PATH_MAX];
	long n = mem_str_in(&t->proc->mem, rel, va, sizeof rel);
	if (n < 0)
		return (int)n;
	if (n == 0 && !empty_ok)
		return -ENOENT;
	if (rel[0] == '/') {
		memcpy(out, rel, (size_t)n + 1);
		return 0;
	}
	const char *base = t->proc->fs.cwd;
	if ((int)dirfd != AT_FDCWD) {
		struct rt_file *f = files_get(&t->proc->files, (uint64_t)dirfd);
		if (!f)
			return -EBADF;
		if (n == 0) {
			out[0] = 0;   /* AT_EMPTY_PATH: the descriptor itself */
			return 0;
		}
		if (!f->dir || !f->gpath)
			return -ENOTDIR;
		base = f->gpath;
	}
	if (snprintf(out, RT_PATH_MAX, "%s%s%s", base, n ? "/" : "", rel) >= RT_PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}
