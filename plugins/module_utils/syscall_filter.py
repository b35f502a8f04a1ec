# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The jail's seccomp filter: the system calls Docker's default profile keeps from a container.

Built with libseccomp's own Python binding (Debian's python3-seccomp, Fedora's
python3-libseccomp), never as a hand-written BPF program: libseccomp knows each architecture's
numbers and the compat ABIs. As in Docker's profile, a call that a kept capability legitimately
needs is allowed when the jail keeps that capability (mount with SYS_ADMIN, reboot with
SYS_BOOT, ...); the key management calls are refused to everyone, since keyrings are not
namespaced. Refused calls fail with EPERM; clone3 fails with ENOSYS, so that the C library falls
back to clone, whose namespace flags the filter can see.
"""

from __future__ import annotations

import errno

from ansible_collections.droot.core.plugins.module_utils.common import OptionalLibrary

SECCOMP = OptionalLibrary(
    "seccomp", pip_name="seccomp (libseccomp's binding: Debian's python3-seccomp, Fedora's python3-libseccomp)")

# (capability that allows them, or None for no one; system calls)
REFUSED = (
    (None, ("add_key", "keyctl", "request_key", "uselib", "ustat", "sysfs", "_sysctl", "nfsservctl",
            "vm86", "vm86old", "create_module", "get_kernel_syms", "query_module",
            "io_uring_setup", "io_uring_enter", "io_uring_register")),
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
# The 32-bit ABI a 64-bit kernel also runs, so that an i386 program meets the same filter.
_COMPAT_ARCH = {"X86_64": "X86", "AARCH64": "ARM"}


def refused(kept_names):
    """The system calls the filter refuses to a jail that keeps the capabilities ``kept_names``."""
    names = []
    for capability, calls in REFUSED:
        if capability is None or capability not in kept_names:
            names.extend(calls)
    return names


def build(kept_names):
    """The filter for a jail keeping ``kept_names`` (None: every capability); load() applies it.

    Built before the jail is entered (libseccomp's tables are in memory, nothing is read later);
    no_new_privs is left to its own option, so the filter is loaded while the process still holds
    CAP_SYS_ADMIN.
    """
    seccomp = SECCOMP.module
    kept = set(kept_names) if kept_names is not None else {group[0] for group in REFUSED}
    syscall_filter = seccomp.SyscallFilter(seccomp.ALLOW)
    syscall_filter.set_attr(seccomp.Attr.CTL_NNP, 0)
    native = next((name for name in _COMPAT_ARCH if getattr(seccomp.Arch, name) == seccomp.Arch.NATIVE
                   or getattr(seccomp.Arch, name) & 0xFFFFFFFF == seccomp.system_arch()), None)
    if native:
        syscall_filter.add_arch(getattr(seccomp.Arch, _COMPAT_ARCH[native]))
    denied = seccomp.ERRNO(errno.EPERM)
    for name in refused(kept):
        if seccomp.resolve_syscall(seccomp.Arch.NATIVE, name) != -1:  # -1: unknown to this libseccomp
            syscall_filter.add_rule(denied, name)
    if "sys_admin" not in kept:
        for flag in CLONE_NAMESPACE_FLAGS:
            syscall_filter.add_rule(denied, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
        syscall_filter.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    return syscall_filter
