"""What the kernel enforces on a sandbox process, applied by the process to itself before
it runs any plugin code. Each layer is tried and reported (`confine` returns the names
of the active ones); a layer the machine does not allow is skipped, never faked.

| layer              | what it stops                                                 |
| ------------------ | ------------------------------------------------------------- |
| `rlimits`          | address space past the bound, files written, core dumps, CPU  |
| `network-namespace`| every network: the process sees only a down loopback          |
| `uid-nobody`       | the worker's files and signals to other processes (as root)   |
| `no-new-privs`     | regaining privileges through setuid binaries                  |
| `landlock`         | opening any file or directory                                 |
| `seccomp`          | new sockets, exec, fork, ptrace, mounts, namespaces, bpf      |

The environment is already empty and no descriptor but the channel is inherited
(`supervisor.py` starts the process that way).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import resource
import struct

NOBODY = 65534  # uid and gid of `nobody` on Debian
ADDRESS_SPACE_HEADROOM = 256 * 1024 * 1024  # bytes over baseline + bound: thread stacks, arenas
MAX_OPEN_FILES = 16  # the channel, the progress page, /proc/self/statm and stdio

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_CLONE_THREAD = 0x00010000
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_DUMPABLE = 4
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2

_libc = ctypes.CDLL(None, use_errno=True)


def confine(*, memory_bytes: int) -> list[str]:
    """Apply every layer the machine allows; the names of those now in force."""
    layers = [_rlimits(memory_bytes)]
    for name, apply in (
        ("network-namespace", _network_namespace),
        ("uid-nobody", _drop_privileges),
        ("no-new-privs", _no_new_privs),
        ("landlock", _landlock),
        ("seccomp", _seccomp),
    ):
        if apply():
            layers.append(name)
    return layers


def set_cpu_budget(seconds: float) -> None:
    """Let the process use `seconds` more CPU from now; past that the kernel sends SIGXCPU,
    which ends it. A backstop behind the worker's wall-clock watchdog."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(used + seconds) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _rlimits(memory_bytes: int) -> str:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (MAX_OPEN_FILES, MAX_OPEN_FILES))
    baseline = _virtual_size()
    limit = baseline + 2 * memory_bytes + ADDRESS_SPACE_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return "rlimits"


def _virtual_size() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _network_namespace() -> bool:
    # as root, a network namespace of its own; otherwise inside a user namespace
    for flags in (_CLONE_NEWNET, _CLONE_NEWUSER | _CLONE_NEWNET):
        if _libc.unshare(flags) == 0:
            return True
    return False


def _drop_privileges() -> bool:
    if os.geteuid() != 0:
        return False
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)
    return True


def _no_new_privs() -> bool:
    _libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    return bool(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)


# -- Landlock: a ruleset that handles every file access right and allows none -------------

_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
# filesystem access rights by ABI version (linux/landlock.h): v1 has 13, v2 adds REFER,
# v3 TRUNCATE, v5 IOCTL_DEV
_FS_RIGHTS = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}


def _landlock() -> bool:
    abi = _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, 0, _LANDLOCK_CREATE_RULESET_VERSION)
    if abi < 1:
        return False
    rights = _FS_RIGHTS[max(v for v in _FS_RIGHTS if v <= abi)]
    attr = struct.pack("=Q", rights)  # struct landlock_ruleset_attr { handled_access_fs }
    buf = ctypes.create_string_buffer(attr)
    ruleset = _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, buf, len(attr), 0)
    if ruleset < 0:
        return False
    try:
        return bool(_libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) == 0)
    finally:
        os.close(ruleset)


# -- seccomp: refuse the system calls plugin code never needs -------------------------------

_AUDIT_ARCH_X86_64 = 0xC000003E
# x86_64 numbers of the calls refused with EPERM (clone3 with ENOSYS: libc then uses clone,
# whose flags the filter can read)
_DENIED = {
    41: "socket",
    42: "connect",
    43: "accept",
    49: "bind",
    50: "listen",
    53: "socketpair",
    57: "fork",
    58: "vfork",
    59: "execve",
    101: "ptrace",
    105: "setuid",
    106: "setgid",
    135: "personality",
    155: "pivot_root",
    161: "chroot",
    165: "mount",
    166: "umount2",
    167: "swapon",
    169: "reboot",
    175: "init_module",
    176: "delete_module",
    246: "kexec_load",
    248: "add_key",
    249: "request_key",
    250: "keyctl",
    272: "unshare",
    288: "accept4",
    298: "perf_event_open",
    303: "name_to_handle_at",
    304: "open_by_handle_at",
    308: "setns",
    310: "process_vm_readv",
    311: "process_vm_writev",
    313: "finit_module",
    320: "kexec_file_load",
    321: "bpf",
    322: "execveat",
    323: "userfaultfd",
    425: "io_uring_setup",
    426: "io_uring_enter",
    427: "io_uring_register",
}
_SYS_CLONE = 56
_SYS_CLONE3 = 435

_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_JSET_K = 0x45
_BPF_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_KILL = 0x80000000  # SECCOMP_RET_KILL_PROCESS
_RET_ERRNO = 0x00050000


def _seccomp_program() -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) instructions of classic BPF over seccomp_data
    (nr at offset 0, arch at 4, args[0] low word at 16)."""
    deny = _RET_ERRNO | errno.EPERM
    prog: list[tuple[int, int, int, int]] = [
        (_BPF_LD_W_ABS, 0, 0, 4),
        (_BPF_JEQ_K, 1, 0, _AUDIT_ARCH_X86_64),
        (_BPF_RET_K, 0, 0, _RET_KILL),
        (_BPF_LD_W_ABS, 0, 0, 0),
    ]
    for nr in _DENIED:
        prog += [(_BPF_JEQ_K, 0, 1, nr), (_BPF_RET_K, 0, 0, deny)]
    prog += [
        (_BPF_JEQ_K, 0, 1, _SYS_CLONE3),
        (_BPF_RET_K, 0, 0, _RET_ERRNO | errno.ENOSYS),
        # clone is allowed for new threads only (CLONE_THREAD set), never a new process
        (_BPF_JEQ_K, 0, 4, _SYS_CLONE),
        (_BPF_LD_W_ABS, 0, 0, 16),
        (_BPF_JSET_K, 1, 0, _CLONE_THREAD),
        (_BPF_RET_K, 0, 0, deny),
        (_BPF_RET_K, 0, 0, _RET_ALLOW),
        (_BPF_RET_K, 0, 0, _RET_ALLOW),
    ]
    return prog


def _seccomp() -> bool:
    if platform.machine() != "x86_64":
        return False
    program = _seccomp_program()
    filters = b"".join(struct.pack("=HBBI", *ins) for ins in program)
    buf = ctypes.create_string_buffer(filters)
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    fprog = struct.pack("=HxxxxxxQ", len(program), ctypes.addressof(buf))
    fbuf = ctypes.create_string_buffer(fprog)
    return bool(_libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, fbuf, 0, 0) == 0)
