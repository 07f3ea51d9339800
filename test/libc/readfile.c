/* SPDX-License-Identifier: MIT */
/* Acceptance program: reads a file (argv[1], or stdin when there is none) with read(2), then again
 * with stdio, and prints what it read, its length and a checksum from each. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static unsigned long fnv(const unsigned char *p, size_t n)
{
	unsigned long h = 1469598103934665603ul;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ul;
	return h;
}

static unsigned char raw[1 << 16], buffered[1 << 16];

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : NULL;
	int fd = path ? open(path, O_RDONLY) : 0;
	if (fd < 0) {
		printf("open: %s\n", strerror(errno));
		return 1;
	}
	size_t n = 0;
	ssize_t got;
	/* Small reads on purpose: many syscalls, short counts at the end. */
	while ((got = read(fd, raw + n, 7 < sizeof raw - n ? 7 : sizeof raw - n)) > 0)
		n += (size_t)got;
	if (got < 0) {
		printf("read: %s\n", strerror(errno));
		return 1;
	}
	printf("read(2): %zu bytes, fnv %016lx\n", n, fnv(raw, n));
	fwrite(raw, 1, n, stdout);
	printf("%s", n && raw[n - 1] != '\n' ? "\n(no newline at the end)\n" : "");

	if (!path) {
		/* stdin is a file here: seek back to read it again through stdio. */
		if (lseek(0, 0, SEEK_SET) != 0) {
			printf("lseek(stdin): %s\n", strerror(errno));
			return 1;
		}
	} else {
		printf("read after EOF: %zd\n", read(fd, raw, 1));
		close(fd);
	}
	FILE *f = path ? fopen(path, "r") : stdin;
	if (!f) {
		printf("fopen: %s\n", strerror(errno));
		return 1;
	}
	char line[256];
	int lines = 0;
	while (fgets(line, sizeof line, f))
		lines++;
	rewind(f);
	size_t m = fread(buffered, 1, sizeof buffered, f);
	printf("stdio: %d lines, %zu bytes, fnv %016lx, same as read(2): %s\n", lines, m, fnv(buffered, m),
	       m == n && memcmp(raw, buffered, n) == 0 ? "yes" : "no");
	int c;
	fseek(f, 6, SEEK_SET);
	c = fgetc(f);
	printf("byte at offset 6: %d, ftell after it: %ld\n", c, ftell(f));
	fclose(f);
	return 0;
}
