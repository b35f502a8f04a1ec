# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The jail's seccomp filter: an allowlist, with what Docker's default profile refuses refused.

Built with libseccomp's own Python binding (Debian's python3-seccomp, Fedora's
python3-libseccomp), never as a hand-written BPF program: libseccomp knows each architecture's
numbers and the compat ABIs. Every system call libseccomp knows is allowed but those refused
here; one it does not know (newer than the library) fails with ENOSYS, so that a new kernel
interface is closed until the library knows it and the C library falls back as it would on an
older kernel. As in Docker's profile, a refused call that a kept capability legitimately needs
is allowed when the jail keeps that capability (mount with SYS_ADMIN, reboot with SYS_BOOT, ...);
the key management calls are refused to everyone, since keyrings are not namespaced. Refused
calls fail with EPERM; clone3 and openat2, whose flags and mode the filter cannot see, with
ENOSYS, so that the C library falls back to clone and openat. Arguments the kernel reads as int
are compared on their low 32 bits only, as the kernel does. A 32-bit (i386) program gets no
socket: libseccomp can rule on its socket calls only through socketcall, which hides the domain. As systemd's RestrictSUIDSGID,
no file may be made setuid or setgid, so that a jailed root cannot leave a setuid-root program
in a bind for host users.
"""

from __future__ import annotations

import errno
import os

from ansible_collections.droot.core.plugins.module_utils._internal.common import OptionalLibrary

SECCOMP = OptionalLibrary(
    "seccomp", pip_name="seccomp (libseccomp's binding: Debian's python3-seccomp, Fedora's python3-libseccomp)")

# (capability that allows them, or None for no one; system calls)
REFUSED = (
    (None, ("add_key", "keyctl", "request_key", "uselib", "ustat", "sysfs", "_sysctl", "nfsservctl",
            "vm86", "vm86old", "create_module", "get_kernel_syms", "query_module",
            "io_uring_setup", "io_uring_enter", "io_uring_register",
            "memfd_secret")),  # locked memory out of the kernel's direct map: no app here needs it
    ("sys_admin", ("mount", "umount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick",
                   "move_mount", "open_tree", "mount_setattr", "unshare", "setns", "sethostname",
                   "setdomainname", "swapon", "swapoff", "quotactl", "quotactl_fd", "lookup_dcookie",
                   "fanotify_init", "name_to_handle_at", "userfaultfd")),
    ("bpf", ("bpf",)),
    ("perfmon", ("perf_event_open",)),
    ("sys_boot", ("reboot", "kexec_load", "kexec_file_load")),
    ("sys_module", ("init_module", "finit_module", "delete_module")),
    ("sys_time", ("settimeofday", "stime", "clock_settime", "clock_settime64", "clock_adjtime",
                  "clock_adjtime64")),
    ("sys_pacct", ("acct",)),
    ("sys_rawio", ("iopl", "ioperm")),
    ("sys_ptrace", ("process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd")),
    ("sys_nice", ("get_mempolicy", "set_mempolicy", "mbind", "move_pages", "set_mempolicy_home_node")),
    ("syslog", ("syslog",)),
    ("dac_read_search", ("open_by_handle_at",)),
    ("sys_tty_config", ("vhangup",)),
)
# clone's flags that create namespaces (sys_admin allows them): CLONE_NEWNS, NEWCGROUP, NEWUTS,
# NEWIPC, NEWUSER, NEWPID, NEWNET.
CLONE_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
# Calls that may make a setuid or setgid file, and the argument that holds the mode.
MODE_ARGUMENT = {"chmod": 1, "fchmod": 1, "fchmodat": 2, "fchmodat2": 2, "creat": 1, "mknod": 1, "mknodat": 2}
# open and openat create with a mode only with O_CREAT or O_TMPFILE: (flags argument, mode argument)
OPEN_ARGUMENTS = {"open": (1, 2), "openat": (2, 3)}
SET_ID_BITS = (0o4000, 0o2000)  # S_ISUID, S_ISGID
CREATING = (os.O_CREAT, os.O_TMPFILE & ~os.O_DIRECTORY)
AF_VSOCK = 40  # a channel to the hypervisor; Docker's profile refuses these sockets
AF_MAX = 46
# personality(2) values Docker's profile allows: PER_LINUX, PER_LINUX32, UNAME26 with each, and the query.
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
INT_MASK = 0xFFFFFFFF  # an int argument: the kernel reads the low 32 bits of the register
# The 32-bit ABI a 64-bit kernel also runs, so that an i386 program meets the same filter.
_COMPAT_ARCH = {"X86_64": "X86", "AARCH64": "ARM"}


def refused(kept_names):
    """The system calls the filter refuses to a jail that keeps the capabilities ``kept_names``."""
    names = []
    for capability, calls in REFUSED:
        if capability is None or capability not in kept_names:
            names.extend(calls)
    return names


def _arches(seccomp):
    native = next((name for name in _COMPAT_ARCH if getattr(seccomp.Arch, name) & 0xFFFFFFFF
                   == seccomp.system_arch()), None)
    return [seccomp.Arch.NATIVE] + ([getattr(seccomp.Arch, _COMPAT_ARCH[native])] if native else [])


def _known_names(seccomp, arch):
    """Every system call name libseccomp knows on this architecture."""
    names = set()
    for number in range(1024):
        try:
            names.add(seccomp.resolve_syscall(arch, number).decode())
        except ValueError:
            pass  # no call of that number on this architecture
    return names


def build(kept_names):
    """The filter for a jail keeping ``kept_names`` (None: every capability); load() applies it.

    Built before the jail is entered (libseccomp's tables are in memory, nothing is read later);
    no_new_privs is left to its own option, so the filter is loaded while the process still holds
    CAP_SYS_ADMIN. One filter per architecture, merged: on i386, libseccomp would turn a rule on
    socket's arguments into one on socketcall, which cannot check them.
    """
    seccomp = SECCOMP.module
    kept = set(kept_names) if kept_names is not None else {group[0] for group in REFUSED}
    native, *compat = _arches(seccomp)
    syscall_filter = _filter_for(seccomp, native, kept)
    for arch in compat:
        syscall_filter.merge(_filter_for(seccomp, arch, kept))
    return syscall_filter


def _filter_for(seccomp, arch, kept):
    syscall_filter = seccomp.SyscallFilter(seccomp.ERRNO(errno.ENOSYS))
    syscall_filter.set_attr(seccomp.Attr.CTL_NNP, 0)
    if arch != seccomp.Arch.NATIVE:
        syscall_filter.add_arch(arch)
        syscall_filter.remove_arch(seccomp.Arch.NATIVE)
    allow, denied = seccomp.ALLOW, seccomp.ERRNO(errno.EPERM)
    known = _known_names(seccomp, arch)
    refused_here = set(refused(kept)) & known
    conditional = set(MODE_ARGUMENT) | set(OPEN_ARGUMENTS) | {
        "clone", "clone3", "openat2", "socket", "socketcall", "personality"}
    for name in sorted(known - refused_here - conditional):
        syscall_filter.add_rule(allow, name)
    for name in sorted(refused_here):
        syscall_filter.add_rule(denied, name)

    def masked(argument, mask, value):
        return seccomp.Arg(argument, seccomp.MASKED_EQ, mask, value)

    if "sys_admin" in kept:
        for name in ("clone", "clone3", "openat2"):
            syscall_filter.add_rule(allow, name)
    else:
        syscall_filter.add_rule(allow, "clone", masked(0, sum(CLONE_NAMESPACE_FLAGS), 0))
        for flag in CLONE_NAMESPACE_FLAGS:
            syscall_filter.add_rule(denied, "clone", masked(0, flag, flag))
    for name, argument in MODE_ARGUMENT.items():
        if name in known:
            syscall_filter.add_rule(allow, name, masked(argument, sum(SET_ID_BITS), 0))
            for bit in SET_ID_BITS:
                syscall_filter.add_rule(denied, name, masked(argument, bit, bit))
    for name, (flags, mode) in OPEN_ARGUMENTS.items():
        if name in known:
            syscall_filter.add_rule(allow, name, masked(flags, sum(CREATING), 0))
            syscall_filter.add_rule(allow, name, masked(mode, sum(SET_ID_BITS), 0))
            for creating in CREATING:
                for bit in SET_ID_BITS:
                    syscall_filter.add_rule(denied, name, masked(flags, creating, creating), masked(mode, bit, bit))
    # On i386 libseccomp can only rule on socket through socketcall, blind to the domain: there,
    # 32-bit programs get no sockets at all (ENOSYS) rather than a way to vsock.
    if arch == seccomp.Arch.NATIVE:
        for family in range(AF_MAX):
            syscall_filter.add_rule(denied if family == AF_VSOCK else allow, "socket", masked(0, INT_MASK, family))
    for value in PERSONALITIES:  # any other (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, ...) gets ENOSYS
        syscall_filter.add_rule(allow, "personality", masked(0, INT_MASK, value))
    return syscall_filter
