#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# The control plane end to end from Python, with nothing but protoc's generated code for
# ringfence.proto: `ringfence serve --socket` in its own process (under its filter), a memory written
# through the memfd it passes, a syscall and a fault, a kick from a second connection while the
# first is blocked in switch, the switch channel from its layout in the .proto alone, stats, shutdown.
# TAP output.
#
#   test_e2e.py RINGFENCE PATH/TO/ringfence_pb2.py
import array
import ctypes
import mmap
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[2])))
import ringfence_pb2 as pb  # noqa: E402

GUEST_VA = 0x400000
GUEST_MEM = 2 << 20
MARKER = 0x1000
# mov $39,%eax; syscall; mov %eax,0x0 (a write fault at 0); ud2; movl $1,0x401000; jmp .
CODE = bytes([0xb8, 0x27, 0, 0, 0, 0x0f, 0x05, 0x89, 0x04, 0x25, 0, 0, 0, 0, 0x0f, 0x0b,
              0xc7, 0x04, 0x25, 0x00, 0x10, 0x40, 0x00, 0x01, 0, 0, 0, 0xeb, 0xfe])
SPIN, SPIN_LOOP = 0x10, 0x1b

count = 0
failed = 0


def ok(cond, name):
    global count, failed
    count += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (count, name), flush=True)
    if not cond:
        failed += 1
    return cond


def skip_all(why):
    if os.environ.get("RINGFENCE_REQUIRE_KVM") == "1":
        print("Bail out! KVM is required here (RINGFENCE_REQUIRE_KVM=1) but: " + why)
        sys.exit(1)
    print("1..0 # SKIP " + why)
    sys.exit(0)


def request(name, **fields):
    """A request with one operation; fields set on it (Empty operations have none)."""
    req = pb.Request()
    getattr(req, name).SetInParent()
    msg = getattr(req, name)
    for k, v in fields.items():
        if hasattr(v, "SerializeToString"):
            getattr(msg, k).CopyFrom(v)   # a message field cannot be assigned
        else:
            setattr(msg, k, v)
    return req


class Conn:
    """One connection: 4-byte little-endian length, then the message; a memfd may ride along."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.next_id = 1

    def _read(self, n, fds):
        buf = b""
        while len(buf) < n:
            data, anc, _, _ = self.s.recvmsg(n - len(buf), socket.CMSG_SPACE(4 * array.array("i").itemsize))
            if not data:
                raise EOFError("the server closed the connection")
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(cdata[:len(cdata) - len(cdata) % a.itemsize])
                    fds.extend(a)
            buf += data
        return buf

    def call(self, req):
        req.id = self.next_id
        self.next_id += 1
        body = req.SerializeToString()
        self.s.sendall(struct.pack("<I", len(body)) + body)
        fds = []
        (n,) = struct.unpack("<I", self._read(4, fds))
        resp = pb.Response.FromString(self._read(n, fds))
        assert resp.id == req.id, "response id %d for request %d" % (resp.id, req.id)
        return resp, fds

    def op(self, name, **fields):
        return self.call(request(name, **fields))

    def close(self):
        self.s.close()


class Channel:
    """The switch channel as ringfence.proto lays it out: turn word at 0 (1 client, 2 server,
    3 closed; bit 31: that side sleeps), length at 4, hand-over stamp at 8, message at 64. Python has
    no atomic exchange, so the turn is handed over with a plain aligned store (atomic on x86) followed
    by an unconditional FUTEX_WAKE; and this side never sets bit 31, it waits in short timed
    FUTEX_WAITs instead, since the server only wakes a side that said it sleeps."""

    FUTEX_WAIT, FUTEX_WAKE, SYS_futex = 0, 1, 202

    def __init__(self, fd, size):
        self.m = mmap.mmap(fd, size)
        self.turn = ctypes.c_uint32.from_buffer(self.m, 0)
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.addr = ctypes.addressof(self.turn)
        self.next_id = 1 << 32   # apart from the socket's ids

    def call(self, req):
        req.id = self.next_id
        self.next_id += 1
        body = req.SerializeToString()
        self.m[64:64 + len(body)] = body
        struct.pack_into("<I", self.m, 4, len(body))
        self.turn.value = 2
        self.libc.syscall(self.SYS_futex, ctypes.c_void_p(self.addr), self.FUTEX_WAKE, 1 << 30, None, None, 0)
        wait = struct.pack("<qq", 0, 1000000)   # 1 ms
        end = time.monotonic() + 30
        while (self.turn.value & 0x7fffffff) != 1 and time.monotonic() < end:
            v = self.turn.value
            if v & 0x7fffffff == 3:
                raise EOFError("the server closed the channel")
            self.libc.syscall(self.SYS_futex, ctypes.c_void_p(self.addr), self.FUTEX_WAIT, ctypes.c_uint32(v),
                              ctypes.c_char_p(wait), None, 0)
        (n,) = struct.unpack_from("<I", self.m, 4)
        resp = pb.Response.FromString(bytes(self.m[64:64 + n]))
        assert resp.id == req.id, "response id %d for request %d" % (resp.id, req.id)
        return resp

    def op(self, name, **fields):
        return self.call(request(name, **fields))

    def close(self):
        del self.turn
        self.m.close()


def connect(path, server, tries=3000):
    """Tried again (at most `tries` times, 10 ms apart) while the socket does not exist or does not
    listen yet; the connect's own answer decides, and a dead server ends the wait."""
    for _ in range(tries - 1):
        try:
            return Conn(path)
        except (FileNotFoundError, ConnectionRefusedError):
            if server.poll() is not None:
                raise
            time.sleep(0.01)
    return Conn(path)


def die_with_parent():
    """In the server, before exec: a test that dies takes its server with it (a server left holding
    the test's stdout would keep meson waiting until its timeout)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, 9)   # PR_SET_PDEATHSIG, SIGKILL


def main():
    if len(sys.argv) != 3:
        print("Bail out! usage: test_e2e.py RINGFENCE ringfence_pb2.py")
        sys.exit(1)
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as e:
        skip_all("no KVM: cannot open /dev/kvm: " + e.strerror)
    # /dev/shm first: in the test VM /tmp is 9p, where no socket can be bound.
    tmp = tempfile.mkdtemp(prefix="rf-proto-py-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    path = os.path.join(tmp, "sock")
    server = subprocess.Popen([sys.argv[1], "serve", "--socket", path], preexec_fn=die_with_parent)
    try:
        run(path, server)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % count)
    sys.exit(1 if failed else 0)


def run(path, server):
    c1 = connect(path, server)
    c2 = connect(path, server)
    r, _ = c1.op("hello", client_version=1)
    h = r.hello
    ok(r.WhichOneof("result") == "hello" and h.protocol_version == 1, "hello: protocol_version 1")
    ok(h.max_message_size == 16 << 20, "hello: max_message_size 16 MiB")
    ok(h.mmu != pb.MMU_UNKNOWN and h.syscall_mode != pb.SYSCALL_UNKNOWN and h.kick_policy != pb.KICK_UNKNOWN,
       "hello: mmu %s, syscall_mode %s, kick_policy %s" % (pb.Mmu.Name(h.mmu), pb.SyscallMode.Name(h.syscall_mode),
                                                          pb.KickPolicy.Name(h.kick_policy)))
    ok("memory-fd-passing" in h.capabilities, "hello: memory-fd-passing")

    r, fds = c1.op("memory_create", size=GUEST_MEM)
    mem = r.handle.handle
    ok(r.WhichOneof("result") == "handle" and r.handle.fd_attached and len(fds) == 1,
       "memory_create: a handle and the memfd")
    host = mmap.mmap(fds[0], GUEST_MEM)
    os.close(fds[0])
    host[0:len(CODE)] = CODE   # through the mapping: nothing copied over the socket
    r, _ = c1.op("memory_read", memory=mem, offset=0, length=len(CODE))
    ok(r.data == CODE, "memory_read sees the code written through the mapping")
    r, _ = c1.op("memory_write", memory=mem, offset=0x2000, data=b"from python")
    ok(r.WhichOneof("result") == "done" and host[0x2000:0x200b] == b"from python", "memory_write shows in the mapping")

    r, _ = c1.op("as_create")
    space = r.handle.handle
    r, _ = c1.op("as_map", space=space, va=GUEST_VA, length=GUEST_MEM, memory=mem, offset=0,
                 prot=pb.PROT_READ | pb.PROT_WRITE | pb.PROT_EXEC)
    ok(not r.HasField("error"), "as_map")
    r, _ = c1.op("context_create")
    ctx = r.handle.handle
    regs = pb.Regs(rip=GUEST_VA, rflags=0x202, r12=0x1234)
    r, _ = c1.op("set_regs", context=ctx, regs=regs)
    ok(r.WhichOneof("result") == "done", "context_create, set_regs")

    r, _ = c1.op("switch_to", context=ctx, space=space)
    ev = r.event
    ok(ev.type == pb.EVENT_SYSCALL and ev.regs.rax == 39 and ev.rip == GUEST_VA + 5 and ev.regs.rip == GUEST_VA + 7
       and ev.regs.r12 == 0x1234, "switch: a syscall, rax 39, rip at and after it")
    r, _ = c1.op("switch_to", context=ctx, space=space)
    ev = r.event
    ok(ev.type == pb.EVENT_PAGE_FAULT and ev.fault_addr == 0 and ev.access & 2 and not ev.present,
       "resume: a write fault at 0, not present")

    # A guest spinning forever, kicked from the second connection while the first is in switch.
    host[MARKER] = 0
    regs = ev.regs
    regs.rip = GUEST_VA + SPIN
    c1.op("set_regs", context=ctx, regs=regs)
    result = {}
    t = threading.Thread(target=lambda: result.update(r=c1.op("switch_to", context=ctx, space=space)[0]))
    t.start()
    end = time.monotonic() + 30
    while host[MARKER] != 1 and time.monotonic() < end:
        pass   # the guest's own write says it is running
    ok(host[MARKER] == 1, "the guest spins while connection 1 is in switch")
    r, _ = c2.op("kick", context=ctx)
    ok(r.WhichOneof("result") == "done", "kick from connection 2")
    t.join(30)
    ev = result["r"].event if "r" in result else None
    ok(ev is not None and ev.type == pb.EVENT_INTERRUPTED and ev.regs.rip == GUEST_VA + SPIN_LOOP,
       "connection 1's switch: EVENT_INTERRUPTED in the spin loop")

    # The switch channel: the same messages through the page the server shares.
    ok("switch-channel" in h.capabilities, "hello: switch-channel")
    r, fds = c1.op("channel_open")
    ok(r.WhichOneof("result") == "channel" and len(fds) == 1 and r.channel.size == 64 << 10,
       "channel_open: its memfd, 64 KiB")
    ch = Channel(fds[0], r.channel.size)
    os.close(fds[0])
    regs.rip = GUEST_VA
    r = ch.op("set_regs", context=ctx, regs=regs)
    ok(r.WhichOneof("result") == "done", "channel: set_regs back to the syscall")
    r = ch.op("switch_to", context=ctx, space=space)
    ev = r.event
    ok(r.WhichOneof("result") == "event" and ev.type == pb.EVENT_SYSCALL and ev.regs.rax == 39,
       "channel: switch to a syscall, rax 39")
    r = ch.op("channel_open")
    ok(r.error.code == pb.BAD_REQUEST, "channel: channel_open there is BAD_REQUEST (it goes by the socket)")
    ch.close()

    r, _ = c2.op("stats")
    st = r.stats
    ok(st.channel_requests == 3, "stats: 3 requests by the channel (%d)" % st.channel_requests)
    ok(st.vcpus_created >= 1 and any(v.kicks_requested > 0 for v in st.vcpus) and st.connections == 2,
       "stats: vCPUs, a kick requested, two connections")
    r, _ = c2.op("context_destroy", handle=ctx)
    ok(r.error.code == pb.NOT_FOUND, "another connection's context cannot be destroyed: NOT_FOUND")

    for name, handle in (("context_destroy", ctx), ("as_destroy", space), ("memory_destroy", mem)):
        r, _ = c1.op(name, handle=handle)
        ok(r.WhichOneof("result") == "done", name)
    host.close()
    r, _ = c1.op("shutdown")
    ok(r.WhichOneof("result") == "done", "shutdown")
    r, _ = c2.op("hello", client_version=1)
    ok(r.error.code == pb.SHUT_DOWN, "after shutdown: SHUT_DOWN")
    c1.close()
    c2.close()
    try:
        status = server.wait(30)
    except subprocess.TimeoutExpired:
        status = None
    ok(status == 0, "the server exits 0 (%s)" % status)


main()
