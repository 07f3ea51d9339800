/* SPDX-License-Identifier: MIT */
/* ring0: the guest ring-0 shim's ABI, shared by the assembly (shim.S) and the host C code.
 *
 * Contracts:
 * - The shim is a flat blob linked at RING0_TEXT_VA. Every exception vector and the syscall entry
 *   exits to the host with a single `out` whose port names the event; no register is touched, so
 *   the user's GPRs are exactly what KVM reports at the exit (KVM_CAP_SYNC_REGS).
 * - Every IDT gate uses IST1, so an exception frame is always at the top of the vCPU's IST stack,
 *   whatever the CPL; the host reads and writes that frame through its own mapping.
 * - The host resumes user code by writing an iret frame at RING0_FRAME_OFF below the stack top and
 *   pointing RIP at ring0_iret (or ring0_flush_iret, which also reloads CR3 to flush the TLB).
 * - Symbol offsets inside the blob are generated from the linked shim (ring0_syms.h), never copied.
 */
#ifndef RINGFENCE_RING0_H
#define RINGFENCE_RING0_H

/* Guest-virtual layout of the supervisor half (PML4 slot 511, PDPT slot 511). */
#define RING0_KERNEL_VA     0xffffffffc0000000
#define RING0_TEXT_VA       RING0_KERNEL_VA              /* shim code, read + execute */
#define RING0_TEXT_MAX      0x10000
#define RING0_IDT_VA        (RING0_KERNEL_VA + 0x10000)  /* one page, read-only */
#define RING0_VCPU_VA       (RING0_KERNEL_VA + 0x200000) /* per-vCPU areas */
#define RING0_VCPU_STRIDE   0x4000                       /* GDT+TSS page, #DF stack, stack page, guard */
#define RING0_VCPU_TABLES   0x0                          /* GDT at +0, TSS at +RING0_TSS_OFF */
#define RING0_VCPU_DFSTACK  0x1000                       /* #DF's own stack (IST2): a fault while
                                                          * delivering on IST1 still reports */
#define RING0_DF_TOP_OFF    (RING0_VCPU_DFSTACK + 0x1000)
#define RING0_TSS_OFF       0x100
#define RING0_VCPU_STACK    0x2000                       /* stack page; its top is the IST/RSP0 */
#define RING0_STACK_TOP_OFF (RING0_VCPU_STACK + 0x1000)
#define RING0_MAX_VCPUS     256
#define RING0_MAINT_VCPU    (RING0_MAX_VCPUS - 1)        /* the maintenance vCPU's area */
/* Supervisor-only writable alias of all system memory (PML4 slot 510), mapped in the maintenance
 * vCPU's root only: user roots never contain it, so page tables stay unmapped for user vCPUs. */
#define RING0_ALIAS_VA      0xffffff0000000000

/* Selectors. STAR needs user data right below user code (SYSRET layout) even if we never SYSRET. */
#define RING0_SEL_KCODE     0x08
#define RING0_SEL_KDATA     0x10
#define RING0_SEL_UDATA     0x1b   /* GDT index 3, RPL 3 */
#define RING0_SEL_UCODE     0x23   /* GDT index 4, RPL 3 */
#define RING0_SEL_TSS       0x28
#define RING0_GDT_ENTRIES   7      /* null, kcode, kdata, udata, ucode, tss (2 slots) */

/* I/O ports that name an exit. Vector v exits on RING0_PORT_VECTOR + v. */
#define RING0_PORT_SYSCALL  0x10
#define RING0_PORT_BENCH    0x11   /* ring0_bench_out, the benchmark's exit floor */
#define RING0_PORT_KICK0    0x12   /* the kick vector arrived in ring 0 (see ring0_kick) */
#define RING0_PORT_ZAP      0x13   /* ring0_zap finished its list */
#define RING0_PORT_VECTOR   0x40
#define RING0_NUM_VECTORS   32     /* exceptions 0..31, one stub each; the kick has its own entry */
#define RING0_KICK_VECTOR   32
#define RING0_VEC_STRIDE    8      /* bytes between two vector stubs */

/* The iret frame the host writes (and the CPU pushes) sits this far below the stack top;
 * an exception with an error code pushes it 8 bytes lower. */
#define RING0_FRAME_OFF     40

#define RING0_IST           1
#define RING0_IST_DF        2

#ifndef __ASSEMBLER__
/* The embedded image (ring0_blob.c, generated) and checks tying its symbols to the layout above. */
#include <stdint.h>

#include "ring0_syms.h"

extern const unsigned char ring0_blob[];
extern const unsigned long ring0_blob_size;

_Static_assert(RING0_LINK_BASE == RING0_TEXT_VA, "shim.ld links the shim at RING0_TEXT_VA");
_Static_assert(RING0_BLOB_SIZE <= RING0_TEXT_MAX, "shim larger than its reserved text area");
_Static_assert(RING0_OFF_vec_1 - RING0_OFF_vec_0 == RING0_VEC_STRIDE, "vector stubs evenly spaced");
_Static_assert(RING0_OFF_vec_31 - RING0_OFF_vec_0 == 31 * RING0_VEC_STRIDE, "vector stubs evenly spaced");

#define RING0_VA(off) ((uint64_t)RING0_TEXT_VA + (off))

/* tables.c: the descriptor tables, written into pages the host then maps supervisor-only. */
void ring0_write_idt(void *page);
void ring0_write_gdt_tss(void *page, uint64_t page_va, uint64_t stack_top_va, uint64_t df_top_va);
#endif

#endif
