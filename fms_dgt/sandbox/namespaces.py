"""Kernel isolation for the sandbox child: Linux namespaces entered with ``unshare(2)``.

Runs inside the freshly started child interpreter (stdlib only, single-threaded), before
any untrusted code. Each step is tried and reported, never assumed: a kernel, container or
CI runner that forbids a namespace leaves the corresponding layer out of the report, and
the caller decides whether the weaker guarantee is acceptable.

- user namespace: lets an unprivileged user create the others; as root it also drops the
  capabilities the process had over the host (they now only apply inside the namespace).
- network namespace: the child sees only a loopback device that is down. No route exists
  to the host's network or to servers on the host's 127.0.0.1.
- mount namespace: every mount is remounted read-only in the child's private copy of the
  mount table, except the sandbox's own folder (bind-mounted over itself, writable).
- pid namespace: the code runs as pid 1 of a new namespace; when it exits or is killed,
  the kernel kills every process it started, even ones that left its process group.
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24

# per-mount options that a remount inside a user namespace must repeat (they are locked)
_OPTION_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
    "strictatime": MS_STRICTATIME,
}


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _unshare(libc: ctypes.CDLL, flags: int) -> bool:
    return bool(libc.unshare(flags) == 0)


def _write(path: str, text: str) -> bool:
    try:
        with open(path, "w") as fh:
            fh.write(text)
        return True
    except OSError:
        return False


def _mount(libc: ctypes.CDLL, source: str | None, target: str, flags: int) -> bool:
    src = source.encode() if source is not None else None
    return bool(libc.mount(src, target.encode(), None, flags, None) == 0)


def _mount_points() -> list[tuple[str, int]]:
    """(mount point, locked option flags) of every mount, parents first."""
    out: list[tuple[str, int]] = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            parts = line.split()
            point = parts[4].encode().decode("unicode_escape")
            flags = 0
            for option in parts[5].split(","):
                flags |= _OPTION_FLAGS.get(option, 0)
            out.append((point, flags))
    return out


def _read_only_except(libc: ctypes.CDLL, folder: str) -> list[str]:
    """Make every mount read-only except ``folder``; return the mount points that refused."""
    if not _mount(libc, None, "/", MS_REC | MS_PRIVATE):  # nothing we do may reach the host
        return ["/"]
    if not _mount(libc, folder, folder, MS_BIND | MS_REC):
        return [folder]
    refused: list[str] = []
    for point, flags in _mount_points():
        if point == folder:
            continue
        if not _mount(libc, None, point, MS_REMOUNT | MS_BIND | MS_RDONLY | flags):
            refused.append(point)
    return refused


def isolate(folder: str, *, network: bool, read_only: bool, pid: bool) -> tuple[list[str], list[str]]:
    """Enter the namespaces asked for; return (layers in force, problems).

    With ``pid`` the caller must fork afterwards: only children enter the new pid namespace.
    """
    layers: list[str] = []
    problems: list[str] = []
    try:
        libc = _libc()
    except OSError as exc:
        return layers, [f"libc not loadable: {exc}"]
    uid, gid = os.getuid(), os.getgid()
    wanted = (
        (0 if network else CLONE_NEWNET) | (CLONE_NEWNS if read_only else 0) | (CLONE_NEWPID if pid else 0)
    )
    if not wanted:
        return layers, problems
    if _unshare(libc, CLONE_NEWUSER | wanted):
        layers.append("user-namespace")
        # map ourselves to the same ids inside, so file ownership reads naturally
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    elif not _unshare(libc, wanted):
        err = ctypes.get_errno()
        return layers, [f"unshare refused ({os.strerror(err)}): no namespaces"]
    if not network:
        layers.append("network-namespace")
    if pid:
        layers.append("pid-namespace")
    if read_only:
        refused = _read_only_except(libc, folder)
        if not refused:
            layers.append("read-only-mounts")
        else:
            problems.append(f"could not make read-only: {', '.join(refused[:5])}")
    return layers, problems
