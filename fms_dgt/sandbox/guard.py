"""An audit hook (PEP 578) installed in the sandbox child before untrusted code runs.

It refuses, from Python code: opening a file for writing outside the sandbox folder,
deleting, renaming or creating files and folders outside it, creating network sockets
(anything but AF_UNIX), name lookups, starting processes (unless allowed), signalling other
processes, and loading native libraries through ctypes.

Why a hook at all when the kernel layers exist: it is the layer that works everywhere
(containers that forbid namespaces, macOS), and it turns a forbidden action into a clear
``PermissionError: sandbox: ...`` in the record's rejection reason instead of an obscure
``EROFS``. What it is NOT: a security boundary. PEP 578 says so itself: code can reach
native code through C extensions it imports (numpy, a compiled wheel) and do anything the
process may do. Only the kernel layers (namespaces, rlimits) hold against such code.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_PROCESS_EVENTS = {
    "os.fork",
    "os.forkpty",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.system",
    "os.startfile",
    "subprocess.Popen",
    "pty.spawn",
}
_SIGNAL_EVENTS = {"os.kill", "os.killpg", "signal.pthread_kill"}
# events whose first argument is a path that gets created, changed or removed
_PATH_EVENTS = {
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.utime": (0,),
    "os.truncate": (0,),
    "os.rename": (0, 1),
    "os.link": (0, 1),
    "os.symlink": (1,),
    "shutil.rmtree": (0,),
    "shutil.copyfile": (1,),
    "shutil.move": (1,),
}
_NETWORK_EVENTS = {
    "socket.connect",
    "socket.bind",
    "socket.sendto",
    "socket.sendmsg",
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyaddr",
    "socket.getnameinfo",
}


class Guard:
    """The policy the hook applies; ``folder`` is the only place writes may go."""

    def __init__(self, folder: str, *, allow_subprocess: bool, allow_network: bool) -> None:
        self.folder = os.path.realpath(folder)
        self.allow_subprocess = allow_subprocess
        self.allow_network = allow_network
        self.pid = os.getpid()

    def inside(self, path: Any) -> bool:
        if isinstance(path, int):  # a file descriptor the process already holds
            return True
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, (str, os.PathLike)):
            return True
        full = os.path.realpath(os.path.join(os.getcwd(), os.fspath(path)))
        return full == self.folder or full.startswith(self.folder + os.sep)

    def refusal(self, event: str, args: tuple[Any, ...]) -> str | None:
        """Why ``event`` is refused, or None."""
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writing and not self.inside(path):
                return f"writing {path!r} outside the sandbox folder"
            return None
        if event in _PATH_EVENTS:
            for i in _PATH_EVENTS[event]:
                if i < len(args) and not self.inside(args[i]):
                    return f"{event} on {args[i]!r} outside the sandbox folder"
            return None
        if event in _PROCESS_EVENTS:
            return None if self.allow_subprocess else f"{event}: starting processes is not allowed"
        if event in _SIGNAL_EVENTS:
            target = args[0] if args else None
            return None if target in (0, self.pid) else f"{event}: signalling other processes is not allowed"
        if event in ("ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle"):
            return f"{event}: loading native code through ctypes is not allowed"
        if self.allow_network:
            return None
        if event == "socket.__new__":
            family = args[1] if len(args) > 1 else None
            return None if family == socket.AF_UNIX else "socket: network access is not allowed"
        if event in _NETWORK_EVENTS:
            return f"{event}: network access is not allowed"
        return None


def install(folder: str, *, allow_subprocess: bool, allow_network: bool) -> Guard:
    """Install the hook for the rest of the process's life (audit hooks cannot be removed)."""
    guard = Guard(folder, allow_subprocess=allow_subprocess, allow_network=allow_network)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        reason = guard.refusal(event, args)
        if reason is not None:
            raise PermissionError(f"sandbox: {reason}")

    sys.addaudithook(hook)
    return guard
