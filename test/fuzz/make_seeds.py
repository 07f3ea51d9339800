#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes test/fuzz/seeds/: one hand-written input per interleaving of docs/interrupt-injection.md (the output is committed).
#
# Each seed is text: an SPDX line, a title line, a `#! expect` line the replay checks against the run's counters
# (so a seed that stops reaching its case fails), comments, and the steps (alphabet in harness.c).
# The fuzzer reads comments as skipped bytes, so the seeds double as its starting corpus.
import os
import sys

SEEDS = [
    ("01-kick-user", "Kick while user code runs (IF=1, nothing queued): inject; delivered once "
     "before the next user instruction.",
     "injects=1 kick_reports=1 reports=1 window_requests=0 max_late=0",
     ["Running user code: the kick's signal gives EINTR, the machine injects at once, the next",
      "step is the delivery (no user instruction in between), the kick frame reports."],
     "+ 0 u u k u u"),
    ("02-kick-shim-if0", "Kick while the shim runs with IF=0: window requested; never inject until "
     "it opens.",
     "injects=1 kick_reports=1 window_requests=1 window_exits=1 eintr=2",
     ["The kick lands while the vCPU sits at ring0_iret (ring 0, IF=0): window requested. A",
      "second EINTR (immediate_exit) while still in ring 0 must not drop the request: the iretq",
      "to ring 3 opens the window and the kick is injected there."],
     "+ 0 k u x u u u u"),
    ("03-sti-shadow", "Kick right after STI: if_flag=1 but ready=0 (shadow); window opens one "
     "instruction later.",
     "injects=1 kick_reports=1 window_requests=1 window_exits=1",
     ["The shim does sti (as before a sysret): IF=1 with a shadow, in ring 0. The window opens",
      "after the next instruction (the iretq to ring 3), where the kick is injected."],
     "+ 0 i k u u u"),
    ("04-movss-shadow", "Same after MOV SS / POP SS (shadow; AMD reports both shadow bits).",
     "injects=1 kick_reports=1 window_requests=1 window_exits=1 max_late=0",
     ["mov ss in ring 3: IF=1, CPL 3, but the next instruction is shadowed. The kick waits for",
      "the window one instruction later."],
     "+ 0 u u v k u u u"),
    ("05-sti-hlt", "`sti; hlt`: HLT exit, shadow gone, ready=1: inject; returns to the instruction "
     "after HLT.",
     "hlt=1 injects=1 kick_reports=1 ring0=0",
     ["ringfence's predicate adds ring 3: at the HLT exit ready=1, IF=1, no shadow, but the",
      "guest is in ring 0, so nothing is injected there; the run resumes after the hlt and the",
      "kick is injected once the guest is in ring 3 (here at a deadline-timer EINTR: the open",
      "ring-0 window exited without progress, so the machine stopped asking for it)."],
     "+ 0 i k h u u w w u u"),
    ("06-pf-injected", "Exit during #PF delivery (exception.injected): wait; delivered exactly once "
     "after the handler returns to ring 3 with IF=1. A kernel without fa7a549d reports ready=1 "
     "here: the events check must catch it.",
     "injects=0 events=1 switch_reports=1 reports=1",
     ["Kernel without fa7a549d. The #PF delivery exits halfway (EPT violation); the kick's EINTR",
      "shows ready=1 with exception.injected=1: no injection. The fault goes to the caller; the",
      "kick is reported at the context's next switch."],
     "- 0 u u e f k u u 0"),
    ("07-pf-pending", "Same with `exception.pending` (with `KVM_CAP_EXCEPTION_PAYLOAD`).",
     "injects=0 events=1 switch_reports=1 reports=1",
     ["Kernel without fa7a549d: ready=1 with exception.pending=1 at the kick's EINTR."],
     "- 0 u u p k u u 0"),
    ("08-soft-int-reinjected", "`INT n` / `INT3` / `INTO` being re-injected after a fault during "
     "delivery: invisible in the events, only ready=0 shows it. A machine that trusts only the "
     "events is wrong here.",
     "injects=0 events=2 switch_reports=2 reports=2",
     ["With fa7a549d: int3 and then int n, each with its delivery cut halfway, then a kick.",
      "Nothing in the events; ready=0 is the only sign. Both kicks wait for the next switch."],
     "+ 0 u u e b k u u 0 0 u u e n k u u 0"),
    ("08b-int3-hidden-nofix", "A kernel without fa7a549d hides an INT3 re-injection from both the "
     "events and ready: the vector lands in ring 0 and is still reported once.",
     "injects=1 excused=1 ring0=1 events=1 switch_reports=1 reports=1 kick_reports=0",
     ["Every field KVM shows allows the injection; the INT3 wins at entry and our vector arrives",
      "at the #BP handler's first instruction (ring 0, IF=0): KX_KICK_RING0, the shim resumes,",
      "the #BP goes to the caller, the kick is reported at the next switch."],
     "- 0 u u e b k u u u 0"),
    ("09-nmi-injected", "`nmi.injected`: wait.",
     "injects=1 kick_reports=1 window_exits=1",
     ["Kernel without fa7a549d: the NMI's delivery exits halfway, ready=1 with nmi.injected=1.",
      "The machine waits; the NMI handler returns to ring 3 and the window opens there."],
     "- 0 u u e m u k u u u u"),
    ("10-nmi-and-kick", "NMI and kick in the same exit: both delivered, the kick exactly once.",
     "injects=1 kick_reports=1 reports=1",
     ["An NMI is pending at the kick's EINTR (not a reason to wait): our vector, re-injected",
      "first, is delivered, then the NMI inside the kick entry, then the kick frame reports."],
     "+ 0 u u m k u u u u"),
    ("11-two-interrupts", "Two `KVM_INTERRUPT` calls: must never happen (the second silently "
     "replaces the first).",
     "kicks=2 injects=1 reports=1 kick_reports=1",
     ["A lying kernel (ready=1 whatever is queued) and a second kick whose signal makes the next",
      "KVM_RUN return at once with our vector still queued: only the machine's own in-flight",
      "mark and interrupt.injected stop a second KVM_INTERRUPT."],
     "? 0 u u k k u u u"),
    ("12-no-regs-after-interrupt", "`KVM_INTERRUPT` then `KVM_SET_REGS` with IF=0: forbidden "
     "ordering (Intel: failed entry; AMD: IF=0 delivery).",
     "injects=1 kick_reports=1 ring0=0",
     ["A shootdown and a kick reach the same EINTR: the machine injects, so the loop must not",
      "reload the context (that would move the guest to ring0_iret with IF=0 under the queued",
      "vector); the vector is delivered in ring 3."],
     "+ 0 u u d r k u u u"),
    ("13-cancel-rearm", "`KVM_INTERRUPT` then `KVM_SET_VCPU_EVENTS` with an empty interrupt: the "
     "kick is cancelled; re-arm it.",
     "injects=0 cancels=0 events=1 switch_reports=1 reports=1",
     ["KA_CANCEL is for a KX_EVENT that finds our vector still queued; with a correct predicate",
      "that cannot happen (the queued vector is delivered before any instruction that could",
      "raise an event), only the planted bugs reach it. This seed covers the reachable half: a",
      "kick caught by an event exit while it waits is re-armed and reported at the next switch."],
     "+ 0 u u s k u 0"),
    ("14-eintr-before-entry", "`KVM_INTERRUPT` then `EINTR` / `immediate_exit` before entry: still "
     "queued, ready=0: do not inject again.",
     "injects=1 eintr=2 kick_reports=1 reports=1",
     ["immediate_exit right after the injection: the next KVM_RUN returns EINTR with",
      "interrupt.injected=1; the machine keeps it in flight."],
     "+ 0 u u k x u u u"),
    ("15-spurious-window", "`request_interrupt_window` left at 1 after injecting: one spurious "
     "window exit; inject nothing stale.",
     "injects=1 kick_reports=1 reports=1 window_exits>=1",
     ["A lying kernel reports the window open while the shim runs with IF=0: a spurious window",
      "exit. The machine injects nothing there, stops asking, and injects once the guest is in",
      "ring 3 (deadline-timer EINTR); after the report no window exit injects anything."],
     "? 0 k u u u w w u u 0 u u d u"),
    ("16-window-while-queued", "Window requested while an interrupt is already queued: no window "
     "is armed; IRQ-window exits without guest progress must stay <= 1.",
     "injects=1 window_requests=0 kick_reports=1",
     ["A lying kernel says ready=1 while our vector is queued (EINTR before entry): the machine",
      "must not request a window then."],
     "? 0 u u k x u u u"),
    ("17-never-reenables-if", "Guest never re-enables IF (a shim bug, or a hostile state): no "
     "window ever opens; the kick still has to complete.",
     "injects=0 takebacks=1 reports=1",
     ["The shim loops in ring 0 with IF=0: the deadline timer's EINTRs bring the machine back",
      "and it takes the vCPU back at the deadline."],
     "+ 0 l k w w w w w w"),
    ("17b-user-if0", "Same with ring 3 left at IF=0 by a shim bug.",
     "injects=0 takebacks=1 reports=1",
     ["The iretq to user leaves IF=0: ready=0 forever with fa7a549d; take-back at the deadline."],
     "+ z 0 u u k w w w w w w"),
    ("17c-user-if0-liar", "Same on a kernel whose ready ignores IF: only if_flag stops the "
     "injection.",
     "injects=0 takebacks=1 reports=1",
     ["ready=1 in ring 3 with IF=0: spurious window exits, no injection, take-back."],
     "? z 0 u u k w w w w w w"),
    ("18-signal-outside-run", "Kick signal arrives while the thread is outside `KVM_RUN`: not "
     "lost; the next `KVM_RUN` returns at once.",
     "eintr=2 injects=1 kick_reports=1",
     ["A stray signal's EINTR leaves the thread outside KVM_RUN; the kick's signal arrives",
      "then and makes the next KVM_RUN return at once."],
     "+ 0 u u d k u u u"),
    ("19-signal-consumed", "Kick signal already consumed (`rt_sigtimedwait` returns `EAGAIN`): run "
     "again, inject nothing.",
     "kicks=2 injects=1 reports=1 eintr=3",
     ["Two kicks, one injection, one report covering both; later a signal with no kick behind",
      "it gives an EINTR where nothing is injected."],
     "+ 0 u u k k u u u 0 u u d u u"),
    ("20-no-regs-while-pending", "`KVM_SET_REGS` while an exception is pending: loses the "
     "exception; forbidden unless events show none.",
     "events=1",
     ["A shootdown's EINTR finds exception.pending: the loop must not reload the context (the",
      "fault would vanish); the fault is delivered and returned to the caller."],
     "+ 0 u u p r u u u"),
    ("21-storms", "Kick during a user page fault storm, a syscall storm, a `#UD`/`#GP`/`#DE` "
     "storm: every kick reported once.",
     "kicks=7 reports=7 injects>=2 events>=7",
     ["Rounds of faults, syscalls, #GP from sti/cli in ring 3, a half-delivered fault and int3,",
      "each with a kick landing in the handler, in user code between two faults, or while the",
      "context is off the vCPU; every round ends with the kick reported once."],
     "+ 0 u f k u 0 "
     "0 u s u 0 u u k u u "
     "0 u u i k u 0 "
     "0 u e f k u u 0 "
     "0 u f u 0 u c u k 0 "
     "0 u b u 0 u u f u 0 u u k u u "
     "0 u s k u 0"),
    ("22-switch-race", "Kick racing with the owner switching to another address space or context: "
     "reported to the context that was running, never to the next one.",
     "kicks=3 reports=3 switch_reports=2 kick_reports=1",
     ["Context 0 is kicked as it leaves with a syscall; context 1 runs next, gets a late signal",
      "and an address-space shootdown (no report for either), then a kick of its own; context 2",
      "is kicked while idle. Each report goes to the context that was kicked."],
     "+ 0 u u s k u 1 u u d u r u u k u u K 0 2"),
    ("23-coalesce", "Many kicks before one delivery: coalesced into one report; none after the "
     "report is taken.",
     "kicks=3 injects=1 reports=1 kick_reports=1 switch_reports=0",
     ["Three kicks before the first KVM_RUN: one signal, one injection, one report; the next",
      "switch of the context runs normally."],
     "+ 0 k k k u u u u 0 u u u"),
    ("25-deadline-at-kick-entry", "Not in the doc: the deadline passes in the one step between our "
     "vector's delivery and the kick entry's own exit.",
     "injects=1 reports=1",
     ["The kick waits in ring 0 (IF=0) for most of the deadline; the window opens at t=31, the",
      "vector is delivered at t=32 and the deadline timer's EINTR lands in the kick entry",
      "(ring 0, before its out). The machine answers TAKE_BACK with the user state in the kick",
      "frame on the ring-0 stack; vcpu/inject.c declines there (in the shim) and the kick frame",
      "reports one step later. Kept as a corner for the fuzzer; the expectation pins only what",
      "the invariants require."],
     "+ 0 k u " + "c " * 30 + "u u u u"),
    ("bug-lazy-timer-stuck-after-inject", "A kick injected at the first exit arms no deadline "
     "timer; if the guest does not exit after the delivery, the kick never completes.",
     "reports=1",
     ["Found by the CI-sized fuzz run (21146 executions) once kick.c arms its timer only when it",
      "has to wait. The kick's EINTR can inject at once, so no TIMER_ON; the vector is delivered",
      "and the shim then loops in ring 0 with IF=0 (interleaving 17's shim bug) instead of",
      "exiting: no timer, no window, no exit, so no TAKE_BACK ever comes. Broken: (e), every kick",
      "completes by the deadline. Fails until kick.c is fixed; the mutant checks skip bug-* seeds."],
     "+ 0 u u k u l"),
    ("24-idle-vcpu", "Kick to a vCPU that is idle (no context running): completes at once, nothing "
     "injected.",
     "kicks=2 injects=0 switch_reports=2 reports=2",
     ["Contexts 0 and 1 kicked while nothing runs: each reported at its next switch without",
      "entering the guest."],
     "+ k K 0 1 2 u u"),
]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "seeds")
    os.makedirs(out, exist_ok=True)
    for name, doc, expect, notes, steps in SEEDS:
        with open(os.path.join(out, name), "w") as f:
            f.write("# SPDX-License-Identifier: MIT\n")
            f.write(f"# {name}: {doc}\n")
            f.write(f"#! expect {expect}\n")
            for line in notes:
                f.write(f"# {line}\n")
            f.write(steps + "\n")
    print(f"wrote {len(SEEDS)} seeds to {out}")


if __name__ == "__main__":
    main()
