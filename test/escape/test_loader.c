/* SPDX-License-Identifier: MIT */
/* `ringfence run` on malformed programs, each made by damaging a real one: every one is refused with
 * status 127 and one `ringfence: PROGRAM: reason` line, never a crash or a hang.
 *
 *   test_loader load RINGFENCE HELLO PIE DYNEXE   refusals, decided before KVM is opened (no KVM)
 *   test_loader run  RINGFENCE HELLO STATIC PIE   libc programs, static and static-PIE, that run
 * HELLO is test/progs' -nostdlib hello (three PT_LOADs: R headers, RX text, R rodata). */
#define _GNU_SOURCE
#include <elf.h>
#include <fnmatch.h>

#include "driver.h"

#define LOAD_DEADLINE 60   /* a refusal needs no guest: a minute is generous even under TCG */

static const char *ringfence;
static char *tmp;

struct image {
	unsigned char *b;
	size_t len;
	Elf64_Ehdr *eh;
};

static struct image load_image(const char *path)
{
	struct image im;
	im.b = (unsigned char *)driver_slurp(path, &im.len);
	if (!im.b || im.len < sizeof(Elf64_Ehdr))
		driver_bail("read", path);
	im.b = realloc(im.b, im.len + 4096);   /* room for what a case appends */
	im.eh = (Elf64_Ehdr *)im.b;
	return im;
}

static Elf64_Phdr *ph(struct image *im, int i)
{
	return (Elf64_Phdr *)(im->b + im->eh->e_phoff + (size_t)i * sizeof(Elf64_Phdr));
}

/* The i-th PT_LOAD (0-based), or the first executable one when i < 0. */
static Elf64_Phdr *load_seg(struct image *im, int i)
{
	for (int k = 0, seen = 0; k < im->eh->e_phnum; k++) {
		Elf64_Phdr *p = ph(im, k);
		if (p->p_type != PT_LOAD)
			continue;
		if (i < 0 ? (p->p_flags & PF_X) != 0 : seen++ == i)
			return p;
	}
	printf("Bail out! the program has no such PT_LOAD (%d)\n", i);
	exit(1);
}

static Elf64_Phdr *first_of(struct image *im, unsigned type)
{
	for (int k = 0; k < im->eh->e_phnum; k++)
		if (ph(im, k)->p_type == type)
			return ph(im, k);
	return NULL;
}

static const char *write_case(const struct image *im, const char *name)
{
	static char path[4096];
	snprintf(path, sizeof path, "%s/%s", tmp, name);
	driver_write(path, (const char *)im->b, im->len);
	chmod(path, 0755);
	return path;
}

/* One refusal: 127, no stdout, exactly one stderr line naming the program, and no crash. */
static void refused(const char *path, const char *what, const char *reason_pattern)
{
	struct drive_result r;
	drive(&r, (const char *const[]){ ringfence, "run", "--", path, NULL }, -1, LOAD_DEADLINE);
	char want[8192];
	snprintf(want, sizeof want, "ringfence: %s: %s\n", path, reason_pattern ? reason_pattern : "*");
	const char *nl = strchr(r.err, '\n');
	bool one_line = nl && nl[1] == 0;
	bool good = r.status == 127 && r.outlen == 0 && one_line && fnmatch(want, r.err, 0) == 0;
	if (!ok(good, "%s: refused with 127 and one line", what)) {
		drive_show(&r);
		printf("#   want stderr %s", want);
	} else {
		printf("#   %s", r.err);
	}
	drive_free(&r);
}

static void damage(const char *base, const char *name, const char *what, const char *reason,
                   void (*harm)(struct image *))
{
	struct image im = load_image(base);
	harm(&im);
	refused(write_case(&im, name), what, reason);
	free(im.b);
}

static void class32(struct image *im) { im->b[EI_CLASS] = ELFCLASS32; im->eh->e_machine = EM_386; }
static void aarch64(struct image *im) { im->eh->e_machine = EM_AARCH64; }
static void bigend(struct image *im) { im->b[EI_DATA] = ELFDATA2MSB; }
static void et_rel(struct image *im) { im->eh->e_type = ET_REL; }
static void et_core(struct image *im) { im->eh->e_type = ET_CORE; }
static void cut_10(struct image *im) { im->len = 10; }
static void cut_63(struct image *im) { im->len = 63; }
static void cut_phdrs(struct image *im) { im->len = im->eh->e_phoff + 20; }
static void cut_text(struct image *im) { im->len = load_seg(im, -1)->p_offset + 8; }
static void filesz_past_eof(struct image *im)
{
	Elf64_Phdr *p = load_seg(im, -1);
	p->p_filesz = p->p_memsz = 1 << 20;
}
static void offset_huge(struct image *im) { load_seg(im, -1)->p_offset = 0xfffffffffffff000ull; }
static void offset_wraps(struct image *im)
{
	Elf64_Phdr *p = load_seg(im, 2);
	p->p_offset = 0xfffffffffffff000ull;
	p->p_filesz = 0x2000;
	p->p_memsz = 0x2000;
}
static void memsz_2_46(struct image *im) { load_seg(im, 2)->p_memsz = 1ull << 46; }
static void memsz_wraps(struct image *im) { load_seg(im, 2)->p_memsz = 0xfffffffffffff000ull; }
static void memsz_lt_filesz(struct image *im) { load_seg(im, -1)->p_memsz = 1; }
static void vaddr_kernel(struct image *im) { load_seg(im, 2)->p_vaddr = 0xffff800000000000ull; }
static void vaddr_shim(struct image *im) { load_seg(im, 2)->p_vaddr = 0xffffffffc0000000ull; }
static void vaddr_last(struct image *im) { load_seg(im, 2)->p_vaddr = 0x7ffffffff000ull; }
static void vaddr_zero(struct image *im) { load_seg(im, 2)->p_vaddr = 0; }
static void vaddr_across_end(struct image *im)
{
	Elf64_Phdr *p = load_seg(im, 2);
	p->p_vaddr = 0x7ffffffff000ull;
	p->p_memsz = 0x3000;
}
static void overlap(struct image *im) { load_seg(im, 2)->p_vaddr = load_seg(im, -1)->p_vaddr; }
static void overlap_partly(struct image *im)
{
	Elf64_Phdr *p = load_seg(im, 2);
	p->p_vaddr = load_seg(im, -1)->p_vaddr - 0x800;
	p->p_memsz = 0x1000;
}
static void entry_data(struct image *im) { im->eh->e_entry = load_seg(im, 2)->p_vaddr; }
static void entry_zero(struct image *im) { im->eh->e_entry = 0; }
static void entry_shim(struct image *im) { im->eh->e_entry = 0xffffffffc0000000ull; }
static void entry_past_text(struct image *im)
{
	Elf64_Phdr *p = load_seg(im, -1);
	im->eh->e_entry = p->p_vaddr + p->p_memsz + 0x100;
}
static void interp(struct image *im)
{
	Elf64_Phdr *p = first_of(im, PT_GNU_STACK);
	if (!p) {
		printf("Bail out! no PT_GNU_STACK to turn into PT_INTERP\n");
		exit(1);
	}
	static const char path[] = "/lib64/ld-linux-x86-64.so.2";
	memcpy(im->b + im->len, path, sizeof path);
	*p = (Elf64_Phdr){ .p_type = PT_INTERP, .p_flags = PF_R, .p_offset = im->len, .p_filesz = sizeof path,
	                   .p_memsz = sizeof path, .p_align = 1 };
	im->len += sizeof path;
}
static void no_load(struct image *im)
{
	for (int k = 0; k < im->eh->e_phnum; k++)
		if (ph(im, k)->p_type == PT_LOAD)
			ph(im, k)->p_type = PT_NULL;
}
static void phnum_max(struct image *im) { im->eh->e_phnum = 0xffff; }
static void phoff_huge(struct image *im) { im->eh->e_phoff = 0xffffffffffffff00ull; }
static void phentsize_small(struct image *im) { im->eh->e_phentsize = 8; }
static void pie_memsz_2_46(struct image *im)
{
	Elf64_Phdr *last = NULL;
	for (int k = 0; k < im->eh->e_phnum; k++)
		if (ph(im, k)->p_type == PT_LOAD)
			last = ph(im, k);
	last->p_memsz = 1ull << 46;
}
static void pie_entry_outside(struct image *im) { im->eh->e_entry = 0x7ff000000000ull; }

static void test_load(const char *hello, const char *pie, const char *dynexe)
{
	static const struct { const char *name, *what, *reason; void (*harm)(struct image *); } cases[] = {
		{ "class32", "a 32-bit (i386) ELF", NULL, class32 },
		{ "aarch64", "an aarch64 ELF", NULL, aarch64 },
		{ "bigend", "a big-endian ELF", NULL, bigend },
		{ "et_rel", "a relocatable object", NULL, et_rel },
		{ "et_core", "a core file", NULL, et_core },
		{ "cut10", "truncated to 10 bytes", NULL, cut_10 },
		{ "cut63", "truncated inside the ELF header", NULL, cut_63 },
		{ "cut_phdrs", "truncated inside the program headers", NULL, cut_phdrs },
		{ "cut_text", "truncated inside the code segment", NULL, cut_text },
		{ "filesz_past_eof", "segment file bytes beyond EOF", NULL, filesz_past_eof },
		{ "offset_huge", "segment offset 2^64-4096", NULL, offset_huge },
		{ "offset_wraps", "segment offset + size wraps", NULL, offset_wraps },
		{ "memsz_2_46", "segment of 2^46 bytes (64 TiB)", NULL, memsz_2_46 },
		{ "memsz_wraps", "segment memsz wraps the address space", NULL, memsz_wraps },
		{ "memsz_lt_filesz", "memsz smaller than filesz", NULL, memsz_lt_filesz },
		{ "vaddr_kernel", "segment in the kernel half", NULL, vaddr_kernel },
		{ "vaddr_shim", "segment on the shim", NULL, vaddr_shim },
		{ "vaddr_last", "segment on the last user page", NULL, vaddr_last },
		{ "vaddr_zero", "segment at address 0 (ET_EXEC)", NULL, vaddr_zero },
		{ "vaddr_across_end", "segment across the end of the user half", NULL, vaddr_across_end },
		{ "overlap", "two segments at one address", NULL, overlap },
		{ "overlap_partly", "segments overlapping by half a page", NULL, overlap_partly },
		{ "entry_data", "entry in a non-executable segment", NULL, entry_data },
		{ "entry_zero", "entry 0", NULL, entry_zero },
		{ "entry_shim", "entry on the shim", NULL, entry_shim },
		{ "entry_past_text", "entry past the end of the code", NULL, entry_past_text },
		{ "interp", "a PT_INTERP in an otherwise static program", "*dynamically linked*", interp },
		{ "no_load", "no PT_LOAD at all", NULL, no_load },
		{ "phnum_max", "65535 program headers", NULL, phnum_max },
		{ "phoff_huge", "program headers at 2^64-256", NULL, phoff_huge },
		{ "phentsize_small", "program header size 8", NULL, phentsize_small },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		damage(hello, cases[i].name, cases[i].what, cases[i].reason, cases[i].harm);
	damage(pie, "pie_memsz_2_46", "static PIE with a 64 TiB segment", NULL, pie_memsz_2_46);
	damage(pie, "pie_entry_outside", "static PIE with its entry outside", NULL, pie_entry_outside);
	refused(dynexe, "a dynamically linked host program", "*dynamically linked*");

	char path[4096];
	snprintf(path, sizeof path, "%s/empty", tmp);
	driver_write(path, "", 0);
	refused(path, "an empty file", NULL);
	/* A FIFO with no writer: opening it for reading blocks, and the loader must not. */
	snprintf(path, sizeof path, "%s/fifo", tmp);
	if (mkfifo(path, 0644) < 0)
		driver_bail("mkfifo", path);
	refused(path, "a FIFO (must not hang)", NULL);
}

static void runs(const char *path, const char *arg, const char *out, const char *what)
{
	struct drive_result r;
	drive(&r, (const char *const[]){ ringfence, "run", "--", path, arg, NULL }, -1, DRIVER_DEADLINE);
	if (!ok(r.status == 0 && !strcmp(r.out, out) && r.errlen == 0, "%s runs", what)) {
		drive_show(&r);
		printf("#   want stdout %s", out);
	}
	drive_free(&r);
}

static void test_run(const char *hello, const char *stat, const char *pie)
{
	runs(stat, NULL, "hello from a static libc program with 1 arguments\n", "a static glibc program");
	runs(pie, NULL, "hello from a static libc program with 1 arguments\n", "a static-PIE glibc program");
	runs(pie, "x", "hello from a static libc program with 2 arguments\n", "a static-PIE glibc program, argument");
	/* 16 GiB of file behind a valid program (sparse): it runs or is refused, promptly, and the
	 * file is never read whole. */
	struct image im = load_image(hello);
	const char *big = write_case(&im, "sparse16g");
	free(im.b);
	if (truncate(big, 16ll << 30) < 0)
		driver_bail("truncate", big);
	struct drive_result r;
	drive(&r, (const char *const[]){ ringfence, "run", "--", big, NULL }, -1, DRIVER_DEADLINE);
	bool good = (r.status == 0 && !strcmp(r.out, "hello, world\n")) || r.status == 127;
	if (!ok(good, "a program followed by 16 GiB of sparse file runs or is refused")) {
		drive_show(&r);
	}
	drive_free(&r);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 6 || (strcmp(argv[1], "load") && strcmp(argv[1], "run"))) {
		printf("Bail out! usage: %s load RINGFENCE HELLO PIE DYNEXE | run RINGFENCE HELLO STATIC PIE\n", argv[0]);
		return 1;
	}
	ringfence = argv[2];
	tmp = driver_mkdtemp("loader");
	if (!strcmp(argv[1], "load")) {
		test_load(argv[3], argv[4], argv[5]);
	} else {
		driver_need_kvm();
		test_run(argv[3], argv[4], argv[5]);
	}
	driver_rmtree(tmp);
	free(tmp);
	return tap_done();
}
