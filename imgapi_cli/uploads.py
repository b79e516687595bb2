"""Resumable uploads of image files: tus 1.0, with a plain ``PUT`` fallback.

``OPTIONS /images/:uuid/file/uploads`` tells whether the server speaks tus (this project's gateway
does; the original IMGAPI answers 404). With tus the file goes up in checksummed ``PATCH`` chunks;
the upload URL is kept in a small JSON state file (``<cache>/uploads/<key>.json``, keyed by server,
image, path, size and mtime) so that a later run of the same command asks the server for its offset
(``HEAD``) and sends only the rest. Without tus: one streamed ``PUT /images/:uuid/file``
(AddImageFile). Both pass ``compression`` and the file's ``sha1``, so the server verifies the bytes;
the resulting manifest ``files[0]`` is checked again afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from imgapi_cli.client import Client, CliError, Image
from imgapi_cli.transfer import (
    PIECE,
    Meter,
    NullReporter,
    Reporter,
    TransferInterrupted,
    file_sha1,
    mark_reported,
    read_pieces,
    reason,
)

TUS_VERSION = "1.0.0"
DEFAULT_CHUNK_SIZE = 8 << 20
RETRIES = 5
STATE_VERSION = 1

#: File name suffixes -> IMGAPI ``compression`` (the node client's AddImageFileFromUrl inference).
SUFFIXES = {".gz": "gzip", ".tgz": "gzip", ".bz2": "bzip2", ".xz": "xz"}


def infer_compression(path: Path) -> str:
    return SUFFIXES.get(path.suffix.lower(), "none")


def cache_dir() -> Path:
    env = os.environ.get("IMGAPI_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "imgapi"


@dataclass
class UploadResult:
    image: Image
    method: str  # "tus" or "put"
    size: int
    sha1: str
    compression: str
    resumed_from: int = 0
    sent: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "uuid": self.image.get("uuid"),
            "method": self.method,
            "size": self.size,
            "sha1": self.sha1,
            "compression": self.compression,
            "resumed_from": self.resumed_from,
            "sent": self.sent,
        }


@dataclass
class UploadState:
    """What a rerun needs to continue a tus upload (stored as JSON)."""

    path: Path
    url: str
    uuid: str
    source: str
    size: int
    mtime_ns: int
    compression: str
    sha1: str = ""
    location: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_file(
        cls, state_dir: Path, client: Client, uuid: str, source: Path, compression: str, extra: dict[str, str]
    ) -> UploadState:
        st = source.stat()
        src = str(source.resolve())
        key_src = json.dumps(
            [client.url, client.account, client.channel, uuid, src, st.st_size, st.st_mtime_ns]
        )
        key = hashlib.sha256(key_src.encode()).hexdigest()[:32]
        return cls(
            state_dir / "uploads" / f"{key}.json",
            client.url,
            uuid,
            src,
            st.st_size,
            st.st_mtime_ns,
            compression,
            extra=extra,
        )

    def _identity(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "url": self.url,
            "uuid": self.uuid,
            "source": self.source,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "compression": self.compression,
            "extra": self.extra,
        }

    def load(self) -> None:
        """Adopt a previous run's sha1/location when it describes the same transfer."""
        try:
            saved = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return
        if not isinstance(saved, dict) or any(saved.get(k) != v for k, v in self._identity().items()):
            return
        self.sha1 = str(saved.get("sha1") or "")
        self.location = str(saved.get("location") or "")

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**self._identity(), "sha1": self.sha1, "location": self.location}))
        tmp.replace(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def tus_supported(client: Client, uuid: str) -> bool:
    """``OPTIONS`` on the tus creation route: a tus 1.0 server lists ``1.0.0`` in Tus-Version."""
    try:
        r = client.http.options(f"/images/{uuid}/file/uploads", headers={"Tus-Resumable": TUS_VERSION})
    except httpx.TransportError as e:
        raise CliError("ConnectionError", f"OPTIONS {client.url}: {e}") from e
    versions = [v.strip() for v in r.headers.get("tus-version", "").split(",")]
    return r.status_code < 300 and TUS_VERSION in versions


def upload(
    client: Client,
    uuid: str,
    source: Path,
    *,
    compression: str | None = None,
    sha1: str | None = None,
    dataset_guid: str | None = None,
    storage: str | None = None,
    method: str = "auto",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    state_dir: Path | None = None,
    reporter: Reporter | None = None,
    limit_rate: int | None = None,
) -> UploadResult:
    """Upload ``source`` as the file of image ``uuid``; see :mod:`imgapi_cli.uploads`."""
    rep = reporter or NullReporter()
    if not source.is_file():
        raise CliError("FileNotFound", f"{source} is not a file")
    comp = compression or infer_compression(source)
    extra = {k: v for k, v in {"dataset_guid": dataset_guid, "storage": storage}.items() if v}
    state = UploadState.for_file(state_dir or cache_dir(), client, uuid, source, comp, extra)
    if state.size == 0:
        raise CliError("EmptyFile", f"{source} is empty (IMGAPI refuses empty image files)")
    state.load()
    if sha1:
        if state.sha1 and state.sha1 != sha1.lower():
            state.location = ""
        state.sha1 = sha1.lower()
    if not state.sha1:
        state.sha1 = file_sha1(source, rep)
    use_tus = method == "tus" or (method == "auto" and (bool(state.location) or tus_supported(client, uuid)))
    fault = Meter(limit_rate)
    if use_tus:
        result = _tus_upload(client, state, source, chunk_size, rep, fault)
    else:
        result = _put_upload(client, state, source, rep, fault)
    files = result.image.get("files") or []
    got = files[0] if files else {}
    if got.get("sha1") != state.sha1 or got.get("size") != state.size:
        raise CliError(
            "ChecksumError",
            f"the image's file is sha1={got.get('sha1')} size={got.get('size')}, "
            f"expected sha1={state.sha1} size={state.size}",
        )
    return result


def _upload_params(client: Client, state: UploadState) -> dict[str, str | list[str]]:
    return client.scope({"compression": state.compression, "sha1": state.sha1, **state.extra})


def _put_upload(
    client: Client, state: UploadState, source: Path, rep: Reporter, fault: Meter
) -> UploadResult:
    """AddImageFile: one streamed ``PUT`` (not resumable)."""

    def body() -> Iterator[bytes]:
        done = 0
        for data in read_pieces(source, 0, state.size):
            fault.take(len(data))
            done += len(data)
            rep.update(done)
            yield data

    rep.start(f"upload {source.name}", state.size)
    try:
        r = client.request(
            "PUT",
            f"/images/{state.uuid}/file",
            params=_upload_params(client, state),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(state.size)},
            content=body(),
        )
    finally:
        rep.finish()
    return UploadResult(r.json(), "put", state.size, state.sha1, state.compression, 0, state.size)


def _tus_headers(**extra: str) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, **extra}


def _tus_offset(client: Client, location: str) -> int | None:
    """The server's offset of an existing upload (``HEAD``), None when it is gone."""
    r = client.request("HEAD", location, headers=_tus_headers(), ok=(404, 410))
    if r.status_code in (404, 410):
        return None
    raw = r.headers.get("upload-offset", "")
    if not raw.isdigit():
        raise CliError("InvalidContent", f"HEAD {location}: no Upload-Offset")
    return int(raw)


def _tus_create(client: Client, state: UploadState, source: Path) -> str:
    meta = {"filename": source.name, "compression": state.compression, "sha1": state.sha1}
    encoded = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in meta.items())
    r = client.request(
        "POST",
        f"/images/{state.uuid}/file/uploads",
        params=_upload_params(client, state),
        headers=_tus_headers(**{"Upload-Length": str(state.size), "Upload-Metadata": encoded}),
        content=b"",
    )
    location: str = r.headers.get("location", "")
    if r.status_code != 201 or not location:
        raise CliError("InvalidContent", f"tus creation answered {r.status_code} without a Location")
    # Keep it relative to the server URL when possible (the state file then survives a --url alias).
    absolute = urljoin(client.url + "/", location)
    return absolute[len(client.url) :] if absolute.startswith(client.url + "/") else absolute


def _tus_upload(
    client: Client, state: UploadState, source: Path, chunk_size: int, rep: Reporter, fault: Meter
) -> UploadResult:
    offset: int | None = None
    if state.location:
        offset = _tus_offset(client, state.location)
        if offset is None:
            rep.message("the previous upload expired on the server; starting again")
            state.location = ""
    if not state.location:
        state.location = _tus_create(client, state, source)
        state.save()
        offset = 0
    assert offset is not None
    resumed_from = offset
    if offset:
        rep.message(f"resuming upload at byte {offset} of {state.size}")
    rep.start(f"upload {source.name}", state.size, offset)
    sent = 0
    failures = 0
    try:
        while offset < state.size:
            end = min(offset + chunk_size, state.size)
            try:
                new_offset, moved = _tus_patch(client, state, source, offset, end, rep, fault)
            except CliError as e:
                if isinstance(e, TransferInterrupted):
                    raise
                retryable = e.code == "ConnectionError" or (e.status or 0) >= 500 or e.status == 460
                failures += 1
                if not retryable:
                    state.remove()
                    raise
                if failures > RETRIES:  # the server stays unreachable: the upload can resume later
                    raise TransferInterrupted(reason(e)) from e
                time.sleep(min(0.25 * 2**failures, 5.0))
                try:
                    again = _tus_offset(client, state.location)
                except CliError as lost:
                    if lost.code != "ConnectionError":
                        raise
                    continue  # still unreachable: retry at the same offset (a 409 tells the real one)
                if again is None:
                    state.remove()
                    raise CliError("UploadExpired", "the upload disappeared on the server") from e
                offset = again
                rep.update(offset)
                continue
            sent += moved
            failures = 0
            offset = new_offset
            rep.update(offset)
    except TransferInterrupted as e:
        raise TransferInterrupted(
            f"upload interrupted ({reason(e)}); run the same command again to resume"
        ) from e
    except KeyboardInterrupt as e:
        rep.finish()
        rep.message("interrupted; run the same command again to resume the upload")
        mark_reported(e)
        raise
    finally:
        rep.finish()
    state.remove()
    image = client.get_image(state.uuid)
    return UploadResult(image, "tus", state.size, state.sha1, state.compression, resumed_from, sent)


def _tus_patch(
    client: Client,
    state: UploadState,
    source: Path,
    offset: int,
    end: int,
    rep: Reporter,
    fault: Meter,
) -> tuple[int, int]:
    """One checksummed ``PATCH`` of ``[offset, end)``: (the server's new offset, bytes sent)."""
    chunk = b"".join(read_pieces(source, offset, end))
    checksum = base64.b64encode(hashlib.sha1(chunk).digest()).decode()

    def body() -> Iterator[bytes]:
        for i in range(0, len(chunk), PIECE):
            piece = chunk[i : i + PIECE]
            fault.take(len(piece))
            rep.update(offset + i + len(piece))
            yield piece

    headers = _tus_headers(
        **{
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(len(chunk)),
            "Upload-Checksum": f"sha1 {checksum}",
        }
    )
    r = client.request("PATCH", state.location, headers=headers, content=body(), ok=(409,))
    raw = r.headers.get("upload-offset", "")
    if not raw.isdigit():
        if r.status_code == 409:
            again = _tus_offset(client, state.location)
            if again is None:
                raise CliError("UploadExpired", "the upload disappeared on the server")
            return again, 0
        raise CliError("InvalidContent", f"PATCH answered {r.status_code} without Upload-Offset")
    return int(raw), (len(chunk) if r.status_code < 300 else 0)
