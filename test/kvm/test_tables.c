/* SPDX-License-Identifier: MIT */
/* Page-table changes every MMU must see (regression: a shadow MMU kept stale translations): a remap,
 * a 2 MiB remap and protect, a split, table pages retired and reused by another space, and a space
 * destroyed whose tables a new space reuses. Each runs with the probed MMU and with the shadow-MMU
 * path forced, so hosts with EPT/NPT exercise it too. */
#include <string.h>

#include "kvmtest.h"

GUEST(load);
GUEST(store);

#define VA        0x40000000ull    /* 1 GiB aligned: a PD of its own */
#define SPARE_OFF (6ull << 20)     /* the fixture memory's spare 2 MiB */

static uint64_t *at(struct kt *t, uint64_t off) { return (uint64_t *)(t->host + off); }

/* Runs `load` of va in space as: the value read, or ~0 for a fault (then *ev says which). */
static uint64_t read_in(struct kt *t, rf_as *as, uint64_t va, struct rf_event *ev)
{
	KT_LOAD(t, load);
	rf_context_regs(t->c)->rdi = va;
	if (rf_switch(t->c, as, ev) < 0)
		return ok(0, "switch failed: %s", rf_last_error()), ~0ull;
	return ev->type == RF_EVENT_SYSCALL ? rf_context_regs(t->c)->rax : ~0ull;
}

static bool write_in(struct kt *t, uint64_t va, uint64_t val, struct rf_event *ev)
{
	KT_LOAD(t, store);
	rf_context_regs(t->c)->rdi = va;
	rf_context_regs(t->c)->rsi = val;
	return rf_switch(t->c, t->as, ev) == 0 && ev->type == RF_EVENT_SYSCALL;
}

static void test_remaps(struct kt *t, const char *mode)
{
	struct rf_event ev;
	*at(t, SPARE_OFF) = 0xa1;
	*at(t, SPARE_OFF + 4096) = 0xb2;
	rf_as_map(t->as, VA, 4096, t->mem, SPARE_OFF, RF_PROT_READ, 0);
	uint64_t first = read_in(t, t->as, VA, &ev);
	rf_as_map(t->as, VA, 4096, t->mem, SPARE_OFF + 4096, RF_PROT_READ, 0);
	ok(first == 0xa1 && read_in(t, t->as, VA, &ev) == 0xb2, "%s: a 4 KiB remap is seen at the next read", mode);
	rf_as_unmap(t->as, VA, 4096);

	/* 2 MiB: data area (offset 2 MiB) then the spare 2 MiB (offset 6 MiB). */
	*at(t, 2u << 20) = 0xc3;
	rf_as_map(t->as, VA, RF_HUGE_SIZE, t->mem, 2u << 20, RF_PROT_READ | RF_PROT_WRITE, RF_MAP_HUGE);
	first = read_in(t, t->as, VA, &ev);
	rf_as_map(t->as, VA, RF_HUGE_SIZE, t->mem, SPARE_OFF, RF_PROT_READ | RF_PROT_WRITE, RF_MAP_HUGE);
	ok(first == 0xc3 && read_in(t, t->as, VA, &ev) == 0xa1, "%s: a 2 MiB remap is seen at the next read", mode);
	ok(write_in(t, VA + 8, 1, &ev), "%s: a write through the 2 MiB page", mode);
	rf_as_protect(t->as, VA, RF_HUGE_SIZE, RF_PROT_READ);
	ok(!write_in(t, VA + 8, 2, &ev) && ev.type == RF_EVENT_PAGE_FAULT && ev.present && ev.access == RF_ACCESS_WRITE,
	   "%s: after protecting the whole 2 MiB leaf a write is a protection fault", mode);

	/* Split: write-protect one 4 KiB page inside a writable 2 MiB leaf the guest has written. */
	rf_as_protect(t->as, VA, RF_HUGE_SIZE, RF_PROT_READ | RF_PROT_WRITE);
	ok(write_in(t, VA + 0x3000, 3, &ev) && write_in(t, VA + 0x5000, 4, &ev), "%s: writes in the leaf", mode);
	ok(rf_as_protect(t->as, VA + 0x3000, 4096, RF_PROT_READ) == 0, "%s: protect 4 KiB inside it (a split)", mode);
	ok(!write_in(t, VA + 0x3000, 5, &ev) && ev.type == RF_EVENT_PAGE_FAULT && ev.fault_addr == VA + 0x3000,
	   "%s: the protected page faults after the split", mode);
	ok(write_in(t, VA + 0x5000, 6, &ev) && *at(t, SPARE_OFF + 0x5000) == 6, "%s: its neighbours stay writable",
	   mode);
	rf_as_unmap(t->as, VA, RF_HUGE_SIZE);
	ok(read_in(t, t->as, VA + 0x5000, &ev) == ~0ull && ev.type == RF_EVENT_PAGE_FAULT && !ev.present,
	   "%s: the split range unmapped faults", mode);
}

/* A page table retired by a 2 MiB map over 4 KiB pages is reused by another space's new table:
 * neither space may see the other's translations. */
static void test_retired_table_reused(struct kt *t, const char *mode)
{
	struct rf_event ev;
	*at(t, SPARE_OFF) = 0xd4;
	*at(t, SPARE_OFF + 4096) = 0xe5;
	rf_as_map(t->as, VA, 8192, t->mem, SPARE_OFF, RF_PROT_READ, 0);
	uint64_t before = read_in(t, t->as, VA + 4096, &ev);
	rf_as_map(t->as, VA, RF_HUGE_SIZE, t->mem, 2u << 20, RF_PROT_READ, RF_MAP_HUGE);   /* retires the PT */
	*at(t, 2u << 20) = 0xf6;
	rf_as *other;
	if (!ok(rf_as_create(t->p, &other) == 0, "%s: a second space", mode))
		return;
	rf_as_map(other, KT_CODE_VA, 1u << 20, t->mem, 0, RF_PROT_READ | RF_PROT_EXEC, 0);
	rf_as_map(other, KT_STACK_VA, 2u << 20, t->mem, 4u << 20, RF_PROT_READ | RF_PROT_WRITE, 0);
	rf_as_map(other, VA + 8192, 4096, t->mem, SPARE_OFF + 4096, RF_PROT_READ, 0);   /* new PT pages */
	ok(before == 0xe5 && read_in(t, t->as, VA, &ev) == 0xf6, "%s: the first space sees its 2 MiB page", mode);
	uint64_t mine = read_in(t, other, VA + 8192, &ev);
	uint64_t old = read_in(t, other, VA + 4096, &ev);
	ok(mine == 0xe5 && old == ~0ull && ev.type == RF_EVENT_PAGE_FAULT && !ev.present,
	   "%s: the second space sees its own page and not the first space's old one (0x%llx, 0x%llx)", mode,
	   (unsigned long long)mine, (unsigned long long)old);
	ok(rf_as_destroy(other) == 0, "%s: destroy the second space", mode);
	rf_as_unmap(t->as, VA, RF_HUGE_SIZE);
}

/* A destroyed space's tables (root, PDPT, PD, PT) are reused by the next space created: what the
 * old one mapped must not show through. */
static void test_destroyed_space_reused(struct kt *t, const char *mode)
{
	struct rf_event ev;
	bool leaked = false, own = true;
	for (unsigned round = 0; round < 4; round++) {
		rf_as *a, *b;
		if (rf_as_create(t->p, &a) < 0)
			return;
		rf_as_map(a, KT_CODE_VA, 1u << 20, t->mem, 0, RF_PROT_READ | RF_PROT_EXEC, 0);
		rf_as_map(a, KT_STACK_VA, 2u << 20, t->mem, 4u << 20, RF_PROT_READ | RF_PROT_WRITE, 0);
		rf_as_map(a, VA + round * 4096, 4096, t->mem, SPARE_OFF, RF_PROT_READ, 0);
		*at(t, SPARE_OFF) = 0x11;
		read_in(t, a, VA + round * 4096, &ev);
		rf_as_destroy(a);
		if (rf_as_create(t->p, &b) < 0)
			return;
		rf_as_map(b, KT_CODE_VA, 1u << 20, t->mem, 0, RF_PROT_READ | RF_PROT_EXEC, 0);
		rf_as_map(b, KT_STACK_VA, 2u << 20, t->mem, 4u << 20, RF_PROT_READ | RF_PROT_WRITE, 0);
		rf_as_map(b, VA + 0x100000, 4096, t->mem, SPARE_OFF + 4096, RF_PROT_READ, 0);
		*at(t, SPARE_OFF + 4096) = 0x22;
		leaked |= read_in(t, b, VA + round * 4096, &ev) != ~0ull;
		own &= read_in(t, b, VA + 0x100000, &ev) == 0x22;
		rf_as_destroy(b);
	}
	ok(!leaked && own, "%s: a new space on a destroyed one's tables sees only its own mappings", mode);
}

int main(void)
{
	static const struct { enum rf_mmu mmu; const char *name; } modes[] = {
		{ RF_MMU_AUTO, "probed MMU" }, { RF_MMU_SHADOW, "shadow path forced" },
	};
	for (unsigned i = 0; i < 2; i++) {
		struct kt t;
		struct rf_platform_options o = { .mmu = modes[i].mmu };
		kt_init(&t, &o);
		struct rf_platform_info info;
		rf_platform_info(t.p, &info);
		printf("# %s: MMU %s\n", modes[i].name, info.mmu == RF_MMU_SHADOW ? "shadow" : "direct");
		test_remaps(&t, modes[i].name);
		test_retired_table_reused(&t, modes[i].name);
		test_destroyed_space_reused(&t, modes[i].name);
		rf_platform_info(t.p, &info);
		if (info.mmu == RF_MMU_SHADOW)
			ok(info.mmu_pages_touched > 0, "%s: table pages were touched (%llu in %llu changes)", modes[i].name,
			   (unsigned long long)info.mmu_pages_touched, (unsigned long long)info.mmu_flushes);
		kt_fini(&t);
	}
	return tap_done();
}
