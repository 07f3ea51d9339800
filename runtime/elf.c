/* SPDX-License-Identifier: MIT */
/* ELF64 parser for the runtime's loader: accepts only what it can place safely, and says why not. */
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "runtime.h"

#define PAGE 4096ull

static uint64_t page_down(uint64_t a) { return a & ~(PAGE - 1); }
static uint64_t page_up(uint64_t a) { return (a + PAGE - 1) & ~(PAGE - 1); }

#define PROT_R RF_PROT_READ
#define PROT_W RF_PROT_WRITE
#define PROT_X RF_PROT_EXEC

__attribute__((format(printf, 3, 4))) static int reject(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -ENOEXEC;
}

static const char *type_name(unsigned t)
{
	switch (t) {
	case ET_NONE: return "ET_NONE";
	case ET_REL: return "ET_REL, an object file";
	case ET_DYN: return "ET_DYN";
	case ET_CORE: return "ET_CORE, a core dump";
	default: return "unknown";
	}
}

static int check_header(const Elf64_Ehdr *eh, size_t size, char *err, size_t errlen)
{
	if (eh->e_ident[EI_CLASS] != ELFCLASS64)
		return reject(err, errlen, "not a 64-bit ELF file (class %u)", eh->e_ident[EI_CLASS]);
	if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return reject(err, errlen, "not a little-endian ELF file");
	if (eh->e_ident[EI_VERSION] != EV_CURRENT || eh->e_version != EV_CURRENT)
		return reject(err, errlen, "unknown ELF version %u",
		              eh->e_ident[EI_VERSION] != EV_CURRENT ? eh->e_ident[EI_VERSION] : eh->e_version);
	if (eh->e_machine != EM_X86_64)
		return reject(err, errlen, "not an x86-64 program (ELF machine %u)", eh->e_machine);
	/* ET_DYN: a static PIE if it has no PT_INTERP (checked with the program headers). */
	if (eh->e_type != ET_EXEC && eh->e_type != ET_DYN)
		return reject(err, errlen, "not an executable (ELF type %u, %s)", eh->e_type, type_name(eh->e_type));
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return reject(err, errlen, "program header size %u, want %zu", eh->e_phentsize, sizeof(Elf64_Phdr));
	if (eh->e_phnum == 0)
		return reject(err, errlen, "no program headers");
	if (eh->e_phnum > ELF_MAX_PHDRS)   /* also PN_XNUM: the real count would be in a section */
		return reject(err, errlen, "too many program headers (%u, at most %u)", eh->e_phnum, ELF_MAX_PHDRS);
	uint64_t bytes = (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr);
	if (eh->e_phoff > size || bytes > size - eh->e_phoff)
		return reject(err, errlen, "program headers (offset 0x%llx, %u of them) beyond the end of the file",
		              (unsigned long long)eh->e_phoff, eh->e_phnum);
	return 0;
}

static unsigned prot_of(uint32_t flags)
{
	return (flags & PF_R ? PROT_R : 0) | (flags & PF_W ? PROT_W : 0) | (flags & PF_X ? PROT_X : 0);
}

/* n is the program header index, as readelf numbers them, so the message can be checked there. */
static int check_load(const Elf64_Phdr *ph, uint64_t bias, unsigned n, size_t size, char *err, size_t errlen)
{
	if (bias && ph->p_vaddr > ELF_USER_END)   /* a PIE: before the bias is added, no wrap-around */
		return reject(err, errlen, "segment %u at 0x%llx: beyond the user half", n,
		              (unsigned long long)ph->p_vaddr);
	unsigned long long va = ph->p_vaddr + bias, mem = ph->p_memsz, off = ph->p_offset, fsz = ph->p_filesz;
	if (fsz > mem)
		return reject(err, errlen, "segment %u: file size 0x%llx larger than memory size 0x%llx", n, fsz, mem);
	if (off + fsz < off)
		return reject(err, errlen, "segment %u: file offset 0x%llx + size 0x%llx overflows", n, off, fsz);
	if (fsz && off + fsz > size)   /* with nothing to read, the offset is never used */
		return reject(err, errlen, "segment %u: file bytes 0x%llx..0x%llx beyond the end of the file (0x%zx)",
		              n, off, off + fsz, size);
	if (va + mem < va)
		return reject(err, errlen, "segment %u: address 0x%llx + size 0x%llx overflows", n, va, mem);
	if (va < ELF_USER_MIN)
		return reject(err, errlen, "segment %u at 0x%llx: below 0x%llx, the lowest address a program may use",
		              n, va, ELF_USER_MIN);
	if (va + mem > ELF_USER_END)
		return reject(err, errlen, "segment %u: 0x%llx..0x%llx leaves the user half (ends at 0x%llx)", n, va,
		              va + mem, ELF_USER_END);
	return 0;
}


/* Segments are mapped whole pages at a time, so two that share a page would need it with two
 * contents or two protections; refuse instead of picking one. */
static int check_overlaps(const struct elf_info *e, const unsigned *index, char *err, size_t errlen)
{
	for (unsigned i = 0; i < e->nseg; i++)
		for (unsigned j = i + 1; j < e->nseg; j++) {
			const struct elf_segment *a = &e->seg[i], *b = &e->seg[j];
			if (page_down(a->vaddr) < page_up(b->vaddr + b->memsz) &&
			    page_down(b->vaddr) < page_up(a->vaddr + a->memsz))
				return reject(err, errlen, "segments %u (0x%llx..0x%llx) and %u (0x%llx..0x%llx) "
				              "overlap in the same pages", index[i], (unsigned long long)a->vaddr,
				              (unsigned long long)(a->vaddr + a->memsz), index[j],
				              (unsigned long long)b->vaddr, (unsigned long long)(b->vaddr + b->memsz));
		}
	return 0;
}

/* AT_PHDR: glibc's static start-up finds its TLS segment through it, so say where the headers are
 * whenever a segment loads them, as Linux does. */
static uint64_t find_phdr_vaddr(const struct elf_info *e, const Elf64_Ehdr *eh, uint64_t pt_phdr)
{
	if (pt_phdr)
		return pt_phdr;
	uint64_t off = eh->e_phoff, len = (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr);
	for (unsigned i = 0; i < e->nseg; i++) {
		const struct elf_segment *s = &e->seg[i];
		if (off >= s->offset && off - s->offset <= s->filesz && len <= s->filesz - (off - s->offset))
			return s->vaddr + (off - s->offset);
	}
	return 0;
}

int elf_parse(const void *file, size_t size, struct elf_info *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (size < SELFMAG || memcmp(file, ELFMAG, SELFMAG) != 0)
		return reject(err, errlen, "not an ELF file (bad magic)");
	if (size < sizeof(Elf64_Ehdr))
		return reject(err, errlen, "truncated ELF header (%zu bytes)", size);
	Elf64_Ehdr eh;
	memcpy(&eh, file, sizeof eh);   /* the buffer need not be aligned */
	int r = check_header(&eh, size, err, errlen);
	if (r < 0)
		return r;

	/* A first pass for PT_INTERP and, for a PIE, the lowest address: the bias moves that to
	 * ELF_PIE_BASE, as Linux places ET_DYN programs. */
	const unsigned char *phdrs = (const unsigned char *)file + eh.e_phoff;
	uint64_t low = UINT64_MAX;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, phdrs + (uint64_t)i * sizeof ph, sizeof ph);
		if (ph.p_type == PT_INTERP)
			return reject(err, errlen, "dynamically linked (has PT_INTERP): only static executables run");
		if (ph.p_type == PT_LOAD && (ph.p_memsz || ph.p_filesz) && ph.p_vaddr < low)
			low = ph.p_vaddr;
	}
	out->pie = eh.e_type == ET_DYN;
	if (out->pie && low != UINT64_MAX) {
		if (low > ELF_USER_END)
			return reject(err, errlen, "lowest segment at 0x%llx: beyond the user half", (unsigned long long)low);
		out->bias = ELF_PIE_BASE - page_down(low);
	}

	unsigned index[ELF_MAX_PHDRS];
	uint64_t pt_phdr = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, phdrs + (uint64_t)i * sizeof ph, sizeof ph);
		if (ph.p_type == PT_PHDR)
			pt_phdr = ph.p_vaddr + out->bias;
		if (ph.p_type != PT_LOAD || (ph.p_memsz == 0 && ph.p_filesz == 0))
			continue;   /* an empty PT_LOAD: Linux maps nothing for it either */
		if ((r = check_load(&ph, out->bias, i, size, err, errlen)) < 0)
			return r;
		index[out->nseg] = i;
		out->seg[out->nseg++] = (struct elf_segment){
			.vaddr = ph.p_vaddr + out->bias, .memsz = ph.p_memsz, .offset = ph.p_offset,
			.filesz = ph.p_filesz, .prot = prot_of(ph.p_flags),
		};
	}
	if (out->nseg == 0)
		return reject(err, errlen, "no loadable segments");
	if ((r = check_overlaps(out, index, err, errlen)) < 0)
		return r;

	bool entry_ok = false;
	uint64_t entry = eh.e_entry + out->bias;   /* wraps for a bad entry: then it is in no segment */
	for (unsigned i = 0; i < out->nseg; i++) {
		const struct elf_segment *s = &out->seg[i];
		if ((s->prot & PROT_X) && entry >= s->vaddr && entry - s->vaddr < s->memsz)
			entry_ok = true;
	}
	if (!entry_ok)
		return reject(err, errlen, "entry point 0x%llx is not in an executable segment",
		              (unsigned long long)eh.e_entry);
	out->entry = entry;
	out->phnum = eh.e_phnum;
	out->phentsize = eh.e_phentsize;
	out->phdr_vaddr = find_phdr_vaddr(out, &eh, pt_phdr);
	return 0;
}
