/* SPDX-License-Identifier: MIT */
/* The ELF parser of `ringfence run`, without KVM: a valid image built in memory, each kind of damage
 * to it rejected with its own reason, truncations and byte flips never read out of bounds, and a real
 * program built by the test suite (argv[1]). */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "runtime.h"
#include "tap.h"

#define FILE_SIZE 0x2008u
#define NPH       4   /* three PT_LOADs and a PT_GNU_STACK, like a linker's output */

struct fake {
	unsigned char *bytes;
	Elf64_Ehdr *eh;
	Elf64_Phdr *ph;
	size_t size;
};

/* ELF header, program headers at 64, segments: R [0x400000, headers), RX 0x401000, RW 0x402000 with
 * 0x2ff8 bytes of bss. */
static void make(struct fake *im)
{
	memset(im->bytes, 0, FILE_SIZE);
	im->size = FILE_SIZE;
	Elf64_Ehdr *eh = im->eh;
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = 0x401000;
	eh->e_phoff = sizeof *eh;
	eh->e_ehsize = sizeof *eh;
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = NPH;
	Elf64_Phdr *ph = im->ph;
	ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R, .p_offset = 0, .p_vaddr = 0x400000,
	                      .p_filesz = 0x120, .p_memsz = 0x120, .p_align = 0x1000 };
	ph[1] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = 0x1000,
	                      .p_vaddr = 0x401000, .p_filesz = 0x10, .p_memsz = 0x10, .p_align = 0x1000 };
	ph[2] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R | PF_W, .p_offset = 0x2000,
	                      .p_vaddr = 0x402000, .p_filesz = 8, .p_memsz = 0x3000, .p_align = 0x1000 };
	ph[3] = (Elf64_Phdr){ .p_type = PT_GNU_STACK, .p_flags = PF_R | PF_W, .p_align = 16 };
}

static int parse(const struct fake *im, struct elf_info *e, char *why, size_t n)
{
	why[0] = 0;
	return elf_parse(im->bytes, im->size, e, why, n);
}

/* Parses im and checks it is refused with a message containing `reason`. */
static void rejected(const struct fake *im, const char *name, const char *reason)
{
	struct elf_info e;
	char why[256];
	int r = parse(im, &e, why, sizeof why);
	if (!ok(r == -ENOEXEC && strstr(why, reason), "rejected: %s", name))
		printf("#   returned %d, message \"%s\", want -ENOEXEC and \"%s\"\n", r, why, reason);
}

static void test_valid(struct fake *im)
{
	struct elf_info e;
	char why[256];
	make(im);
	int r = parse(im, &e, why, sizeof why);
	if (!ok(r == 0, "the valid image parses"))
		printf("#   %d: %s\n", r, why);
	ok_eq(e.entry, 0x401000, "entry point");
	ok_eq(e.nseg, 3, "three segments (PT_GNU_STACK is not one)");
	ok_eq(e.seg[0].vaddr, 0x400000, "segment 0 address");
	ok_eq(e.seg[0].prot, 1, "segment 0 is read-only");
	ok_eq(e.seg[1].prot, 1 | 4, "segment 1 is read + exec");
	ok_eq(e.seg[1].offset, 0x1000, "segment 1 file offset");
	ok_eq(e.seg[2].prot, 1 | 2, "segment 2 is read + write");
	ok_eq(e.seg[2].filesz, 8, "segment 2 file size");
	ok_eq(e.seg[2].memsz, 0x3000, "segment 2 memory size, bss included");
	ok_eq(e.phdr_vaddr, 0x400040, "program headers are loaded by segment 0");
	ok_eq(e.phnum, NPH, "AT_PHNUM");
	ok_eq(e.phentsize, sizeof(Elf64_Phdr), "AT_PHENT");

	/* Variants that are fine. */
	im->ph[3] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_vaddr = 0 };
	r = parse(im, &e, why, sizeof why);
	ok(r == 0 && e.nseg == 3, "an empty PT_LOAD at 0 is ignored, as Linux does: %s", why);
	im->ph[3] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = 0, .p_vaddr = 0x500000, .p_memsz = 0x1000 };
	r = parse(im, &e, why, sizeof why);
	ok(r == 0 && e.nseg == 4 && e.seg[3].prot == 0, "a segment without permissions is kept with prot 0: %s", why);
	im->ph[3] = (Elf64_Phdr){ .p_type = PT_PHDR, .p_flags = PF_R, .p_vaddr = 0x400040 + 0x1000 };
	r = parse(im, &e, why, sizeof why);
	ok(r == 0 && e.phdr_vaddr == 0x401040, "PT_PHDR says where the headers are: %s", why);
	make(im);
	im->ph[0].p_offset = 0x100;   /* headers at 64 are now in no segment */
	im->ph[0].p_filesz = 0x20;
	r = parse(im, &e, why, sizeof why);
	ok(r == 0 && e.phdr_vaddr == 0, "headers outside every segment: no AT_PHDR: %s", why);
	make(im);
	im->ph[1].p_vaddr = 0x401000 + 0x10;   /* touching the R page's end is fine at page granularity */
	im->ph[0].p_memsz = 0x1000;
	im->eh->e_entry = 0x401010;
	r = parse(im, &e, why, sizeof why);
	ok(r == 0, "segments in adjacent pages do not overlap: %s", why);
	make(im);
	im->ph[2].p_vaddr = 0x7fffffffd000;   /* ends exactly at the end of the user half */
	r = parse(im, &e, why, sizeof why);
	ok(r == 0, "a segment may end exactly at 0x800000000000: %s", why);
	make(im);
	im->ph[0].p_vaddr = 0x10000;
	r = parse(im, &e, why, sizeof why);
	ok(r == 0, "a segment may start exactly at 0x10000: %s", why);
}

static void test_header(struct fake *im)
{
	make(im);
	im->size = 3;
	rejected(im, "3 bytes", "not an ELF file");
	make(im);
	im->bytes[1] = 'X';
	rejected(im, "bad magic", "not an ELF file (bad magic)");
	make(im);
	im->size = 40;
	rejected(im, "truncated header", "truncated ELF header (40 bytes)");
	make(im);
	im->eh->e_ident[EI_CLASS] = ELFCLASS32;
	rejected(im, "32-bit class", "not a 64-bit ELF file (class 1)");
	make(im);
	im->eh->e_ident[EI_DATA] = ELFDATA2MSB;
	rejected(im, "big-endian", "not a little-endian ELF file");
	make(im);
	im->eh->e_version = 2;
	rejected(im, "version", "unknown ELF version 2");
	make(im);
	im->eh->e_ident[EI_VERSION] = 0;
	rejected(im, "identification version", "unknown ELF version 0");
	make(im);
	im->eh->e_machine = EM_386;
	rejected(im, "i386 machine", "not an x86-64 program (ELF machine 3)");
	make(im);
	im->eh->e_machine = EM_AARCH64;
	rejected(im, "aarch64 machine", "not an x86-64 program (ELF machine 183)");
	make(im);
	im->eh->e_type = ET_DYN;
	{
		/* A static PIE: placed so its lowest page is at ELF_PIE_BASE, everything moved alike. */
		struct elf_info e;
		char why[256];
		int r = parse(im, &e, why, sizeof why);
		uint64_t bias = ELF_PIE_BASE - 0x400000;
		if (!ok(r == 0 && e.pie && e.bias == bias && e.entry == im->eh->e_entry + bias &&
		        e.seg[1].vaddr == 0x401000 + bias && e.phdr_vaddr == 0x400000 + sizeof(Elf64_Ehdr) + bias,
		        "ET_DYN without PT_INTERP: a static PIE at 0x%llx", (unsigned long long)ELF_PIE_BASE))
			printf("#   returned %d (%s), bias 0x%llx, entry 0x%llx\n", r, why, (unsigned long long)e.bias,
			       (unsigned long long)e.entry);
		im->ph[2].p_vaddr = 0xffffffff80000000ull;
		rejected(im, "a PIE segment beyond the user half before the bias", "beyond the user half");
	}
	make(im);
	im->eh->e_type = ET_REL;
	rejected(im, "ET_REL", "not an executable (ELF type 1, ET_REL, an object file)");
	make(im);
	im->eh->e_type = ET_CORE;
	rejected(im, "ET_CORE", "not an executable (ELF type 4, ET_CORE");
	make(im);
	im->eh->e_phentsize = 32;
	rejected(im, "short program header entries", "program header size 32, want 56");
	make(im);
	im->eh->e_phnum = 0;
	rejected(im, "no program headers", "no program headers");
	make(im);
	im->eh->e_phnum = ELF_MAX_PHDRS + 1;
	rejected(im, "65 program headers", "too many program headers (65, at most 64)");
	make(im);
	im->eh->e_phnum = PN_XNUM;
	rejected(im, "PN_XNUM program headers", "too many program headers (65535");
	make(im);
	im->eh->e_phoff = FILE_SIZE - 100;
	rejected(im, "program headers run past the end", "beyond the end of the file");
	make(im);
	im->eh->e_phoff = FILE_SIZE + 1;
	rejected(im, "program headers start past the end", "beyond the end of the file");
	make(im);
	im->eh->e_phoff = ~0ull - 8;
	rejected(im, "program header offset wraps around", "beyond the end of the file");
}

static void test_segments(struct fake *im)
{
	make(im);
	im->ph[3] = (Elf64_Phdr){ .p_type = PT_INTERP, .p_offset = 0x100, .p_filesz = 0x10 };
	rejected(im, "PT_INTERP", "dynamically linked");
	make(im);
	im->ph[0].p_vaddr = 0xf000;
	rejected(im, "segment below 0x10000", "segment 0 at 0xf000: below 0x10000");
	make(im);
	im->ph[0].p_vaddr = 0;
	rejected(im, "segment at 0", "segment 0 at 0x0: below 0x10000");
	make(im);
	im->ph[2].p_vaddr = 0x7fffffffe000;
	rejected(im, "segment crossing 0x800000000000", "segment 2: 0x7fffffffe000..0x800000001000 leaves the user half");
	make(im);
	im->ph[2].p_vaddr = 0xffffffff80000000;
	rejected(im, "segment in the kernel half", "leaves the user half");
	make(im);
	im->ph[2].p_vaddr = 0xfffffffffffff000;
	rejected(im, "address + size wraps around", "segment 2: address 0xfffffffffffff000 + size 0x3000 overflows");
	make(im);
	im->ph[2].p_offset = ~0ull - 4;
	rejected(im, "offset + file size wraps around", "segment 2: file offset 0xfffffffffffffffb + size 0x8 overflows");
	make(im);
	im->ph[2].p_filesz = 9;
	rejected(im, "file bytes past the end", "segment 2: file bytes 0x2000..0x2009 beyond the end of the file");
	make(im);
	im->ph[2].p_offset = FILE_SIZE + 0x1000;
	im->ph[2].p_filesz = 0;
	ok(parse(im, &(struct elf_info){ 0 }, (char[8]){ 0 }, 8) == 0,
	   "an offset past the end with nothing to read is harmless");
	make(im);
	im->ph[1].p_filesz = 0x11;
	rejected(im, "file size above memory size", "segment 1: file size 0x11 larger than memory size 0x10");
	make(im);
	im->ph[2].p_vaddr = 0x401800;
	rejected(im, "overlapping segments", "segments 1 (0x401000..0x401010) and 2 (0x401800..0x404800) overlap");
	make(im);
	im->ph[2].p_vaddr = 0x401010;
	rejected(im, "segments sharing a page", "segments 1 (0x401000..0x401010) and 2 (0x401010..0x404010) overlap");
	make(im);
	im->ph[2].p_vaddr = 0x3ff000;   /* its bss runs over both other segments */
	rejected(im, "a segment covering others", "overlap");
	make(im);
	for (int i = 0; i < NPH; i++)
		im->ph[i].p_type = PT_NOTE;
	rejected(im, "no PT_LOAD", "no loadable segments");
	make(im);
	im->eh->e_entry = 0x409000;
	rejected(im, "entry outside every segment", "entry point 0x409000 is not in an executable segment");
	make(im);
	im->eh->e_entry = 0x402000;
	rejected(im, "entry in a data segment", "entry point 0x402000 is not in an executable segment");
	make(im);
	im->eh->e_entry = 0x401010;
	rejected(im, "entry just past the code", "entry point 0x401010");
}

/* Everything short of the whole file cuts off segment 2's bytes, so each must be refused, and none
 * may read past the end (the ASan build checks that). */
static void test_truncations_and_flips(struct fake *im)
{
	struct elf_info e;
	char why[256];
	int bad = 0;
	for (size_t n = 0; n < FILE_SIZE; n++) {
		make(im);
		unsigned char *copy = malloc(n ? n : 1);   /* exactly n bytes, so an overread is caught */
		memcpy(copy, im->bytes, n);
		if (elf_parse(copy, n, &e, why, sizeof why) != -ENOEXEC || !why[0])
			bad++;
		free(copy);
	}
	ok(!bad, "every truncation is rejected with a reason (%d were not)", bad);

	/* Flip each bit of the headers: whatever the parser accepts must still be inside the file. */
	size_t head = sizeof(Elf64_Ehdr) + NPH * sizeof(Elf64_Phdr);
	int outside = 0, accepted = 0;
	for (size_t i = 0; i < head * 8; i++) {
		make(im);
		im->bytes[i / 8] ^= (unsigned char)(1u << (i % 8));
		if (parse(im, &e, why, sizeof why) != 0)
			continue;
		accepted++;
		for (unsigned s = 0; s < e.nseg; s++)
			if (e.seg[s].offset + e.seg[s].filesz > FILE_SIZE || e.seg[s].vaddr < ELF_USER_MIN ||
			    e.seg[s].vaddr + e.seg[s].memsz > ELF_USER_END || e.seg[s].filesz > e.seg[s].memsz)
				outside++;
	}
	ok(!outside, "no bit flip makes an accepted segment leave the file or the user half (%d accepted)",
	   accepted);
}

static void test_messages(struct fake *im)
{
	struct elf_info e;
	make(im);
	im->eh->e_machine = EM_386;
	char tiny[8];
	memset(tiny, 'x', sizeof tiny);
	int r = elf_parse(im->bytes, im->size, &e, tiny, sizeof tiny);
	ok(r == -ENOEXEC && tiny[7] == 0 && !strcmp(tiny, "not an "), "a short message buffer gets a cut, terminated message");
	r = elf_parse(im->bytes, im->size, &e, NULL, 0);
	ok(r == -ENOEXEC, "no message buffer at all is fine");
}

/* A program from test/progs, as the linker made it. */
static void test_real(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!ok(f != NULL, "open %s", path))
		return;
	static unsigned char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	struct elf_info e;
	char why[256] = "";
	int r = elf_parse(buf, n, &e, why, sizeof why);
	if (!ok(r == 0, "the built hello parses"))
		printf("#   %s\n", why);
	ok_eq(e.entry, 0x401000, "its entry point is the start of .text at the fixed base");
	ok_eq(e.phdr_vaddr, 0x400040, "its program headers are loaded right after the ELF header");
	unsigned x = 0, w = 0;
	for (unsigned i = 0; i < e.nseg; i++) {
		x += !!(e.seg[i].prot & 4);
		w += !!(e.seg[i].prot & 2);
	}
	ok(e.nseg >= 2 && x == 1 && w == 0, "%u segments, one executable, none writable", e.nseg);
}

int main(int argc, char **argv)
{
	struct fake im;
	im.bytes = aligned_alloc(64, (FILE_SIZE + 63) & ~63u);
	im.eh = (Elf64_Ehdr *)im.bytes;
	im.ph = (Elf64_Phdr *)(im.bytes + sizeof(Elf64_Ehdr));
	test_valid(&im);
	test_header(&im);
	test_segments(&im);
	test_truncations_and_flips(&im);
	test_messages(&im);
	if (argc > 1)
		test_real(argv[1]);
	else
		ok(0, "no built program given as argument");
	free(im.bytes);
	return tap_done();
}
