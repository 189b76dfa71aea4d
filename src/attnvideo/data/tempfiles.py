"""Temporary files that name their owner, so a run only ever removes abandoned ones.

Every writer of :mod:`attnvideo.data` builds its output under a hidden temporary name
beside the target and renames it into place when complete. The temporary name records
which process made it::

    .<target name>.<pid>@<host>.<12 hex>.tmp
    .v_Run_g01_c01.flow.4182@node07-4026531836.9f1c2a7be044.tmp     (an example)

``<host>`` is the host name (characters other than letters, digits and ``-`` replaced by
``-``) followed by the inode of the process's PID namespace where Linux shows it, so two
containers that share a host name but not their process table never take each other's
processes for their own.

On a file system shared by several machines (a cluster running ``attnvideo-flow
--shard I/N`` on many nodes), a temporary file may belong to a writer that is still at
work on another node. :func:`remove_abandoned` therefore removes a temporary only when
it can prove its owner is gone: the owner ran on this host (same ``<host>``) and its PID
no longer exists. Files of other hosts, of live processes, and temporaries in an older
format that names no owner are left alone.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import uuid
from pathlib import Path

__all__ = ["host_id", "is_abandoned", "remove_abandoned", "temp_owner", "temp_path", "temporaries"]

TEMP_SUFFIX = ".tmp"
_NAME = re.compile(
    r"\.(?P<target>.+)\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]+)\.[0-9a-f]{12}" + re.escape(TEMP_SUFFIX)
)


@functools.cache
def host_id() -> str:
    """This machine's (and PID namespace's) part of a temporary name.

    Returns:
        The host name made safe for file names, then ``-<PID namespace inode>`` on Linux.

    Example:
        >>> bool(re.fullmatch(r"[A-Za-z0-9-]+", host_id()))
        True
    """
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:48] or "host"
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:  # not Linux, or no /proc: the host name alone
        return host
    return f"{host}-{namespace}"


def temp_path(target: str | os.PathLike) -> Path:
    """A fresh temporary name beside ``target``, owned by this process.

    Args:
        target: The file or folder that will be published by renaming the temporary.

    Returns:
        ``<folder>/.<target name>.<pid>@<host>.<12 hex>.tmp``.

    Example:
        >>> tmp = temp_path("/data/flow/v.flow")
        >>> temp_owner(tmp) == (host_id(), os.getpid()), tmp.parent.as_posix()
        (True, '/data/flow')
    """
    target = Path(target)
    name = f".{target.name}.{os.getpid()}@{host_id()}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}"
    return target.with_name(name)


def temp_owner(path: str | os.PathLike) -> tuple[str, int] | None:
    """``(host, pid)`` of the process that made a temporary, or None for another name.

    Example:
        >>> temp_owner(".v.npy.77@node07.0123456789ab.tmp")
        ('node07', 77)
        >>> temp_owner(".v.npy.0123456789ab.tmp") is None  # no owner recorded
        True
    """
    match = _NAME.fullmatch(Path(path).name)
    return None if match is None else (match["host"], int(match["pid"]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def is_abandoned(path: str | os.PathLike) -> bool:
    """Whether a temporary's owner is provably gone: it ran on this host and has exited.

    Example:
        >>> is_abandoned(temp_path("v.flow"))  # this process: alive
        False
        >>> is_abandoned(".v.flow.1@some-other-node.0123456789ab.tmp")  # cannot tell
        False
    """
    owner = temp_owner(path)
    return owner is not None and owner[0] == host_id() and not _alive(owner[1])


def temporaries(folder: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """The temporary files and folders named by :func:`temp_path` in ``folder``, sorted.

    Args:
        folder: Where to look (a missing folder has none).
        recursive: Also look in every subfolder (slow on a tree of frame folders).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = folder.rglob(f".*{TEMP_SUFFIX}") if recursive else folder.glob(f".*{TEMP_SUFFIX}")
    return sorted(p for p in found if temp_owner(p) is not None)


def remove_abandoned(folder: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """Remove the temporaries in ``folder`` whose owner is provably gone.

    Args:
        folder: The output folder to clean.
        recursive: Also clean every subfolder.

    Returns:
        The removed paths, sorted.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> mine = temp_path(root / "a.flow")
        >>> _ = mine.write_bytes(b"in flight")
        >>> foreign = root / ".b.flow.1@other-node.0123456789ab.tmp"
        >>> _ = foreign.write_bytes(b"another node's")
        >>> remove_abandoned(root), mine.exists(), foreign.exists()
        ([], True, True)
    """
    removed = []
    for path in temporaries(folder, recursive=recursive):
        if not is_abandoned(path):
            continue
        try:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:  # removed meanwhile
            continue
        removed.append(path)
    return removed
