/* SPDX-License-Identifier: MIT */
/* A run program's image: one guest memory with its segments and stack, their mappings, and the
 * table that turns user addresses into host pointers for the syscalls the runner serves. */
#include <string.h>

#include "cmd.h"
#include "ringfence.h"

_Static_assert(ELF_USER_END == RF_USER_END, "the parser and the platform agree on the user half");
_Static_assert(IMAGE_STACK_TOP % RF_PAGE_SIZE == 0 && IMAGE_STACK_SIZE % RF_PAGE_SIZE == 0,
               "the stack is whole pages");

static uint64_t page_down(uint64_t a) { return a & ~(RF_PAGE_SIZE - 1); }
static uint64_t page_up(uint64_t a) { return (a + RF_PAGE_SIZE - 1) & ~(RF_PAGE_SIZE - 1); }

/* Regions in ascending order, so image_span() and messages see the layout as the program does. */
static void sort_regions(struct image *im)
{
	for (unsigned i = 1; i < im->n; i++)
		for (unsigned j = i; j > 0 && im->r[j].va < im->r[j - 1].va; j--) {
			struct image_region t = im->r[j];
			im->r[j] = im->r[j - 1];
			im->r[j - 1] = t;
		}
	for (unsigned i = 0; i < im->n; i++)
		if (im->r[i].va == IMAGE_STACK_TOP - IMAGE_STACK_SIZE)
			im->stack = &im->r[i];
}

/* Each region gets its own page-aligned slice of the memory: copying (rather than mapping the file)
 * keeps the file's bytes outside a segment, and any later change to the file, away from the guest. */
static int plan(struct image *im, const char *prog, const struct elf_info *elf, uint64_t *offsets,
                uint64_t *total)
{
	uint64_t off = 0;
	const uint64_t stack_va = IMAGE_STACK_TOP - IMAGE_STACK_SIZE;
	for (unsigned i = 0; i < elf->nseg; i++) {
		const struct elf_segment *s = &elf->seg[i];
		uint64_t va = page_down(s->vaddr), end = page_up(s->vaddr + s->memsz);
		if (end > stack_va)
			return cmd_fail(RUN_EXIT_NOLOAD, "%s: segment at 0x%llx..0x%llx reaches the stack area "
			                "(0x%llx and up)", prog, (unsigned long long)s->vaddr,
			                (unsigned long long)(s->vaddr + s->memsz), (unsigned long long)stack_va);
		im->r[im->n++] = (struct image_region){ .va = va, .len = end - va, .prot = s->prot };
		offsets[i] = off;
		off += end - va;   /* no overflow: at most 64 regions of at most 2^47 bytes */
	}
	offsets[elf->nseg] = off;
	im->r[im->n++] = (struct image_region){ .va = stack_va, .len = IMAGE_STACK_SIZE,
	                                        .prot = RF_PROT_READ | RF_PROT_WRITE };
	off += IMAGE_STACK_SIZE;
	*total = (off + RF_HUGE_SIZE - 1) & ~(RF_HUGE_SIZE - 1);
	if (*total > IMAGE_MEM_MAX)
		return cmd_fail(RUN_EXIT_NOLOAD, "%s: needs %llu MiB of memory, more than the %llu MiB a program may have",
		                prog, (unsigned long long)(*total >> 20), IMAGE_MEM_MAX >> 20);
	return 0;
}

int image_load(struct image *im, rf_platform *p, const char *prog, const unsigned char *file,
               const struct elf_info *elf)
{
	memset(im, 0, sizeof *im);
	uint64_t offsets[ELF_MAX_PHDRS + 1], total = 0;
	int st = plan(im, prog, elf, offsets, &total);
	if (st) {
		im->n = 0;
		return st;
	}
	if (rf_memory_create(p, total, &im->mem) < 0 || rf_as_create(p, &im->as) < 0)
		goto platform;
	unsigned char *host = rf_memory_host(im->mem);
	/* The memory is a fresh memfd: everything not copied, bss included, reads as zero. */
	for (unsigned i = 0; i <= elf->nseg; i++)
		im->r[i].host = host + offsets[i];
	for (unsigned i = 0; i < elf->nseg; i++) {
		const struct elf_segment *s = &elf->seg[i];
		memcpy(im->r[i].host + (s->vaddr - im->r[i].va), file + s->offset, s->filesz);
	}
	for (unsigned i = 0; i < im->n; i++)
		if (im->r[i].prot &&   /* a PROT_NONE segment stays unmapped: any access faults */
		    rf_as_map(im->as, im->r[i].va, im->r[i].len, im->mem, offsets[i], im->r[i].prot, 0) < 0)
			goto platform;
	sort_regions(im);
	return 0;
platform:
	st = cmd_fail(RUN_EXIT_PLATFORM, "%s", rf_last_error());
	image_destroy(im);
	return st;
}

void image_destroy(struct image *im)
{
	/* The address space first: a memory it still maps cannot be destroyed. */
	if (im->as && rf_as_destroy(im->as) < 0)
		cmd_fail(0, "%s", rf_last_error());
	if (im->mem && rf_memory_destroy(im->mem) < 0)
		cmd_fail(0, "%s", rf_last_error());
	memset(im, 0, sizeof *im);
}

unsigned char *image_span(const struct image *im, uint64_t va, unsigned prot, uint64_t *avail)
{
	for (unsigned i = 0; i < im->n; i++) {
		const struct image_region *r = &im->r[i];
		/* x86 pages are always readable once present: write and exec imply read. */
		unsigned have = r->prot ? r->prot | RF_PROT_READ : 0;
		if (va >= r->va && va - r->va < r->len && (have & prot) == prot && have) {
			*avail = r->len - (va - r->va);
			return r->host + (va - r->va);
		}
	}
	return NULL;
}
