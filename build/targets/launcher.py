"""Run proot (or any program) with two system calls answering ENOSYS, and pass signals on to the
program proot runs (stand-alone script: the first word of every target launcher).

    python launcher.py PROGRAM [ARGS...]

ENOSYS for `statx` and `faccessat2`: proot 5.1 (Debian bookworm's) does not know these two newer
calls, so it passes their paths through untranslated and they look at the *host's* files instead of
the root's. qemu forwards a guest's statx and faccessat2 to the host as they are, so inside a root:
- every `test -r`/`test -x` of bash and dash (glibc's faccessat with AT_EACCESS is faccessat2)
  fails for files only the root has: Debian's `ldd` then reports every library as unreadable, and
  PyInstaller, which asks ldd for each module's libraries, silently bundles none of them
  (an aarch64 onefile without libssl, libz, libexpat... that only runs where those are installed);
- on armhf, glibc's stat is statx (64-bit time): ld.so finds no library and ldconfig deletes links.
Answered ENOSYS, glibc and qemu fall back to fstatat/faccessat, which proot does translate. The
filter is inherited by proot, qemu and everything the guest runs; it changes nothing else.

Signals: proot ignores SIGTERM, SIGINT, SIGHUP and the like (it expects them to reach its tracees
through their process group). A caller that signals the process it started, as the smoke test
does to stop `control` and `run`, would reach nobody; so this script stays proot's parent and
passes each such signal on to proot's own child, the program it runs, as a native run gets it.
Its exit status is the program's (a death by signal is re-raised).

The standard library and psutil: the Python that runs build.py (its venv) runs this file directly.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import signal
import struct
import subprocess
import sys

import psutil

# The calls proot 5.1 does not translate, per host architecture, with the audit arch of its calls.
SYSCALLS = {"x86_64": (0xC000003E, {"statx": 332, "faccessat2": 439}),
            "aarch64": (0xC00000B7, {"statx": 291, "faccessat2": 439})}
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)

BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
OFFSET_NR, OFFSET_ARCH = 0, 4  # in struct seccomp_data


def program(audit_arch: int, numbers: list[int]) -> bytes:
    """A classic BPF program: on this arch, each listed call -> ENOSYS; everything else -> allowed."""
    def ins(code: int, jt: int, jf: int, k: int) -> bytes:
        return struct.pack("HBBI", code, jt, jf, k)
    prog = [ins(BPF_LD_W_ABS, 0, 0, OFFSET_ARCH), ins(BPF_JEQ_K, 0, len(numbers) + 1, audit_arch),
            ins(BPF_LD_W_ABS, 0, 0, OFFSET_NR)]
    prog += [ins(BPF_JEQ_K, len(numbers) - i, 0, nr) for i, nr in enumerate(numbers)]
    prog += [ins(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW), ins(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS)]
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_filter() -> None:
    if platform.machine() not in SYSCALLS:
        raise OSError(errno.ENOSYS, f"no system call numbers for a {platform.machine()} host")
    audit_arch, calls = SYSCALLS[platform.machine()]
    code = program(audit_arch, sorted(calls.values()))
    buffer = ctypes.create_string_buffer(code, len(code))
    fprog = _SockFprog(len(code) // 8, ctypes.addressof(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
            libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp filter: {os.strerror(err)}")


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (none if it has exited)."""
    try:
        return sorted(child.pid for child in psutil.Process(pid).children())
    except psutil.NoSuchProcess:
        return []


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: launcher.py PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    try:
        install_filter()
    except OSError as err:
        print(f"launcher.py: cannot install the seccomp filter proot needs here: {err.strerror}", file=sys.stderr)
        return 1
    try:
        child = subprocess.Popen(argv)
    except OSError as err:
        print(f"launcher.py: cannot run {argv[0]}: {err.strerror}", file=sys.stderr)
        return 1

    def forward(signum: int, _frame: object) -> None:
        for pid in children(child.pid) or [child.pid]:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    for signum in FORWARDED:
        signal.signal(signum, forward)
    code = child.wait()
    if code < 0:  # died by a signal: die the same way, so our caller sees what a native run shows
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # those two have no handler to reset
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
