/* SPDX-License-Identifier: MIT */
/* Failures explain themselves: a fatal exit puts the vCPU's last exits into the error sentence and
 * writes all of them to the descriptor the caller chose. A shim error is made here by editing the
 * #UD stub's port in the shim's text (white-box), then the stub is put back; a double fault by
 * pointing the TSS's IST1 at an unmapped page, so that delivering any exception faults. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvmtest.h"
#include "platform.h"
#include "ring0.h"
#include "vcpu.h"

GUEST(regs_roundtrip);
GUEST(ud2_only);

/* The port byte of the `outb %al, $port` in vector v's stub, through the host's view of the shim. */
static uint8_t *stub_port(rf_platform *p, unsigned v)
{
	uint64_t off = RING0_OFF_vec_0 + (uint64_t)v * RING0_VEC_STRIDE;
	uint64_t *pt = sysmem_ptr(&p->sys, p->kernel_pt[0]);
	uint8_t *code = (uint8_t *)sysmem_ptr(&p->sys, pt[off >> 12] & PTE_ADDR) + (off & 0xfff);
	return code[0] == 0xe6 ? code + 1 : NULL;
}

int main(void)
{
	int fds[2];
	if (pipe2(fds, O_NONBLOCK) < 0)
		return printf("Bail out! pipe\n"), 1;
	struct kt t;
	struct rf_platform_options o = { .exit_log_fd = fds[1] };
	kt_init(&t, &o);
	struct rf_event ev;
	KT_LOAD(&t, regs_roundtrip);
	for (unsigned i = 0; i < 2; i++)
		kt_switch(&t, &ev);   /* a few ordinary exits before the failure */
	uint8_t *port = stub_port(t.p, RF_VEC_UD);
	if (!ok(port && *port == RING0_PORT_VECTOR + RF_VEC_UD, "found the #UD stub's out"))
		return tap_done();
	*port = 0x7f;   /* a port no exit uses */
	KT_LOAD(&t, ud2_only);
	int rc = rf_switch(t.c, t.as, &ev);
	*port = RING0_PORT_VECTOR + RF_VEC_UD;
	const char *err = rf_last_error();
	ok(rc == -EIO, "a shim error fails the switch (%d)", rc);
	ok(strstr(err, "unknown port") && strstr(err, "last exits:") && strstr(err, "io rip"),
	   "the error names the failure and the last exits: %s", err);
	char buf[16384];
	ssize_t n = read(fds[0], buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = 0;
	unsigned lines = 0;
	for (char *s = buf; (s = strchr(s, '\n')); s++)
		lines++;
	ok(n > 0 && strstr(buf, "vCPU 0: exit on an unknown port") && strstr(buf, "port 0x7f") &&
	   lines >= 4,
	   "the whole record went to the chosen descriptor (%u lines, the failing exit and the syscalls before)", lines);
	printf("# %.*s\n", (int)(strchr(buf, '\n') ? strchr(buf, '\n') - buf : 0), buf);
	KT_LOAD(&t, regs_roundtrip);
	rc = rf_switch(t.c, t.as, &ev);
	ok(rc == 0 && ev.type == RF_EVENT_SYSCALL, "the reset vCPU runs the next switch (%d)", rc);

	/* regression double_fault_reports_its_frame: a broken IST1 made a triple fault, whose state
	 * KVM resets; #DF has a stack of its own and says where the CPU was. */
	struct vcpu *v = atomic_load(&t.p->vcpus[0]);
	uint64_t ist1;
	unsigned char *slot = v->tables + RING0_TSS_OFF + 36;   /* tss64.ist[0] */
	memcpy(&ist1, slot, 8);
	uint64_t guard = ist1 + 0x1000 - 8;                     /* the guard page above the stack */
	memcpy(slot, &guard, 8);
	KT_LOAD(&t, ud2_only);
	rc = rf_switch(t.c, t.as, &ev);
	memcpy(slot, &ist1, 8);
	err = rf_last_error();
	ok(rc == -EIO && strstr(err, "double fault at rip 0x400000 cs 0x23"),
	   "a fault delivering an exception is a double fault reported with its frame: %s", err);
	while (read(fds[0], buf, sizeof buf) > 0)
		;   /* its record went to the pipe too */
	KT_LOAD(&t, regs_roundtrip);
	rc = rf_switch(t.c, t.as, &ev);
	ok(rc == 0 && ev.type == RF_EVENT_SYSCALL, "after the double fault the next switch runs (%d)", rc);
	kt_fini(&t);
	return tap_done();
}
