"""Small durable-file helpers for the local backend."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def fsync_dir(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, durable: bool) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new content, never a mix.

    A short write (a nearly full disk) is continued, and a failed one (ENOSPC) leaves no
    temporary file behind."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        try:
            pwrite_all(fd, data, 0)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def pwrite_all(fd: int, data: bytes | bytearray | memoryview, offset: int) -> None:
    view = data if isinstance(data, memoryview) else memoryview(data)  # slices: no new exports
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def pread_exact(fd: int, length: int, offset: int) -> bytes:
    out = os.pread(fd, length, offset)
    if len(out) == length:
        return out
    parts = [out]
    got = len(out)
    while got < length:
        more = os.pread(fd, length - got, offset + got)
        if not more:
            raise OSError(f"short read at {offset + got}: file ends early")
        parts.append(more)
        got += len(more)
    return b"".join(parts)
