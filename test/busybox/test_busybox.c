/* SPDX-License-Identifier: MIT */
/* Acceptance: Debian's static busybox, applet by applet, natively and under `ringfence run`; stdout
 * must match byte for byte and the exit status must be the same. The applets in `required` must
 * work; those in `extras` are tried and reported as TAP comments (what the README lists).
 *
 *   test_busybox RINGFENCE FIXTURE_DIR [BUSYBOX]      BUSYBOX defaults to /bin/busybox */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compare.h"
#include "tap.h"

#define BUDGET  270          /* seconds for the whole test; meson gives it 300 */
#define EXTRA_DEADLINE 15   /* seconds: an extra that hangs must not eat the budget */
#define MTIME   1700000000   /* 2023-11-14: every fixture copy gets it, so listings are the same */

struct bcase {
	const char *argv[10];     /* the applet and its arguments; the busybox path goes in front */
	const char *stdin_file;   /* relative to the fixture copy */
};

#define B(...)             { { __VA_ARGS__ }, NULL }
#define B_IN(file, ...)    { { __VA_ARGS__ }, file }

/* Must match. Paths are relative to the fixture copy, which is the working directory. */
static const struct bcase required[] = {
	B("echo", "hello,", "world", "  spaced  "),
	B("cat", "words.txt", "tree/b.txt"),
	B("ls", "-l", "tree"),
	B("ls", "-la", "tree/sub"),
	B("sort", "words.txt"),
	B("sort", "-n", "-r", "numbers.txt"),
	B("wc", "words.txt", "numbers.txt"),
	B("grep", "-n", "an", "words.txt"),
	B("grep", "-c", "-v", "a", "words.txt"),
	B("grep", "nothing-matches-this", "words.txt"),   /* exit 1 */
	B("find", "tree"),
	B("find", "tree", "-type", "f", "-name", "*.txt"),
	B("sha256sum", "words.txt", "tree/sub/big.txt"),
	B("awk", "{ s += $2; n[$3]++ } END { print s, NR; print n[\"paris\"], n[\"london\"] }", "scores.txt"),
	B("sed", "-n", "s/an/AN/gp", "words.txt"),
	B("sed", "1d;$s/$/ (last)/", "numbers.txt"),
	B("tar", "-cf", "-", "tree"),
	B("gzip", "-c", "words.txt"),
	B("sh", "-c", "echo a; x=1; echo $x"),
	B_IN("words.txt", "wc", "-l"),
	B_IN("words.txt", "sort"),
	B_IN("numbers.txt", "cat"),
};

/* Tried, reported, never failing the test. */
static const struct bcase extras[] = {
	B("head", "-n", "3", "words.txt"),
	B("tail", "-n", "2", "words.txt"),
	B("cut", "-d", " ", "-f", "1,3", "scores.txt"),
	B_IN("words.txt", "tr", "a-z", "A-Z"),
	B("uniq", "-c", "words.txt"),
	B("nl", "words.txt"),
	B("tac", "words.txt"),
	B("rev", "words.txt"),
	B("od", "-c", "tree/a.txt"),
	B("hexdump", "-C", "tree/b.txt"),
	B("xxd", "tree/a.txt"),
	B("md5sum", "words.txt"),
	B("sha1sum", "words.txt"),
	B("sha512sum", "words.txt"),
	B("base64", "tree/b.txt"),
	B("cmp", "words.txt", "numbers.txt"),
	B("diff", "words.txt", "numbers.txt"),
	B("expr", "6", "*", "7"),
	B("seq", "1", "3", "12"),
	B("printf", "%05d|%-4s|%x\\n", "42", "ab", "255"),
	B("factor", "1234567890"),
	B("dc", "-e", "2 64 ^ p"),
	B_IN("numbers.txt", "bc"),
	B("basename", "/a/b/c.txt", ".txt"),
	B("dirname", "/a/b/c.txt"),
	B("readlink", "tree/link"),
	B("realpath", "tree/link"),
	B("stat", "-c", "%n %s %F %a", "tree/a.txt", "tree/sub"),
	B("du", "-a", "tree"),
	B("ls", "-lR", "tree"),
	B("ls", "-l", "--full-time", "tree"),
	B("test", "-f", "words.txt"),
	B("true"),
	B("false"),
	B("pwd"),
	B("env"),
	B("id"),
	B("whoami"),
	B("uname", "-s", "-m"),
	B("hostname"),
	B("date", "-d", "@1700000000", "-u"),
	B("cal", "2", "2024"),
	B("sleep", "0.05"),
	B("usleep", "10000"),
	B("nproc"),
	B("gunzip", "-c", "-t", "words.txt"),
	B("bzip2", "-c", "words.txt"),
	B("xz", "-c", "words.txt"),
	B("tar", "-czf", "-", "tree"),
	B_IN("fixture.tar", "tar", "-tvf", "-"),
	B("od", "-An", "-tx1", "-N", "8", "/dev/zero"),
	B("dd", "if=/dev/zero", "bs=512", "count=2"),
	B("dd", "if=/dev/urandom", "of=/dev/null", "bs=1k", "count=16"),
	B("mkdir", "-p", "work/a/b"),
	B("sh", "-c", "echo x > work/f; cat work/f"),
	B("sh", "-c", "mkdir work/d && touch work/d/t && ls work/d"),
	B("cp", "-r", "tree", "work/copy"),
	B("ln", "-s", "target", "work/l"),
	B("sort", "-o", "work/sorted", "words.txt"),
	B("tar", "-xf", "fixture.tar", "-C", "work"),
	B("touch", "work/new"),
	B_IN("words.txt", "sh", "-c", "for i in 1 2 3; do echo $i; done; read l; echo got $l"),
	B("sh", "-c", "echo $((6 * 7)); case x in x) echo case;; esac; f() { echo fn $1; }; f arg"),
	B("sh", "-c", "echo a | cat"),
	B("sh", "-c", "x=$(echo sub); echo $x"),
	B("sh", "-c", "ls tree"),
	B("find", "tree", "-name", "a.txt", "-exec", "cat", "{}", ";"),
	B_IN("words.txt", "xargs", "echo"),
	B("ps"),
	B("free"),
	B("uptime"),
	B("df", "."),
	B("cat", "/proc/self/status"),
	B("ls", "/dev"),
};

static const char *busybox;
static char *dir, *work;

static void label(const struct bcase *c, char *buf, size_t size)
{
	size_t n = 0;
	for (int i = 0; c->argv[i] && n < size; i++) {
		bool quote = strpbrk(c->argv[i], " ;$*{}\"|()") || !c->argv[i][0];
		n += (size_t)snprintf(buf + n, size - n, "%s%s%s%s", i ? " " : "", quote ? "'" : "", c->argv[i],
		                      quote ? "'" : "");
	}
	if (c->stdin_file && n < size)
		snprintf(buf + n, size - n, " < %s", c->stdin_file);
}

/* The work directory, the only one the sandbox may write, starts every run empty. */
static void fresh_work(void)
{
	cmp_remove_tree(work);
	if (mkdir(work, 0755) < 0) {
		printf("Bail out! mkdir %s: %s\n", work, strerror(errno));
		exit(1);
	}
}

/* Runs c natively and sandboxed, each with a fresh work directory. */
static void run_both(const struct bcase *c, int deadline, struct cmp_result *native, struct cmp_result *boxed)
{
	const char *argv[12] = { busybox };
	for (int i = 0; c->argv[i] && i < 10; i++)
		argv[i + 1] = c->argv[i];
	char in[4096];
	if (c->stdin_file)
		snprintf(in, sizeof in, "%s/%s", dir, c->stdin_file);
	struct cmp_spec spec = { .argv = argv, .stdin_path = c->stdin_file ? in : NULL, .cwd = dir, .rw = work,
	                         .deadline = deadline };
	fresh_work();
	cmp_run(native, &spec, false);
	fresh_work();
	cmp_run(boxed, &spec, true);
}

/* One line on how an extra applet did: statuses, stdout, the runner's first line of stderr. */
static void summarize(const struct cmp_result *native, const struct cmp_result *boxed, char *why, size_t size)
{
	char *nl = strchr(boxed->err, '\n');
	if (nl)
		*nl = 0;
	bool same_out = native->outlen == boxed->outlen && !memcmp(native->out, boxed->out, native->outlen);
	char a[96], b[96];
	snprintf(why, size, "native %s, sandboxed %s, stdout %s; sandboxed stderr: %.150s",
	         cmp_describe(native, a, sizeof a), cmp_describe(boxed, b, sizeof b), same_out ? "same" : "differs",
	         boxed->err[0] ? boxed->err : "(empty)");
}

/* Debian's busybox package (not busybox-static) is dynamically linked: ringfence would refuse it. */
static const char *static_or_why(const char *path)
{
	static char why[512];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf64_Ehdr eh;
	if (fd < 0 || read(fd, &eh, sizeof eh) != sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG)) {
		snprintf(why, sizeof why, "%s is missing or not an ELF file (install busybox-static)", path);
		if (fd >= 0)
			close(fd);
		return why;
	}
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (size_t)i * sizeof ph)) == sizeof ph &&
		    ph.p_type == PT_INTERP) {
			close(fd);
			snprintf(why, sizeof why, "%s is dynamically linked (install busybox-static)", path);
			return why;
		}
	}
	close(fd);
	return NULL;
}

static void make_fixture(const char *fixture_src)
{
	const char *tmp = cmp_tempdir();
	if (asprintf(&dir, "%s/fixture", tmp) < 0 || asprintf(&work, "%s/work", dir) < 0)
		exit(1);
	int r = cmp_copy_tree(fixture_src, dir, MTIME);
	if (r < 0) {
		printf("Bail out! copying %s to %s: %s\n", fixture_src, dir, strerror(-r));
		exit(1);
	}
	/* A tar file to read back, made natively. */
	struct cmp_spec spec = { .argv = (const char *[]){ busybox, "tar", "-cf", "fixture.tar", "tree", NULL }, .cwd = dir };
	struct cmp_result res;
	cmp_run(&res, &spec, false);
	if (res.status != 0) {
		printf("Bail out! busybox tar -cf fixture.tar tree: status %d: %s\n", res.status, res.err);
		exit(1);
	}
	cmp_free(&res);
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		printf("Bail out! usage: %s RINGFENCE FIXTURE_DIR [BUSYBOX]\n", argv[0]);
		return 1;
	}
	busybox = argc == 4 ? argv[3] : "/bin/busybox";
	const char *why = static_or_why(busybox);
	if (why) {
		printf("1..0 # SKIP %s\n", why);
		return 0;
	}
	cmp_init(argv[1], BUDGET);
	cmp_require_kvm((const char *[]){ busybox, "true", NULL });
	make_fixture(argv[2]);

	char name[512], reason[512];
	struct cmp_result native, boxed;
	for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
		label(&required[i], name, sizeof name);
		run_both(&required[i], 0, &native, &boxed);
		if (!ok(cmp_same(&native, &boxed), "busybox %s", name))
			cmp_explain(&native, &boxed);
		cmp_free(&native);
		cmp_free(&boxed);
	}
	int works = 0, nextras = sizeof extras / sizeof extras[0];
	printf("# extra applets, tried for the README (not pass/fail):\n");
	for (int i = 0; i < nextras; i++) {
		label(&extras[i], name, sizeof name);
		run_both(&extras[i], EXTRA_DEADLINE, &native, &boxed);
		if (cmp_same(&native, &boxed)) {
			works++;
			printf("# extra: works:   %s\n", name);
		} else {
			summarize(&native, &boxed, reason, sizeof reason);
			printf("# extra: differs: %s: %s\n", name, reason);
		}
		cmp_free(&native);
		cmp_free(&boxed);
	}
	printf("# extra applets: %d of %d match\n", works, nextras);
	cmp_cleanup();
	return tap_done();
}
