# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Linux capabilities: names, the policy on dangerous ones, and applying a kept set.

python-prctl is the binding for the bounding set, capset, keepcaps and no_new_privs. It has no
PR_CAP_AMBIENT, so the ambient set is raised with a direct prctl(2) call.
"""

from __future__ import annotations

from ansible_collections.droot.core.plugins.module_utils._internal import libc
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError, OptionalLibrary

PRCTL = OptionalLibrary("prctl", pip_name="python-prctl")

# capability(7) numbers; names past cap_last_cap of the running kernel are refused.
NAMES = (
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
    "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
    "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
    "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
    "lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
    "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
)

# What root in the jail keeps by default: upstream droot's set without DAC_READ_SEARCH, which
# allows open_by_handle_at ("shocker"). Any other uid keeps nothing unless capabilities says so.
DEFAULT_KEPT = ("chown", "dac_override", "fowner", "setgid", "setuid", "net_bind_service")

# Allowed without allow_dangerous_capabilities: harmless inside the jail's own PID and mount
# namespaces (AUDIT_WRITE adds user messages to the host's audit log, as Docker's default set
# allows). With the host's namespaces, KILL reaches host processes and SYS_CHROOT breaks out of
# a plain chroot, so there they need the flag too.
SAFE = DEFAULT_KEPT + ("fsetid", "kill", "setpcap", "audit_write", "sys_chroot")
UNSAFE_IN_HOST_NAMESPACES = ("kill", "sys_chroot")

PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4


class CapabilityError(DrootError):
    pass


def last_cap(path="/proc/sys/kernel/cap_last_cap"):
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read())
    except (OSError, ValueError):
        return len(NAMES) - 1


def canonical(name):
    """``CAP_NET_RAW``, ``net_raw`` and ``Net_Raw`` all name capability 13: ``net_raw``."""
    text = str(name).strip().lower()
    return text[4:] if text.startswith("cap_") else text


def default_for(uid):
    """The capabilities kept when the task names none: the default set for root, none for a user."""
    return DEFAULT_KEPT if uid == 0 else ()


def parse(names, allowed_dangerous=(), top=None, host_namespaces=False):
    """Capability names to a sorted tuple of numbers; unknown or unallowed names are errors."""
    top = last_cap() if top is None else top
    allowed = {canonical(name) for name in allowed_dangerous}
    unknown_allowed = sorted(allowed - set(NAMES))
    if unknown_allowed:
        raise CapabilityError(
            "unknown capability name(s) %s in allow_dangerous_capabilities" % ", ".join(unknown_allowed),
            step="capabilities")
    numbers = set()
    for name in names:
        cap = canonical(name)
        if cap not in NAMES or NAMES.index(cap) > top:
            raise CapabilityError(
                "unknown capability '%s'; valid names are CAP_CHOWN ... CAP_%s (see capabilities(7))"
                % (name, NAMES[min(top, len(NAMES) - 1)].upper()), step="capabilities")
        safe = cap in SAFE and not (host_namespaces and cap in UNSAFE_IN_HOST_NAMESPACES)
        if not safe and cap not in allowed:
            raise CapabilityError(
                "capability CAP_%s lets the jailed process escape or control the host%s; to keep it "
                "anyway, also list it in allow_dangerous_capabilities"
                % (cap.upper(), " (namespaces=host)" if cap in SAFE else ""), step="capabilities")
        numbers.add(NAMES.index(cap))
    return tuple(sorted(numbers))


def names_of(numbers):
    return ["CAP_" + NAMES[number].upper() for number in sorted(numbers)]


def mask(numbers):
    """The set as the 64-bit mask /proc/PID/status shows (CapEff: 00000000000004c0)."""
    value = 0
    for number in numbers:
        value |= 1 << number
    return "%016x" % value


def drop_bounding_set(kept, top):
    """Remove every capability not in ``kept`` from the bounding set: no way back, even via setuid.

    ``top`` is the host's cap_last_cap, read before the jail was entered: inside it, /proc is
    the image's to shape.
    """
    prctl = PRCTL.module
    for number in range(top + 1):
        if number in kept:
            continue
        if number in prctl.ALL_CAPS:
            prctl.capbset_drop(number)
        else:  # newer than python-prctl's build: drop it all the same
            libc.prctl(PR_CAPBSET_DROP, number, 0, 0, 0)


def keep_across_setuid():
    PRCTL.module.set_keepcaps(True)


def set_process_sets(kept):
    """capset: permitted, effective and inheritable become exactly ``kept``."""
    prctl = PRCTL.module
    keep = [n for n in prctl.ALL_CAPS if n in kept]
    drop = [n for n in prctl.ALL_CAPS if n not in kept]
    flags = [prctl.CAP_EFFECTIVE, prctl.CAP_PERMITTED, prctl.CAP_INHERITABLE]
    prctl.set_caps((keep, flags, True), (drop, flags, False))


def raise_ambient(kept):
    """Raise the ambient set, so a non-root user keeps ``kept`` across execve (capabilities(7))."""
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for number in kept:
        libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, number, 0, 0)


def set_no_new_privs():
    """After this, execve never grants privileges: setuid bits and file capabilities are ignored."""
    PRCTL.module.set_no_new_privs(1)
