/* SPDX-License-Identifier: MIT */
/* Escape attempts under `ringfence run`, with the host side checked after each run:
 *
 *   test_sandbox root RINGFENCE ESCAPE   --root FIXTURE --rw FIXTURE/rw (escape.h has the tree)
 *   test_sandbox host RINGFENCE ESCAPE   root /, --rw TMP/rw: /proc, /sys, /dev, host files, execve
 *   test_sandbox mem  RINGFENCE BADPTR ESCAPE   --memory 64M: mmap and brk stop at the cap; and
 *                                               a syscall at the very end of the user half
 *
 * The guest prints TAP; this passes it through and adds what only the host can see. */
#define _GNU_SOURCE
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/un.h>

#include "driver.h"

static char *ringfence;
static const char *guest;
static char self_pid[32];

static char *path_in(const char *dir, const char *name)
{
	char *p;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		driver_bail("asprintf", name);
	return p;
}

/* The fixture builders, by directory and name (the joined path is freed here). */
static void write_in(const char *dir, const char *name, const char *content, size_t len)
{
	char *p = path_in(dir, name);
	driver_write(p, content, len);
	free(p);
}

static void mkdir_in(const char *dir, const char *name)
{
	char *p = path_in(dir, name);
	driver_mkdir(p);
	free(p);
}

static void symlink_in(const char *target, const char *dir, const char *name)
{
	char *p = path_in(dir, name);
	driver_symlink(target, p);
	free(p);
}

/* A symlink in dir to a path in target_dir. */
static void symlink_to_in(const char *target_dir, const char *target_name, const char *dir, const char *name)
{
	char *t = path_in(target_dir, target_name);
	symlink_in(t, dir, name);
	free(t);
}

static int open_in(const char *dir, const char *name, int flags)
{
	char *p = path_in(dir, name);
	int fd = open(p, flags);
	free(p);
	return fd;
}

static void build_root(const char *tmp, const char *root)
{
	write_in(tmp, "secret", "host secret\n", 12);
	driver_mkdir(root);
	static const char *const dirs[] = { "etc", "data", "data/dir", "dir", "dir/sub", "rw" };
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
		mkdir_in(root, dirs[i]);
	write_in(root, "etc/passwd", "fixture passwd\n", 15);
	write_in(root, "data/file", "read-only data\n", 15);
	static const char *const links[][2] = {
		{ "abs", "/etc/passwd" }, { "rel", "../../../../../../etc/passwd" },
		{ "dir/sub/climb", "../../../secret" }, { "up", ".." }, { "loop", "loop" },
		{ "procmem", "/proc/self/mem" }, { "kvm", "/dev/kvm" }, { "devdir", "/dev" },
		{ "rw/out_abs", "/data/file" }, { "rw/out_rel", "../data/file" }, { "rw/out_dir", "../data" },
		{ "rw/out_dangling", "../newfile" },
	};
	for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
		symlink_in(links[i][1], root, links[i][0]);
	symlink_to_in(tmp, "secret", root, "hostabs");
	symlink_in(tmp, root, "hostdir");
	symlink_to_in(tmp, "created", root, "rw/host_dangling");
	for (int i = 0; i < 45; i++) {
		char name[32], target[32];
		snprintf(name, sizeof name, "chain%d", i);
		snprintf(target, sizeof target, i == 44 ? "/etc/passwd" : "chain%d", i + 1);
		symlink_in(target, root, name);
	}
}

static void absent(const char *dir, const char *name, const char *what)
{
	char *path = path_in(dir, name);
	struct stat st;
	if (!ok(lstat(path, &st) < 0 && errno == ENOENT, "host: %s does not exist (%s)", path, what))
		printf("#   it does\n");
	free(path);
}

static void holds(const char *dir, const char *name, const char *want, const char *what)
{
	char *path = path_in(dir, name);
	char *c = driver_slurp(path, NULL);
	if (!ok(c && !strcmp(c, want), "host: %s holds what the guest wrote (%s)", path, what))
		printf("#   got %s\n", c ? c : "nothing");
	free(c);
	free(path);
}

static void outside_root(const char *root);

static void test_root(void)
{
	char *tmp = driver_mkdtemp("escape-root"), *root = path_in(tmp, "root"), *rw = path_in(root, "rw");
	build_root(tmp, root);
	/* The program inside the root, as it would be deployed: /bin/escape. */
	mkdir_in(root, "bin");
	size_t len;
	char *bytes = driver_slurp(guest, &len), *inside = path_in(root, "bin/escape");
	if (!bytes)
		driver_bail("read", guest);
	driver_write(inside, bytes, len);
	chmod(inside, 0755);
	free(bytes);
	int leak = open_in(tmp, "secret", O_RDWR | O_CLOEXEC);
	char *before = driver_snapshot(tmp, rw);
	struct drive_result r;
	drive(&r, (const char *const[]){ ringfence, "run", "--root", root, "--rw", rw, "--", inside, "root", tmp,
	                                 self_pid, NULL }, leak, DRIVER_DEADLINE);
	int n = drive_passthrough(&r, "guest");
	if (drive_ended_normally(&r, "--root fixture"))
		ok(n > 100, "the guest made its %d checks", n);
	char *after = driver_snapshot(tmp, rw);
	driver_same_snapshot(before, after, "host: nothing outside rw changed (the secret, the fixture)");
	absent(tmp, "created", "dangling symlinks to the host path");
	absent(root, "newfile", "symlinks and .. out of rw");
	holds(rw, "d/proof", "proof\n", "writes in rw work");
	drive_free(&r);
	close(leak);
	free(before);
	free(after);

	/* --rw must be inside the root: outside it, through .., or a symlink out, it is refused or
	 * at least gives no write outside. */
	char *other = path_in(tmp, "other");
	driver_mkdir(other);
	symlink_in(other, root, "rwlink");
	char *dotdot = path_in(root, "../other"), *rwlink = path_in(root, "rwlink");
	const char *const bad_rw[][2] = { { other, "outside the root" }, { dotdot, "root/../other" },
	                                  { rwlink, "a symlink in the root to outside" } };
	for (size_t i = 0; i < 3; i++) {
		drive(&r, (const char *const[]){ ringfence, "run", "--root", root, "--rw", bad_rw[i][0], "--", guest,
		                                 "mark", "/rwlink/marked", NULL }, -1, DRIVER_DEADLINE);
		char *marked = path_in(other, "marked");
		struct stat st;
		bool escaped = lstat(marked, &st) == 0;
		if (!ok(!escaped, "--rw %s: no write lands outside the root", bad_rw[i][1]))
			drive_show(&r);
		if (r.status != 0)
			printf("# --rw %s: refused with status %d: %s", bad_rw[i][1], r.status, r.err);
		else
			printf("# --rw %s: accepted; the guest said: %s", bad_rw[i][1], r.out);
		unlink(marked);
		free(marked);
		drive_free(&r);
	}
	outside_root(root);
	driver_rmtree(tmp);
	free(other);
	free(dotdot);
	free(rwlink);
	free(inside);
	free(rw);
	free(root);
	free(tmp);
}

/* A static glibc program may live outside the root and be named relative to the cwd: what it sees
 * as /proc/self/exe must still be absolute (glibc's start-up asserts it). */
static void outside_root(const char *root)
{
	char *dir = strdup(guest), *slash = strrchr(dir, '/'), cwd[4096];
	if (!slash || !getcwd(cwd, sizeof cwd) || chdir(slash == dir ? "/" : (*slash = 0, dir)) < 0)
		driver_bail("chdir to the directory of", guest);
	struct drive_result r;
	drive(&r, (const char *const[]){ ringfence, "run", "--root", root, "--", "./escape", "mark", "/x", NULL }, -1,
	      DRIVER_DEADLINE);
	if (!ok(r.status == 0, "a program outside --root, named by a relative path, starts"))
		drive_show(&r);
	drive_free(&r);
	if (chdir(cwd) < 0)
		driver_bail("chdir back to", cwd);
	free(dir);
}

/* A listening socket the guest must not be able to reach; returns its fd. */
static int listen_at(const char *path)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
	if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) < 0 && (errno == ENXIO || errno == EOPNOTSUPP)) {
		/* The test VM's file system (9p) has no socket files: the guest then meets no socket. */
		printf("# no unix socket at %s (%s): the socket check is skipped\n", path, strerror(errno));
		close(s);
		return -1;
	}
	if (s < 0 || listen(s, 4) < 0)
		driver_bail("unix socket", path);
	return s;
}

static void test_host(void)
{
	char *tmp = driver_mkdtemp("escape-host"), *rw = path_in(tmp, "rw");
	write_in(tmp, "ro.txt", "host read-only\n", 15);
	write_in(tmp, "secret", "host secret\n", 12);
	driver_mkdir(rw);
	symlink_to_in(tmp, "ro.txt", rw, "out");
	symlink_in("..", rw, "up");
	symlink_in("/proc/self/mem", tmp, "link_mem");
	symlink_in("/dev/kvm", tmp, "link_kvm");
	symlink_in("/proc/self", tmp, "link_proc");
	symlink_in("/dev", tmp, "link_dev");
	char *sock_path = path_in(tmp, "sock");
	int sock = listen_at(sock_path);
	free(sock_path);
	int leak = open_in(tmp, "secret", O_RDWR | O_CLOEXEC);
	char *before = driver_snapshot(tmp, rw);
	char *real_guest = realpath(guest, NULL);
	struct drive_result r;
	drive(&r, (const char *const[]){ ringfence, "run", "--rw", rw, "--", real_guest, "host", tmp, self_pid,
	                                 real_guest, NULL }, leak, DRIVER_DEADLINE);
	int n = drive_passthrough(&r, "guest");
	if (drive_ended_normally(&r, "root /"))
		ok(n > 60, "the guest made its %d checks", n);
	ok(!strstr(r.out, "ESCAPED"), "host: no host shell ran");
	char *after = driver_snapshot(tmp, rw);
	driver_same_snapshot(before, after, "host: nothing outside rw changed (ro.txt, the secret behind fd 7)");
	absent(tmp, "marker", "execve did not run a host process");
	absent(tmp, "outside", "nothing renamed out of rw");
	holds(rw, "proof", "proof\n", "writes in rw work");
	if (sock >= 0) {
		int c = accept(sock, NULL, NULL);
		if (!ok(c < 0 && errno == EAGAIN, "host: nobody connected to the driver's unix socket"))
			close(c);
	} else {
		printf("ok %d - host: nobody connected to the driver's unix socket # SKIP no socket files here\n",
		       ++tap_count);
	}
	struct stat a, b;
	char *mnt = path_in(rw, "mnt");
	bool mounted = stat(rw, &a) == 0 && stat(mnt, &b) == 0 && a.st_dev != b.st_dev;
	ok(!mounted, "host: no file system was mounted on rw/mnt");
	if (mounted)
		umount2(mnt, MNT_DETACH);
	drive_free(&r);
	driver_rmtree(tmp);
	if (sock >= 0)
		close(sock);
	close(leak);
	free(mnt);
	free(before);
	free(after);
	free(real_guest);
	free(rw);
	free(tmp);
}

static void test_mem(const char *escape)
{
	struct drive_result r;
	drive(&r, (const char *const[]){ ringfence, "run", "--", escape, "toppage", NULL }, -1, DRIVER_DEADLINE);
	bool refused = r.status == 0 && strstr(r.out, "mmap refused");
	bool segv = r.status == 128 + SIGSEGV && strstr(r.err, "SIGSEGV") && strchr(r.err, '\n') == r.err + r.errlen - 1;
	if (!ok(refused || segv, "a syscall in the last user page: refused mapping or a plain SIGSEGV, no platform error"))
		drive_show(&r);
	else
		printf("# %s%s", r.out, r.err);
	drive_free(&r);
	drive(&r, (const char *const[]){ ringfence, "run", "--memory", "64M", "--", guest, "mem", "0x4000000", NULL },
	      -1, DRIVER_DEADLINE);
	int n = drive_passthrough(&r, "guest --memory 64M");
	if (drive_ended_normally(&r, "--memory 64M"))
		ok(n >= 6, "the guest made its %d checks", n);
	drive_free(&r);
}

int main(int argc, char **argv)
{
	if (argc < 4 || (strcmp(argv[1], "root") && strcmp(argv[1], "host") && strcmp(argv[1], "mem")) ||
	    (!strcmp(argv[1], "mem") && argc != 5)) {
		printf("Bail out! usage: %s root|host RINGFENCE ESCAPE | mem RINGFENCE BADPTR ESCAPE\n", argv[0]);
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	ringfence = realpath(argv[2], NULL);
	if (!ringfence)
		driver_bail("realpath", argv[2]);
	guest = argv[3];
	snprintf(self_pid, sizeof self_pid, "%d", (int)getpid());
	driver_need_kvm();
	if (!strcmp(argv[1], "root"))
		test_root();
	else if (!strcmp(argv[1], "host"))
		test_host();
	else
		test_mem(argv[4]);
	free(ringfence);
	return tap_done();
}
