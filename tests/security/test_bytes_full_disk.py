"""Issue 10 item 8 (full disk): ENOSPC is a 507 InsufficientStorage, logged with the request id,
and leaves no upload staging behind.

The blob directory lives on a real, small filesystem (a tmpfs mounted for the test) when the test
may mount one (root); elsewhere the local backend's writes fail with ENOSPC at the boundary to the
operating system (``os.pwrite`` / the atomic state write) once "full", so the same HTTP path runs.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import tempfile
import uuid as uuidlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import blob_service.adapters.storage.files
import blob_service.adapters.storage.local
from tests.security.bytes_stack import bytes_stack

SDC = "ba28f844-8cb4-f141-882d-46d6251e6a9f"
MIB = 1024 * 1024


class Disk:
    """``fill(room)`` leaves about ``room`` bytes free; ``free()`` undoes it."""

    def __init__(self, fill: Callable[[int], None], free: Callable[[], None]) -> None:
        self.fill = fill
        self.free = free


@contextmanager
def tmpfs_disk(path: Path) -> Iterator[Disk]:
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(path)], check=True)
    filler = path / "filler"
    try:

        def fill(room: int) -> None:
            st = os.statvfs(path)
            size = st.f_bavail * st.f_frsize - room
            with open(filler, "ab") as f:
                try:
                    f.write(b"\0" * size)
                    f.flush()
                except OSError as e:
                    assert e.errno == errno.ENOSPC

        yield Disk(fill, lambda: filler.unlink(missing_ok=True))
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


@contextmanager
def injected_disk(path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Disk]:
    path.mkdir()
    room: list[int | None] = [None]  # None: not full; else bytes that may still be written
    real_pwrite = os.pwrite

    def pwrite(fd: int, data: Any, offset: int) -> int:
        left = room[0]
        if left is None:
            return real_pwrite(fd, data, offset)
        if left <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real_pwrite(fd, memoryview(data)[:left], offset)
        room[0] = left - n
        return n

    class _Os:
        def __getattr__(self, name: str) -> Any:
            return pwrite if name == "pwrite" else getattr(os, name)

    # The local backend's writes (state files, buffered data) go through these modules' ``os``.
    monkeypatch.setattr(blob_service.adapters.storage.files, "os", _Os())
    monkeypatch.setattr(blob_service.adapters.storage.local, "os", _Os())

    def fill(n: int) -> None:
        room[0] = n

    def free() -> None:
        room[0] = None

    yield Disk(fill, free)


def _can_mount_tmpfs() -> bool:
    """Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN: not in every container)."""
    if os.geteuid() != 0 or shutil.which("mount") is None or shutil.which("umount") is None:
        return False
    with tempfile.TemporaryDirectory() as d:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d], capture_output=True)
        if done.returncode != 0:
            return False
        subprocess.run(["umount", d], check=True)
    return True


def _modes() -> list[str]:
    return ["tmpfs", "injected"] if _can_mount_tmpfs() else ["injected"]


@pytest.fixture(params=_modes())
def disk_and_stack(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Disk, Any, Path]]:
    data = tmp_path / "blobs"
    maker = tmpfs_disk(data) if request.param == "tmpfs" else injected_disk(data, monkeypatch)
    # direct_io off: the injected mode intercepts buffered writes (tmpfs refuses O_DIRECT anyway)
    with maker as disk, bytes_stack(tmp_path, {"data_dir": data, "direct_io": False}) as stack:
        yield disk, stack, data


def _new_image(c: httpx.Client) -> str:
    r = c.post(
        "/images",
        json={"name": "full", "version": "1.0.0", "os": "smartos", "type": "zone-dataset", "owner": SDC},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["uuid"])


@pytest.mark.parametrize("size", [2 * MIB, 100 * 1024], ids=["streamed", "one-call"])
@pytest.mark.parametrize("room", [0, 64 * 1024], ids=["full", "nearly-full"])
def test_full_disk_is_507_logged_with_request_id_and_leaves_nothing(
    disk_and_stack: tuple[Disk, Any, Path], room: int, size: int, caplog: pytest.LogCaptureFixture
) -> None:
    """``size``: a body above PutBlob's limit streams through an upload; a small one is stored
    with one PutBlob call. Both meet the full disk the same way."""
    disk, stack, data = disk_and_stack
    with httpx.Client(base_url=stack.base_url, timeout=30) as c:
        before = _new_image(c)
        assert c.put(f"/images/{before}/file?compression=none", content=b"a" * 1000).status_code == 200

        staged_before = sorted((data / "uploads").iterdir())  # the committed upload's record
        disk.fill(room)
        rid = f"full-disk-{uuidlib.uuid4().hex}"
        uuid = _new_image(c)
        with caplog.at_level(logging.ERROR):
            r = c.put(
                f"/images/{uuid}/file?compression=none",
                content=b"b" * size,
                headers={"x-request-id": rid},
            )
        assert r.status_code == 507, r.text
        assert r.headers["content-type"].startswith("application/json")
        body = r.json()
        assert body["code"] == "InsufficientStorage" and body["message"], body

        causes = [rec for rec in caplog.records if getattr(rec, "request_id", "") == rid]
        assert any("No space left on device" in rec.getMessage() for rec in causes), [
            (rec.name, rec.getMessage(), getattr(rec, "request_id", "")) for rec in caplog.records
        ]
        assert sorted((data / "uploads").iterdir()) == staged_before  # no staging left behind
        assert c.get(f"/images/{uuid}").json()["files"] == []

        disk.free()
        r = c.put(f"/images/{uuid}/file?compression=none", content=b"c" * size)
        assert r.status_code == 200, r.text
        assert c.get(f"/images/{before}/file").content == b"a" * 1000
