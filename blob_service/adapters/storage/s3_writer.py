"""Writing an S3 upload: the part being assembled is spooled to a temporary file (never the blob in
memory) and uploaded as the next multipart part once it reaches the part size; at each checkpoint a
shorter remainder is saved as an immutable tail object (see :mod:`.s3`)."""

from __future__ import annotations

import mmap
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, cast

from blob_service.adapters.storage.base import StagedConflict
from blob_service.adapters.storage.files import pwrite_all
from blob_service.adapters.storage.s3_bucket import S3Bucket
from blob_service.domain.digests import Buffer
from blob_service.domain.model import UploadState


class Spool:
    """The part being assembled, in a temporary file."""

    def __init__(self, spool_dir: Path | None) -> None:
        self.file: IO[bytes] = tempfile.TemporaryFile(dir=spool_dir, prefix="blob-part-")  # noqa: SIM115
        self.size = 0

    def write(self, data: Buffer) -> None:
        pwrite_all(self.file.fileno(), data, self.size)
        self.size += len(data)

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self.file.fileno(), length, offset)

    @contextmanager
    def mapped(self) -> Iterator[bytes]:
        """The spooled bytes as a read-only buffer (page cache, not a heap copy)."""
        if self.size == 0:
            yield b""
            return
        with mmap.mmap(self.file.fileno(), self.size, access=mmap.ACCESS_READ) as m:
            yield cast(bytes, m)

    def reset(self) -> None:
        self.file.truncate(0)
        self.size = 0

    def close(self) -> None:
        self.file.close()


class S3Writer:
    """An open upload: writes go to the spool, checkpoints to S3 (a part, or a tail object)."""

    def __init__(self, storage: S3Bucket, state: UploadState) -> None:
        self._s = storage
        self._uid = state.upload_id
        self._key = storage.blob_key(state.blob_id)
        st = state.staging
        self._mpu: str = st["mpu"]
        self._parts: list[list[Any]] = [list(p) for p in st.get("parts", [])]
        self._tail: str | None = st.get("tail")
        self._base = sum(int(p[2]) for p in self._parts)
        self._spool = Spool(storage.spool_dir)
        self._superseded: list[str] = []
        try:
            if self._tail is not None:
                storage.download_to(storage.upload_key(self._uid, self._tail), self._spool)
            if self._base + self._spool.size != state.offset:
                raise StagedConflict(
                    f"upload {self._uid}: staged {self._base + self._spool.size} bytes, state says "
                    f"{state.offset}"
                )
        except BaseException:
            self._spool.close()
            raise

    @property
    def offset(self) -> int:
        return self._base + self._spool.size

    def room(self) -> int:
        return self._s.part_size - self._spool.size

    def write(self, data: Buffer) -> None:
        self._spool.write(data)

    def read_back(self, offset: int, length: int) -> bytes | None:
        if offset < self._base:
            return None
        return self._spool.read(offset - self._base, length)

    def checkpoint(self) -> dict[str, Any]:
        if self._spool.size >= self._s.part_size:
            number = len(self._parts) + 1
            with self._spool.mapped() as body:
                etag = self._s.upload_part(self._key, self._mpu, number, body)
            self._parts.append([number, etag, self._spool.size])
            self._base += self._spool.size
            self._spool.reset()
            self._replace_tail(None)
        elif self._spool.size > 0:
            name = f"tail-{uuid.uuid4().hex}"
            with self._spool.mapped() as body:
                self._s.put_bytes(self._s.upload_key(self._uid, name), body)
            self._replace_tail(name)
        return self.staging()

    def _replace_tail(self, name: str | None) -> None:
        if self._tail is not None and self._tail != name:
            self._superseded.append(self._tail)
        self._tail = name

    def staging(self) -> dict[str, Any]:
        return {"mpu": self._mpu, "parts": self._parts, "tail": self._tail}

    def saved(self) -> None:
        for name in self._superseded:
            self._s.remove_quietly(self._s.upload_key(self._uid, name))
        self._superseded = []

    def close(self) -> None:
        self._spool.close()
