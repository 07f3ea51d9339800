/* SPDX-License-Identifier: MIT */
/* Escape attempts with the default root /: the host's /proc, /sys and /dev stay unreachable however
 * they are named, the four served devices work, host files are read-only outside --rw, and execve
 * cannot start a host process. TMP is the driver's temporary directory (see escape.h). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "escape.h"

static char tmp_path[2048];

static const char *at(const char *name)
{
	static char paths[4][4096];
	static int next;
	char *p = paths[next++ % 4];
	snprintf(p, sizeof paths[0], "%s/%s", tmp_path, name);
	return p;
}

/* /proc/self/mem and friends however they are reached: plain, lexical tricks, cwd, dirfds and
 * symlinks. */
static void unreachable(void)
{
	static const char *const plain[] = {
		"/proc/self/mem", "/proc/self/environ", "/proc/self/maps", "/proc/1/root/etc/hostname",
		"/proc/self/root/etc/hostname", "/proc/self/cwd/.", "/proc/self/fd/0", "/proc/thread-self/mem",
		"/proc/kcore", "/proc/sys/kernel/hostname",
		"/sys/kernel/mm/transparent_hugepage/enabled", "/sys/class/net/lo/address",
		"/dev/kvm", "/dev/mem", "/dev/vda", "/dev/sda", "/dev/tty",
		"//proc//self//mem", "/./proc/./self/mem", "/proc/../proc/self/mem", "/tmp/../proc/self/mem",
		"/dev/./kvm", "//dev//kvm", "/proc/../dev/kvm", "/dev/../dev/kvm", "/../../dev/kvm",
	};
	for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
		escape_unreadable(plain[i], 0, NULL, "host special file");
	FAILS(EACCES, "open(/dev/kvm, O_RDWR)", open("/dev/kvm", O_RDWR));
	FAILS(EACCES, "open(/proc/self/mem, O_RDWR)", open("/proc/self/mem", O_RDWR));
	FAILS(0, "open(/dev/kvm, O_PATH)", open("/dev/kvm", O_PATH));
	FAILS(0, "open(/proc/self/mem, O_PATH)", open("/proc/self/mem", O_PATH));
	char buf[4096];
	FAILS(0, "readlink(/proc/self/root)", readlink("/proc/self/root", buf, sizeof buf));
	FAILS(0, "readlink(/proc/self/cwd)", readlink("/proc/self/cwd", buf, sizeof buf));
	FAILS(0, "readlink(/proc/self/fd/1)", readlink("/proc/self/fd/1", buf, sizeof buf));

	SUCCEEDS("chdir(/)", chdir("/"));
	escape_unreadable("proc/self/mem", 0, NULL, "relative to cwd /");
	escape_unreadable("dev/kvm", 0, NULL, "relative to cwd /");
	escape_unreadable("./dev/../dev/kvm", 0, NULL, "relative to cwd /");
	if (chdir("/dev") == 0) {
		escape_unreadable("kvm", 0, NULL, "cwd /dev");
		escape_unreadable("./kvm", 0, NULL, "cwd /dev");
	} else {
		guest_ok(errno != 0, "chdir(/dev) fails (%s), so no cwd there", guest_errname(errno));
	}
	if (chdir("/proc/self") == 0)
		escape_unreadable("mem", 0, NULL, "cwd /proc/self");
	else
		guest_ok(errno != 0, "chdir(/proc/self) fails (%s)", guest_errname(errno));
	SUCCEEDS("chdir(/)", chdir("/"));
	int root = open("/", O_RDONLY | O_DIRECTORY);
	FAILS(0, "openat(/, proc/self/mem)", openat(root, "proc/self/mem", O_RDONLY));
	FAILS(0, "openat(/, dev/kvm)", openat(root, "dev/kvm", O_RDWR));
	FAILS(0, "openat(/, sys/kernel/notes)", openat(root, "sys/kernel/notes", O_RDONLY));
	close(root);
	int dev = open("/dev", O_RDONLY | O_DIRECTORY);
	if (dev >= 0) {
		FAILS(0, "openat(/dev fd, kvm)", openat(dev, "kvm", O_RDWR));
		close(dev);
	}
	int proc = open("/proc", O_RDONLY | O_DIRECTORY);
	if (proc >= 0) {
		FAILS(0, "openat(/proc fd, self/mem)", openat(proc, "self/mem", O_RDONLY));
		close(proc);
	}
	escape_unreadable(at("link_mem"), 0, NULL, "host symlink to /proc/self/mem");
	escape_unreadable(at("link_kvm"), 0, NULL, "host symlink to /dev/kvm");
	escape_unreadable(at("link_proc/mem"), 0, NULL, "host symlink to /proc/self, then mem");
	escape_unreadable(at("link_dev/kvm"), 0, NULL, "host symlink to /dev, then kvm");
}

static void served_devices(const char *self)
{
	char buf[64];
	int fd = open("/dev/null", O_RDWR);
	guest_ok(fd >= 0 && write(fd, "x", 1) == 1 && read(fd, buf, sizeof buf) == 0, "/dev/null: writes vanish, reads end");
	close(fd);
	memset(buf, 1, sizeof buf);
	fd = open("/dev/zero", O_RDONLY);
	bool zero = fd >= 0 && read(fd, buf, sizeof buf) == (long)sizeof buf;
	for (size_t i = 0; i < sizeof buf; i++)
		zero = zero && buf[i] == 0;
	guest_ok(zero, "/dev/zero reads zeros");
	close(fd);
	static const char *const rnd[] = { "/dev/urandom", "/dev/random" };
	for (int i = 0; i < 2; i++) {
		memset(buf, 0, sizeof buf);
		fd = open(rnd[i], O_RDONLY);
		bool some = fd >= 0 && read(fd, buf, 32) == 32;
		int nonzero = 0;
		for (int j = 0; j < 32; j++)
			nonzero += buf[j] != 0;
		guest_ok(some && nonzero > 8, "%s reads random bytes", rnd[i]);
		close(fd);
	}
	char exe[PATH_MAX], want[PATH_MAX];
	long n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[n > 0 ? n : 0] = 0;
	if (!realpath(self, want))
		snprintf(want, sizeof want, "%s", self);
	if (!guest_ok(n > 0 && !strcmp(exe, want), "readlink(/proc/self/exe) is the program"))
		printf("#   got \"%s\" (%s), want \"%s\"\n", exe, n < 0 ? guest_errname(errno) : "", want);
}

static void host_files(void)
{
	escape_reads(at("ro.txt"), HOST_RO, "host file");
	int fd = open(at("rw/proof"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	guest_ok(fd >= 0 && write(fd, "proof\n", 6) == 6, "create and write a file in rw");
	close(fd);
	FAILS(0, "rename a file out of rw", rename(at("rw/proof"), at("outside")));
	FAILS(EROFS, "open(O_WRONLY) of a host file", open(at("ro.txt"), O_WRONLY));
	FAILS(EROFS, "open(O_TRUNC) of a host file", open(at("ro.txt"), O_RDONLY | O_TRUNC));
	FAILS(EROFS, "creat next to a host file", creat(at("created"), 0644));
	FAILS(EROFS, "unlink of a host file", unlink(at("ro.txt")));
	FAILS(EROFS, "rename of a host file", rename(at("ro.txt"), at("moved")));
	FAILS(EROFS, "mkdir in the host temp dir", mkdir(at("newdir"), 0755));
	FAILS(EROFS, "chmod of a host file", chmod(at("ro.txt"), 0777));
	FAILS(EROFS, "creat in /", creat("/ringfence-escape-test", 0644));
	FAILS(EROFS, "open(/etc/hostname, O_WRONLY)", open("/etc/hostname", O_WRONLY | O_APPEND));

	FAILS(0, "link a host file into rw", link(at("ro.txt"), at("rw/hardlink")));
	FAILS(EROFS, "rw/../ro.txt, O_WRONLY", open(at("rw/../ro.txt"), O_WRONLY));
	FAILS(EROFS, "rw/out (symlink to the host file), O_WRONLY", open(at("rw/out"), O_WRONLY));
	FAILS(EROFS, "rw/up/ro.txt (directory symlink to ..), O_WRONLY", open(at("rw/up/ro.txt"), O_WRONLY));
	FAILS(EROFS, "rw/up/created (directory symlink to ..), O_CREAT", open(at("rw/up/created"), O_WRONLY | O_CREAT, 0644));
	SUCCEEDS("mkdir rw/mnt", mkdir(at("rw/mnt"), 0755));
	FAILS(0, "mount a tmpfs on rw/mnt", mount("none", at("rw/mnt"), "tmpfs", 0, NULL));
	FAILS(0, "chroot", chroot(at("rw")));
}

/* Last, because in-sandbox success replaces this program: `escape mark TMP/marker` must not create
 * the marker (it is outside rw), whether execve runs it in the sandbox or fails. */
static void exec_host(const char *self)
{
	char *argv[] = { (char *)"escape", (char *)"mark", (char *)at("marker"), NULL };
	char *envp[] = { NULL };
	printf("# execve next: %s mark %s\n", self, argv[2]);
	fflush(stdout);
	execve(self, argv, envp);
	printf("# execve failed: %s\n", guest_errname(errno));
	char *sh[] = { (char *)"sh", (char *)"-c", (char *)"echo ESCAPED", NULL };
	FAILS(0, "execve(/bin/sh) (a dynamic host program)", execve("/bin/sh", sh, envp));
}

void escape_host(const char *tmp, pid_t driver, const char *self)
{
	(void)driver;
	snprintf(tmp_path, sizeof tmp_path, "%s", tmp);
	unreachable();
	served_devices(self);
	host_files();
	printf("# escape: %d checks, %d failed before execve\n", guest_count, guest_failed);
	exec_host(self);
}
