/* SPDX-License-Identifier: MIT */
/* Escape attempts with --root: `..`, symlinks, descriptors and the cwd must all stay inside the
 * fixture root, and nothing outside --rw may change (see escape.h for the fixture). */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "escape.h"

static void cwd_is(const char *want, const char *what)
{
	char buf[4096];
	char *r = getcwd(buf, sizeof buf);
	if (!guest_ok(r && !strcmp(buf, want), "%s: getcwd is %s", what, want))
		printf("#   got %s\n", r ? buf : guest_errname(errno));
}

static void dotdot(const char *tmp)
{
	char path[4096];
	escape_unreadable("../../../../etc/hostname", ENOENT, NULL, "relative climb");
	escape_unreadable("/../../../../etc/hostname", ENOENT, NULL, "absolute climb");
	escape_unreadable("/../secret", ENOENT, HOST_SECRET, "one level above the root");
	escape_unreadable("/etc/../../secret", ENOENT, HOST_SECRET, "above the root through a directory");
	SUCCEEDS("chdir(/)", chdir("/"));
	int climbed = 0;
	for (int i = 0; i < 20; i++)
		climbed += chdir("..") == 0;
	guest_ok(climbed == 20, "chdir(\"..\") at the root succeeds 20 times");
	cwd_is("/", "after 20 chdir(..)");
	escape_unreadable("secret", ENOENT, HOST_SECRET, "after climbing");
	escape_reads("etc/passwd", FIXTURE_PASSWD, "after climbing");
	snprintf(path, sizeof path, "%s/secret", tmp);
	escape_unreadable(path, ENOENT, HOST_SECRET, "the host path of the secret");
	struct stat st;
	FAILS(ENOENT, "stat of the host temp dir", stat(tmp, &st));
	FAILS(ENOENT, "stat(/usr) (the host's, not in the fixture)", stat("/usr", &st));
	FAILS(ENOENT, "stat(/bin/sh)", stat("/bin/sh", &st));

	SUCCEEDS("chdir(/dir/sub)", chdir("/dir/sub"));
	cwd_is("/dir/sub", "cwd does not show the host path");
	escape_unreadable("../../../secret", ENOENT, HOST_SECRET, "from /dir/sub");
	int sub = open("/dir/sub", O_RDONLY | O_DIRECTORY);
	int root = open("/", O_RDONLY | O_DIRECTORY);
	if (!guest_ok(sub >= 0 && root >= 0, "open / and /dir/sub as directories"))
		printf("#   got %s\n", guest_errname(errno));
	FAILS(ENOENT, "openat(/dir/sub, ../../../secret)", openat(sub, "../../../secret", O_RDONLY));
	FAILS(ENOENT, "openat(/, ../../secret)", openat(root, "../../secret", O_RDONLY));
	FAILS(ENOENT, "openat(/, ..) then secret",
	      openat(openat(root, "..", O_RDONLY | O_DIRECTORY), "secret", O_RDONLY));
	SUCCEEDS("fchdir(/dir/sub)", fchdir(sub));
	SUCCEEDS("chdir(../../../../..)", chdir("../../../../.."));
	cwd_is("/", "fchdir then climb");
	close(sub);
	close(root);
}

static void symlinks(void)
{
	char buf[256];
	escape_reads("/abs", FIXTURE_PASSWD, "absolute symlink");
	escape_reads("/rel", FIXTURE_PASSWD, "relative symlink with many ..");
	escape_unreadable("/dir/sub/climb", ENOENT, HOST_SECRET, "relative symlink climbing to the host");
	escape_unreadable("/hostabs", ENOENT, HOST_SECRET, "symlink to the host path of the secret");
	escape_unreadable("/hostdir/secret", ENOENT, HOST_SECRET, "symlink to the host temp dir");
	escape_unreadable("/up/secret", ENOENT, HOST_SECRET, "directory symlink to ..");
	escape_reads("/up/etc/passwd", FIXTURE_PASSWD, "directory symlink to ..");
	escape_unreadable("/up/up/up/secret", ENOENT, HOST_SECRET, "directory symlink to .. thrice");
	escape_unreadable("/loop", ELOOP, NULL, "symlink to itself");
	escape_unreadable("/chain0", ELOOP, NULL, "45 chained symlinks");
	escape_unreadable("/procmem", 0, NULL, "symlink to /proc/self/mem");
	escape_unreadable("/kvm", 0, NULL, "symlink to /dev/kvm");
	escape_unreadable("/devdir/kvm", 0, NULL, "directory symlink to /dev, then kvm");
	long n = readlink("/abs", buf, sizeof buf - 1);
	guest_ok(n == 11 && !memcmp(buf, "/etc/passwd", 11), "readlink gives the literal target");
	SUCCEEDS("chdir(/up)", chdir("/up"));
	cwd_is("/", "chdir through a symlink to ..");
}

/* The host's /proc, /sys and /dev are not in a fixture root at all. */
static void special(void)
{
	escape_unreadable("/proc/self/mem", 0, NULL, "no host /proc");
	escape_unreadable("/proc/self/environ", 0, NULL, "no host /proc");
	escape_unreadable("/proc/1/root/etc/hostname", 0, NULL, "no host /proc");
	escape_unreadable("/proc/self/root/etc/hostname", 0, NULL, "no host /proc");
	escape_unreadable("/sys/kernel/mm/transparent_hugepage/enabled", 0, NULL, "no host /sys");
	escape_unreadable("/dev/kvm", 0, NULL, "no /dev/kvm");
	escape_unreadable("/dev/../dev/kvm", 0, NULL, "no /dev/kvm");
	struct file_handle *h = calloc(1, sizeof *h + 8);
	h->handle_bytes = 8;
	h->handle_type = 1;                 /* FILEID_INO32_GEN: inode 2 is the root of most file systems */
	((unsigned *)h->f_handle)[0] = 2;
	int root = open("/", O_RDONLY | O_DIRECTORY);
	FAILS(0, "open_by_handle_at (the classic container breakout)", syscall(SYS_open_by_handle_at, root, h, O_RDONLY));
	int mnt;
	FAILS(0, "name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, "/etc/passwd", h, &mnt, 0));
	free(h);
	close(root);
}

/* Each of these is a write outside --rw: EROFS, as on a read-only mount. */
static void readonly(void)
{
	FAILS(EROFS, "open(O_WRONLY) outside rw", open("/data/file", O_WRONLY));
	FAILS(EROFS, "open(O_RDWR) outside rw", open("/data/file", O_RDWR));
	FAILS(EROFS, "open(O_RDONLY|O_TRUNC) outside rw", open("/data/file", O_RDONLY | O_TRUNC));
	FAILS(EROFS, "open(O_WRONLY|O_APPEND) outside rw", open("/data/file", O_WRONLY | O_APPEND));
	FAILS(EROFS, "open(O_CREAT) outside rw", open("/data/new", O_WRONLY | O_CREAT, 0644));
	FAILS(EROFS, "creat at the root", creat("/newfile", 0644));
	FAILS(0, "O_TMPFILE outside rw", open("/data", O_TMPFILE | O_WRONLY, 0600));
	FAILS(EROFS, "mkdir outside rw", mkdir("/newdir", 0755));
	FAILS(EROFS, "rmdir outside rw", rmdir("/data/dir"));
	FAILS(EROFS, "unlink outside rw", unlink("/data/file"));
	FAILS(EROFS, "rename outside rw", rename("/data/file", "/data/file2"));
	FAILS(0, "rename from outside rw into rw", rename("/data/file", "/rw/stolen"));
	FAILS(0, "rename of the rw directory itself", rename("/rw", "/rw2"));
	FAILS(0, "hard link into rw of a read-only file", link("/data/file", "/rw/hardlink"));
	FAILS(EROFS, "symlink outside rw", symlink("x", "/data/sl"));
	FAILS(0, "mkfifo outside rw", mkfifo("/data/fifo", 0644));
	FAILS(0, "truncate outside rw", truncate("/data/file", 0));
	FAILS(0, "chmod outside rw", chmod("/data/file", 0777));
	FAILS(0, "chown outside rw", chown("/data/file", 1, 1));
	FAILS(0, "utimensat outside rw", utimensat(AT_FDCWD, "/data/file", NULL, 0));
	FAILS(0, "setxattr outside rw", setxattr("/data/file", "user.x", "1", 1, 0));
	int fd = open("/data/file", O_RDONLY);
	guest_ok(fd >= 0, "open(O_RDONLY) outside rw works");
	FAILS(EBADF, "write to a read-only fd", write(fd, "GUEST", 5));
	FAILS(0, "ftruncate of a read-only fd", ftruncate(fd, 0));
	FAILS(0, "fchmod of a read-only fd", fchmod(fd, 0777));
	FAILS(0, "fallocate on a read-only fd", fallocate(fd, 0, 0, 4096));
	FAILS(0, "pwrite to a read-only fd", pwrite(fd, "GUEST", 5, 0));
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	FAILS(0, "mmap(MAP_SHARED, PROT_WRITE) of a read-only fd", m == MAP_FAILED ? -1 : 0);
	m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (m != MAP_FAILED) {
		FAILS(EACCES, "mprotect(PROT_WRITE) of a shared read-only file mapping", mprotect(m, 4096, PROT_READ | PROT_WRITE));
		if (mprotect(m, 4096, PROT_READ | PROT_WRITE) == 0) {
			memcpy(m, "GUEST", 5);   /* the driver checks the file did not change */
			msync(m, 4096, MS_SYNC);
		}
		munmap(m, 4096);
	}
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (m != MAP_FAILED) {
		memcpy(m, "GUEST", 5);       /* private: the file must not change (the driver checks) */
		munmap(m, 4096);
	}
	close(fd);
	int dir = open("/data", O_RDONLY | O_DIRECTORY);
	FAILS(EROFS, "openat(O_CREAT) in a read-only directory fd", openat(dir, "new", O_CREAT | O_WRONLY, 0644));
	FAILS(EROFS, "mkdirat in a read-only directory fd", mkdirat(dir, "new", 0755));
	close(dir);
}

/* Writes that name rw but land outside it: lexically, through the cwd, a dirfd, or symlinks. */
static void rw_tricks(const char *tmp)
{
	char path[4096];
	FAILS(EROFS, "open(/rw/../data/file, O_WRONLY)", open("/rw/../data/file", O_WRONLY));
	FAILS(EROFS, "open(/rw/../newfile, O_CREAT)", open("/rw/../newfile", O_WRONLY | O_CREAT, 0644));
	FAILS(EROFS, "mkdir(/rw/../newdir)", mkdir("/rw/../newdir", 0755));
	FAILS(EROFS, "unlink(/rw/../data/file)", unlink("/rw/../data/file"));
	SUCCEEDS("chdir(/rw)", chdir("/rw"));
	FAILS(EROFS, "cwd rw: open(../data/file, O_WRONLY)", open("../data/file", O_WRONLY));
	FAILS(EROFS, "cwd rw: creat(../newfile)", creat("../newfile", 0644));
	int rw = open("/rw", O_RDONLY | O_DIRECTORY);
	FAILS(EROFS, "openat(rw, ../data/file, O_WRONLY)", openat(rw, "../data/file", O_WRONLY));
	FAILS(EROFS, "openat(rw, ../newfile, O_CREAT)", openat(rw, "../newfile", O_WRONLY | O_CREAT, 0644));
	FAILS(0, "renameat(rw, x, rw, ../x)", renameat(rw, "out_abs", rw, "../moved"));
	FAILS(EROFS, "symlink in rw to /data/file, O_WRONLY", open("/rw/out_abs", O_WRONLY));
	FAILS(EROFS, "symlink in rw to ../data/file, O_TRUNC", open("/rw/out_rel", O_WRONLY | O_TRUNC));
	FAILS(0, "dangling symlink in rw to ../newfile, O_CREAT", open("/rw/out_dangling", O_WRONLY | O_CREAT, 0644));
	FAILS(EROFS, "directory symlink in rw to ../data, write a file", open("/rw/out_dir/file", O_WRONLY));
	FAILS(EROFS, "directory symlink in rw to ../data, create", open("/rw/out_dir/new", O_WRONLY | O_CREAT, 0644));
	FAILS(EROFS, "directory symlink in rw to ../data, unlink", unlink("/rw/out_dir/file"));
	FAILS(EROFS, "directory symlink in rw to ../data, mkdir", mkdir("/rw/out_dir/newdir", 0755));
	FAILS(0, "dangling symlink in rw to a host path, O_CREAT", open("/rw/host_dangling", O_WRONLY | O_CREAT, 0644));
	FAILS(0, "rmdir of the rw directory itself", rmdir("/rw"));
	/* Symlinks the guest makes itself in rw */
	SUCCEEDS("symlink in rw to ../data/file", symlink("../data/file", "/rw/mine"));
	FAILS(EROFS, "own symlink in rw to ../data/file, O_WRONLY", open("/rw/mine", O_WRONLY));
	snprintf(path, sizeof path, "%s/created", tmp);
	SUCCEEDS("symlink in rw to the host temp dir", symlink(path, "/rw/mine_host"));
	FAILS(0, "own symlink in rw to a host path, O_CREAT", open("/rw/mine_host", O_WRONLY | O_CREAT, 0644));
	SUCCEEDS("symlink in rw to ../../../../secret", symlink("../../../../secret", "/rw/mine_up"));
	escape_unreadable("/rw/mine_up", ENOENT, HOST_SECRET, "own climbing symlink");
	close(rw);
}

/* Inside rw, everything works; the driver checks rw/d/proof afterwards. */
static void writable(void)
{
	int fd = open("/rw/new", O_WRONLY | O_CREAT | O_EXCL, 0644);
	guest_ok(fd >= 0 && write(fd, "proof\n", 6) == 6, "create and write a file in rw");
	close(fd);
	char buf[64];
	long n = escape_slurp("/rw/new", buf, sizeof buf);
	guest_ok(n == 6 && !strcmp(buf, "proof\n"), "read it back");
	SUCCEEDS("mkdir in rw", mkdir("/rw/d", 0755));
	SUCCEEDS("rename in rw", rename("/rw/new", "/rw/d/proof"));
	SUCCEEDS("symlink in rw", symlink("proof", "/rw/d/link"));
	escape_reads("/rw/d/link", "proof\n", "symlink inside rw");
	SUCCEEDS("unlink in rw", unlink("/rw/d/link"));
	SUCCEEDS("mkdir in rw again", mkdir("/rw/d/gone", 0755));
	SUCCEEDS("rmdir in rw", rmdir("/rw/d/gone"));
	fd = open("/rw/trunc", O_RDWR | O_CREAT | O_TRUNC, 0644);
	guest_ok(fd >= 0 && write(fd, "abcdef", 6) == 6 && ftruncate(fd, 3) == 0, "ftruncate in rw");
	close(fd);
	SUCCEEDS("unlink in rw", unlink("/rw/trunc"));
}

void escape_root(const char *tmp)
{
	char buf[4096];
	if (getcwd(buf, sizeof buf))
		printf("# initial cwd: %s\n", buf);
	dotdot(tmp);
	symlinks();
	special();
	readonly();
	rw_tricks(tmp);
	writable();
	SUCCEEDS("chdir(/)", chdir("/"));
}
