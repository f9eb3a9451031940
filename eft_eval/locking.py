"""One writer per output folder: an OS file lock held for the life of a command.

Two commands writing into one folder at once mix their results (a run folder whose `run.json`
says seed 0 while `samples.jsonl` holds seed 1's prompts) or pay for every judgment twice.
`lock_folder` takes an exclusive `fcntl.flock` on `FOLDER/.eft-eval.lock`. The kernel drops the
lock when the holding process ends, however it ends (SIGKILL included), so there is never a
stale lock to clean up: the file itself may stay, it only records who held it last.

Use it around everything a command writes into a folder:

    with lock_folder(run_dir, "eft-eval run"):
        ...

A second command into a locked folder stops at once with one line naming the holder (pid, host,
command, start time).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shlex
import socket
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import LOCK_FILE
from eft_eval.redact import redacted_argv


class FolderLockedError(EFTEvalError):
    """Another live process holds the folder's lock."""


class FolderNotWritableError(EFTEvalError):
    """The lock file cannot be created or opened for writing: a read-only folder or mount."""


def _holder_text(lock_path: Path) -> str:
    try:
        holder: dict[str, Any] = json.loads(lock_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "another process (holder unknown)"
    return (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
        f"started {holder.get('started', '?')}: {holder.get('command', '?')}"
    )


def _command_line(what: str) -> str:
    """This process's command line as the user typed it, without credentials."""
    if not sys.argv or not sys.argv[0]:
        return what
    program = Path(sys.argv[0]).name
    if program in ("cli.py", "__main__.py"):  # python -m eft_eval.cli
        program = "eft-eval"
    return shlex.join(redacted_argv([program, *sys.argv[1:]]))


NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)
"""`OSError.errno` values meaning "this process may not write here": a read-only mount, or permissions."""


def _open_lock_file(lock_path: Path) -> int:
    """The lock file opened for writing, never through a symbolic link and only if it is a regular
    file with one name: anyone who can create files in a shared folder could otherwise point it at
    a file of the next user's, which taking the lock would truncate."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK
    try:
        fd = os.open(lock_path, flags, 0o666)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise _not_a_lock(lock_path, "is a symbolic link") from None
        if error.errno == errno.EISDIR:
            raise _not_a_lock(lock_path, "is a folder") from None
        if error.errno in NOT_WRITABLE:
            raise FolderNotWritableError(f"{lock_path}: cannot open the lock file ({error.strerror})") from None
        raise EFTEvalError(f"{lock_path}: cannot open the lock file ({error.strerror})") from None
    info = os.fstat(fd)
    why = "is not a regular file" if not stat.S_ISREG(info.st_mode) else (
        "has other names (hard links)" if info.st_nlink != 1 else None)
    if why:
        os.close(fd)
        raise _not_a_lock(lock_path, why)
    return fd


def _not_a_lock(lock_path: Path, why: str) -> EFTEvalError:
    return EFTEvalError(f"{lock_path}: {why}, not a lock file eft-eval wrote; refusing to write through it: "
                        "remove it (or choose another output folder)")


@contextmanager
def lock_folder(folder: Path, what: str) -> Iterator[Path]:
    """Hold an exclusive lock on `folder` (created if missing) for the `with` block.

    `what` names the command in the error a second holder gets ("eft-eval run"). Yields the lock
    file's path. Raises `FolderLockedError` (one line naming the holder) if the folder is locked,
    `FolderNotWritableError` if the lock file cannot be written (a read-only folder).
    Re-entrant within one process is *not* supported: lock a folder once, at the command's top.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise EFTEvalError(f"{folder}: is a file, not a folder") from None
    except OSError as error:
        raise EFTEvalError(f"{folder}: cannot create the folder ({error.strerror})") from None
    lock_path = folder / LOCK_FILE
    fd = _open_lock_file(lock_path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderLockedError(
                f"{folder}: in use by {_holder_text(lock_path)}; wait for it to finish, "
                f"or choose another folder for this {what}"
            ) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": _command_line(what),
            "what": what,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        # Written in place (not renamed over): the lock lives on this inode.
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode("utf-8"), 0)
        yield lock_path
    finally:
        os.close(fd)  # releases the flock


__all__ = ["NOT_WRITABLE", "FolderLockedError", "FolderNotWritableError", "lock_folder"]
