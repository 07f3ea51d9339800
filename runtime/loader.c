/* SPDX-License-Identifier: MIT */
/* The loader: a static ELF (ET_EXEC or static PIE) into the region map, the initial stack with the
 * auxiliary vector a libc expects, the brk start, and the registers at the entry point. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime.h"

#define FILE_MAX (1ull << 30)   /* beyond any static program worth sandboxing */

static uint64_t page_down(uint64_t a) { return a & ~(RT_PAGE - 1); }
static uint64_t page_up(uint64_t a) { return (a + RT_PAGE - 1) & ~(RT_PAGE - 1); }

static int read_file(const char *path, unsigned char **out, size_t *size)
{
	*out = NULL;
	/* O_NONBLOCK: a FIFO named as the program must not hang the runner (it is refused below). */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return rt_fail(RT_EXIT_NOLOAD, "%s: %s", path, strerror(errno));
	struct stat st;
	int st_err = fstat(fd, &st) < 0 ? errno : 0;
	if (st_err || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > FILE_MAX) {
		close(fd);
		if (st_err)
			return rt_fail(RT_EXIT_NOLOAD, "%s: %s", path, strerror(st_err));
		if (!S_ISREG(st.st_mode))
			return rt_fail(RT_EXIT_NOLOAD, "%s: not a regular file", path);
		return rt_fail(RT_EXIT_NOLOAD, "%s: larger than %llu MiB", path, FILE_MAX >> 20);
	}
	size_t n = (size_t)st.st_size, got = 0;
	unsigned char *buf = malloc(n ? n : 1);
	if (!buf) {
		close(fd);
		return rt_fail(RT_EXIT_NOLOAD, "%s: out of memory reading it", path);
	}
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			/* Short means the file shrank under us: what is left is not the file we sized. */
			int e = r < 0 ? errno : EIO;
			close(fd);
			free(buf);
			return rt_fail(RT_EXIT_NOLOAD, "%s: %s", path, strerror(e));
		}
		got += (size_t)r;
	}
	close(fd);
	*out = buf;
	*size = n;
	return 0;
}

/* What can be said of the segments without any memory: each below the stack area, and each no
 * larger than the whole guest memory. So a program that could never load is a load error (127) on
 * any host, even one without KVM. */
static int check_fits(const char *path, const struct elf_info *elf, uint64_t memory)
{
	for (unsigned i = 0; i < elf->nseg; i++) {
		const struct elf_segment *s = &elf->seg[i];
		uint64_t va = page_down(s->vaddr), top = page_up(s->vaddr + s->memsz);
		if (top > RT_MMAP_TOP)
			return rt_fail(RT_EXIT_NOLOAD, "%s: segment at 0x%llx..0x%llx reaches the stack area "
			               "(0x%llx and up)", path, (unsigned long long)s->vaddr,
			               (unsigned long long)(s->vaddr + s->memsz), (unsigned long long)RT_MMAP_TOP);
		if (top - va > memory)
			return rt_fail(RT_EXIT_NOLOAD, "%s: segment at 0x%llx needs %llu MiB, more than the guest "
			               "memory has left (--memory)", path, (unsigned long long)s->vaddr,
			               (unsigned long long)((top - va) >> 20));
	}
	return 0;
}

/* Each segment gets its own pages, copied from the file: the file's bytes outside a segment, and any
 * later change to the file, stay away from the guest. */
static int place_segments(struct rt_thread *t, const char *path, const unsigned char *file,
                          const struct elf_info *elf)
{
	struct rt_mem *m = &t->proc->mem;
	uint64_t end = 0;
	int st = check_fits(path, elf, m->npages * RT_PAGE);
	if (st)
		return st;
	for (unsigned i = 0; i < elf->nseg; i++) {
		const struct elf_segment *s = &elf->seg[i];
		uint64_t va = page_down(s->vaddr), top = page_up(s->vaddr + s->memsz);
		int e = mem_add(m, va, top - va, s->prot, REGION_IMAGE, 0, true);
		if (e == -ENOMEM)
			return rt_fail(RT_EXIT_NOLOAD, "%s: segment at 0x%llx needs %llu MiB, more than the guest "
			               "memory has left (--memory)", path, (unsigned long long)s->vaddr,
			               (unsigned long long)((top - va) >> 20));
		if (e < 0)
			return rt_fail(RT_EXIT_PLATFORM, "%s", rf_last_error());
		mem_fill(m, s->vaddr, file + s->offset, s->filesz);
		if (top > end)
			end = top;
	}
	/* brk starts on the page after the highest segment, as for a native static program. */
	m->brk_start = m->brk = end;
	return 0;
}

static uint64_t hwcap(void)
{
	unsigned a, b, c, d;
	/* Linux's AT_HWCAP on x86 is CPUID.1:EDX. */
	return __get_cpuid(1, &a, &b, &c, &d) ? d : 0;
}

static int build_stack(struct rt_thread *t, const char *path, const struct elf_info *elf, char *const argv[],
                       char *const envp[], uint64_t *rsp)
{
	struct rt_mem *m = &t->proc->mem;
	const uint64_t va = RT_STACK_TOP - RT_STACK_SIZE;
	int e = mem_add(m, va, RT_STACK_SIZE, RF_PROT_READ | RF_PROT_WRITE, REGION_STACK, 0, true);
	if (e < 0)
		return rt_fail(e == -ENOMEM ? RT_EXIT_NOLOAD : RT_EXIT_PLATFORM, "%s: no room for an %llu MiB stack",
		               path, RT_STACK_SIZE >> 20);
	struct rf_platform_info info;
	rf_platform_info(t->proc->p, &info);
	struct stack_aux aux[20];
	unsigned n = 0;
	if (elf->phdr_vaddr) {
		aux[n++] = (struct stack_aux){ AT_PHDR, elf->phdr_vaddr };
		aux[n++] = (struct stack_aux){ AT_PHENT, elf->phentsize };
		aux[n++] = (struct stack_aux){ AT_PHNUM, elf->phnum };
	}
	aux[n++] = (struct stack_aux){ AT_PAGESZ, RT_PAGE };
	aux[n++] = (struct stack_aux){ AT_BASE, 0 };   /* no interpreter */
	aux[n++] = (struct stack_aux){ AT_FLAGS, 0 };
	aux[n++] = (struct stack_aux){ AT_ENTRY, elf->entry };
	aux[n++] = (struct stack_aux){ AT_UID, getuid() };
	aux[n++] = (struct stack_aux){ AT_EUID, geteuid() };
	aux[n++] = (struct stack_aux){ AT_GID, getgid() };
	aux[n++] = (struct stack_aux){ AT_EGID, getegid() };
	aux[n++] = (struct stack_aux){ AT_SECURE, 0 };
	aux[n++] = (struct stack_aux){ AT_HWCAP, hwcap() };
	aux[n++] = (struct stack_aux){ AT_HWCAP2, 0 };   /* no FSGSBASE: the platform does not enable it */
	aux[n++] = (struct stack_aux){ AT_CLKTCK, 100 };
	/* The signal frame this runtime builds (signals.c), so sigaltstack users size theirs right. */
	aux[n++] = (struct stack_aux){ AT_MINSIGSTKSZ, info.fpu_size + 1024 };

	unsigned char random[16];
	if (getrandom(random, sizeof random, 0) != (ssize_t)sizeof random)
		return rt_fail(RT_EXIT_PLATFORM, "getrandom for AT_RANDOM: %s", strerror(errno));
	/* The stack's pages need not be consecutive in guest memory: it is built in a host buffer the
	 * size of the region (only the top quarter is written) and copied in. */
	unsigned char *img = malloc(RT_STACK_SIZE);
	if (!img)
		return rt_fail(RT_EXIT_PLATFORM, "out of host memory for the initial stack");
	const uint64_t built = RT_STACK_SIZE / 4;   /* stack_build writes within the top quarter */
	memset(img + RT_STACK_SIZE - built, 0, built);
	/* AT_EXECFN is the path as execve was given it, as on Linux. */
	e = stack_build(img, va, RT_STACK_SIZE, argv, envp, path, aux, n, random, rsp);
	if (e == 0)
		mem_fill(m, RT_STACK_TOP - built, img + RT_STACK_SIZE - built, built);
	free(img);
	if (e < 0)
		return rt_fail(RT_EXIT_NOLOAD, "%s: argument list too long for a %llu MiB stack", path,
		               RT_STACK_SIZE >> 20);
	return 0;
}

int loader_load(struct rt_thread *t, const char *path, char *const argv[], char *const envp[])
{
	unsigned char *file;
	size_t size = 0;
	int st = read_file(path, &file, &size);
	if (st)
		return st;
	struct elf_info elf;
	char why[256];
	if (elf_parse(file, size, &elf, why, sizeof why) < 0) {
		free(file);
		return rt_fail(RT_EXIT_NOLOAD, "%s: %s", path, why);
	}
	st = place_segments(t, path, file, &elf);
	free(file);
	uint64_t rsp = 0;
	if (!st)
		st = build_stack(t, path, &elf, argv, envp, &rsp);
	if (st)
		return st;
	/* Everything zero but rip and rsp, as after execve (a non-zero rdx would be taken for an
	 * atexit function by glibc's _start). */
	struct rf_regs *r = rf_context_regs(t->c);
	memset(r, 0, sizeof *r);
	r->rip = elf.entry;
	r->rsp = rsp;
	r->rflags = 0x202;
	return 0;
}

/* Only the ELF checks, before KVM is opened: a bad program is a load error on any host. */
int loader_check(const char *path, uint64_t memory)
{
	unsigned char *file;
	size_t size = 0;
	int st = read_file(path, &file, &size);
	if (st)
		return st;
	struct elf_info elf;
	char why[256];
	st = elf_parse(file, size, &elf, why, sizeof why) < 0 ? rt_fail(RT_EXIT_NOLOAD, "%s: %s", path, why)
	                                                      : check_fits(path, &elf, memory);
	free(file);
	return st;
}
