/* SPDX-License-Identifier: MIT */
/* Acceptance program: opendir/readdir over argv[1], names sorted, each with its type (from readdir
 * and from lstat), permissions, size and, for a symbolic link, its target and what stat() sees.
 * No times or inode numbers: those are not the same from one checkout to the next. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct entry {
	char name[256];
	unsigned char type;   /* d_type from readdir */
};

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static char dtype(unsigned char t)
{
	switch (t) {
	case DT_REG: return 'f';
	case DT_DIR: return 'd';
	case DT_LNK: return 'l';
	case DT_UNKNOWN: return '?';
	default: return 'o';
	}
}

static char mtype(mode_t m)
{
	return S_ISREG(m) ? 'f' : S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' : 'o';
}

static int list(const char *path, int depth)
{
	DIR *d = opendir(path);
	if (!d) {
		printf("opendir %s: %s\n", path, strerror(errno));
		return 1;
	}
	static struct entry entries[4][64];   /* one table per depth */
	struct entry *ent = entries[depth];
	int n = 0;
	struct dirent *e;
	errno = 0;
	while (n < 64 && (e = readdir(d))) {
		snprintf(ent[n].name, sizeof ent[n].name, "%s", e->d_name);
		ent[n++].type = e->d_type;
	}
	if (errno) {
		printf("readdir %s: %s\n", path, strerror(errno));
		return 1;
	}
	qsort(ent, (size_t)n, sizeof ent[0], by_name);
	printf("%*s%s: %d entries\n", depth * 2, "", path, n);
	int dfd = dirfd(d);
	for (int i = 0; i < n; i++) {
		struct stat st;
		const char *name = ent[i].name;
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			printf("%*s  %s: lstat: %s\n", depth * 2, "", name, strerror(errno));
			continue;
		}
		printf("%*s  %-10s readdir %c lstat %c mode %03o", depth * 2, "", name, dtype(ent[i].type), mtype(st.st_mode),
		       (unsigned)(st.st_mode & 0777));
		if (!S_ISDIR(st.st_mode))
			printf(" size %lld", (long long)st.st_size);
		if (S_ISLNK(st.st_mode)) {
			char target[256];
			ssize_t k = readlinkat(dfd, name, target, sizeof target - 1);
			target[k < 0 ? 0 : k] = 0;
			struct stat to;
			int r = fstatat(dfd, name, &to, 0);
			printf(" -> %s (stat: %c size %lld)", target, r < 0 ? '!' : mtype(to.st_mode),
			       r < 0 ? -1ll : (long long)to.st_size);
		}
		printf("\n");
		if (S_ISDIR(st.st_mode) && strcmp(name, ".") && strcmp(name, "..") && depth < 3) {
			char sub[4096];
			snprintf(sub, sizeof sub, "%s/%s", path, name);
			list(sub, depth + 1);
		}
	}
	closedir(d);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		printf("usage: listdir DIR\n");
		return 2;
	}
	struct stat st;
	printf("stat %s: %s\n", argv[1], stat(argv[1], &st) < 0 ? strerror(errno) : S_ISDIR(st.st_mode) ? "a directory" : "not a directory");
	int r = list(argv[1], 0);
	printf("stat of a missing name: %s\n", stat("/nonexistent/ringfence/x", &st) < 0 ? strerror(errno) : "exists");
	return r;
}
