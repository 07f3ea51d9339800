/* SPDX-License-Identifier: MIT */
/* The file table: guest descriptors to open files (host descriptors or devices the runtime serves).
 * An open file is refcounted so dup'd descriptors (and, later, forked processes) share it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"

struct rt_file *file_new(enum file_kind kind, int host, const char *gpath)
{
	struct rt_file *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->refs = 1;
	f->kind = kind;
	f->host = host;
	f->gpath = gpath ? strdup(gpath) : NULL;
	if (gpath && !f->gpath) {
		free(f);
		return NULL;
	}
	return f;
}

void file_put(struct rt_file *f)
{
	if (!f || --f->refs)
		return;
	if (f->kind == FILE_HOST && f->host >= 0)
		close(f->host);
	free(f->gpath);
	free(f);
}

int files_install(struct rt_files *ft, struct rt_file *f, int min, bool cloexec)
{
	for (int fd = min < 0 ? 0 : min; fd < RT_MAX_FDS; fd++)
		if (!ft->fd[fd]) {
			f->refs++;
			ft->fd[fd] = f;
			ft->cloexec[fd] = cloexec;
			return fd;
		}
	return -EMFILE;
}

struct rt_file *files_get(struct rt_files *ft, uint64_t fd)
{
	/* An int in every prototype: upper bits are ignored, negative is EBADF. */
	int n = (int)fd;
	return n >= 0 && n < RT_MAX_FDS ? ft->fd[n] : NULL;
}

int files_close(struct rt_files *ft, uint64_t fd)
{
	struct rt_file *f = files_get(ft, fd);
	if (!f)
		return -EBADF;
	ft->fd[(int)fd] = NULL;
	file_put(f);
	return 0;
}

/* 0, 1 and 2 are the runner's own, duplicated so the program closing them leaves ours alone. */
int files_init_stdio(struct rt_files *ft)
{
	memset(ft, 0, sizeof *ft);
	for (int fd = 0; fd < 3; fd++) {
		int h = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (h < 0)
			continue;   /* closed in the runner: closed in the program */
		struct rt_file *f = file_new(FILE_HOST, h, NULL);
		if (!f) {
			close(h);
			return -ENOMEM;
		}
		int acc = fcntl(h, F_GETFL);
		f->writable = acc >= 0 && (acc & O_ACCMODE) != O_RDONLY;
		ft->fd[fd] = f;
	}
	return 0;
}

void files_destroy(struct rt_files *ft)
{
	for (int fd = 0; fd < RT_MAX_FDS; fd++)
		if (ft->fd[fd]) {
			file_put(ft->fd[fd]);
			ft->fd[fd] = NULL;
		}
}
