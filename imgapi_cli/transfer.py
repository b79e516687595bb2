"""Image file transfers: resumable uploads (tus 1.0 with a plain ``PUT`` fallback) and resumable,
verified downloads (HTTP ``Range``).

Upload
    ``OPTIONS /images/:uuid/file/uploads`` tells whether the server speaks tus (this project's
    gateway does; the original IMGAPI answers 404). With tus the file goes up in checksummed
    ``PATCH`` chunks; the upload URL is kept in a small JSON state file (``<cache>/uploads/<key>.json``,
    keyed by server, image, path, size and mtime) so that a later run of the same command asks the
    server for its offset (``HEAD``) and sends only the rest. Without tus: one streamed
    ``PUT /images/:uuid/file`` (AddImageFile). Both pass ``compression`` and the file's ``sha1``, so
    the server verifies the bytes; the resulting manifest ``files[0]`` is checked again afterwards.

Download
    Bytes go to ``<dest>.part`` next to a ``<dest>.part.json`` sidecar recording the image, the file
    sha1/size and the whole-file ``Content-MD5`` from the first (200) response. A rerun continues
    with ``Range: bytes=<have>-`` and ``If-Range: <file sha1>``; a server that ignores ``Range``
    (200) restarts from zero. At the end the MD5 (vs ``Content-MD5``), the SHA-1 (vs the manifest)
    and the size are verified before ``<dest>.part`` is renamed to ``<dest>``.

``limit_rate`` (bytes/s) throttles either direction.

Test hook: the environment variable ``IMGAPI_CLI_TEST_ABORT_AFTER=<n>`` makes a transfer fail with
:class:`TransferInterrupted` once ``n`` bytes went over the wire in this run (mid-request), which is
what a crash or a dropped connection looks like to the server.
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
from typing import Any, Protocol
from urllib.parse import urljoin

import httpx

from imgapi_cli.client import Client, Image, ImgapiError

TUS_VERSION = "1.0.0"
DEFAULT_CHUNK_SIZE = 8 << 20
PIECE = 256 << 10
RETRIES = 5
ABORT_ENV = "IMGAPI_CLI_TEST_ABORT_AFTER"
STATE_VERSION = 1

#: File name suffixes -> IMGAPI ``compression`` (the node client's AddImageFileFromUrl inference).
SUFFIXES = {".gz": "gzip", ".tgz": "gzip", ".bz2": "bzip2", ".xz": "xz"}
EXTENSIONS = {"gzip": ".gz", "bzip2": ".bz2", "xz": ".xz"}


class Reporter(Protocol):
    """Progress sink (a rich progress bar in the CLI, nothing in library use)."""

    def start(self, description: str, total: int | None, completed: int = 0) -> None: ...
    def update(self, completed: int) -> None: ...
    def message(self, text: str) -> None: ...
    def finish(self) -> None: ...


class NullReporter:
    def start(self, description: str, total: int | None, completed: int = 0) -> None:
        pass

    def update(self, completed: int) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def finish(self) -> None:
        pass


class TransferInterrupted(ImgapiError):
    """The transfer stopped part-way; running the same command again resumes it."""

    def __init__(self, message: str) -> None:
        super().__init__("Interrupted", message)


def reason(e: ImgapiError, limit: int = 120) -> str:
    """A short cause for a one-line message: a connection error without its (long) URL."""
    text = e.message
    if e.code == "ConnectionError" and ": " in text:
        text = text.rsplit(": ", 1)[1]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mark_reported(e: BaseException) -> None:
    """The interruption was already explained to the user (the CLI prints nothing more)."""
    e.reported = True  # type: ignore[attr-defined]


class _Meter:
    """Counts the bytes of this run: the optional rate limit (bytes/s) and the test hook budget."""

    def __init__(self, limit_rate: int | None = None) -> None:
        raw = os.environ.get(ABORT_ENV, "")
        self.budget: int | None = int(raw) if raw.isdigit() else None
        self.rate = limit_rate if limit_rate and limit_rate > 0 else None
        self.moved = 0
        self.t0 = time.monotonic()

    def take(self, n: int) -> None:
        self.moved += n
        if self.budget is not None and self.moved > self.budget:
            raise TransferInterrupted(f"test hook: aborted after {self.budget} bytes ({ABORT_ENV})")
        if self.rate is not None:
            ahead = self.moved / self.rate - (time.monotonic() - self.t0)
            if ahead > 0:
                time.sleep(ahead)


def parse_rate(text: str) -> int:
    """``500K``, ``2M``, ``1G`` or plain bytes per second (binary multiples)."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().removesuffix("b").removesuffix("/s")
    mult = units.get(t[-1:], 1)
    number = t[:-1] if t[-1:] in units else t
    try:
        value = float(number) * mult
    except ValueError:
        raise ImgapiError("Usage", f"invalid rate {text!r} (e.g. 500K, 2M)") from None
    if value <= 0:
        raise ImgapiError("Usage", f"invalid rate {text!r}: must be positive")
    return int(value)


def infer_compression(path: Path) -> str:
    return SUFFIXES.get(path.suffix.lower(), "none")


def cache_dir() -> Path:
    env = os.environ.get("IMGAPI_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "imgapi"


def _read_pieces(path: Path, start: int, end: int) -> Iterator[bytes]:
    with path.open("rb") as f:
        f.seek(start)
        left = end - start
        while left > 0:
            data = f.read(min(PIECE, left))
            if not data:
                raise ImgapiError("FileChanged", f"{path} became shorter while it was read")
            left -= len(data)
            yield data


def file_sha1(path: Path, reporter: Reporter) -> str:
    size = path.stat().st_size
    h = hashlib.sha1()
    done = 0
    reporter.start(f"sha1 {path.name}", size)
    for data in _read_pieces(path, 0, size):
        h.update(data)
        done += len(data)
        reporter.update(done)
    reporter.finish()
    return h.hexdigest()


# --- upload ------------------------------------------------------------------------------------------


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
        raise ImgapiError("ConnectionError", f"OPTIONS {client.url}: {e}") from e
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
    """Upload ``source`` as the file of image ``uuid``; see the module docstring."""
    rep = reporter or NullReporter()
    if not source.is_file():
        raise ImgapiError("FileNotFound", f"{source} is not a file")
    comp = compression or infer_compression(source)
    extra = {k: v for k, v in {"dataset_guid": dataset_guid, "storage": storage}.items() if v}
    state = UploadState.for_file(state_dir or cache_dir(), client, uuid, source, comp, extra)
    if state.size == 0:
        raise ImgapiError("EmptyFile", f"{source} is empty (IMGAPI refuses empty image files)")
    state.load()
    if sha1:
        if state.sha1 and state.sha1 != sha1.lower():
            state.location = ""
        state.sha1 = sha1.lower()
    if not state.sha1:
        state.sha1 = file_sha1(source, rep)
    use_tus = method == "tus" or (method == "auto" and (bool(state.location) or tus_supported(client, uuid)))
    fault = _Meter(limit_rate)
    if use_tus:
        result = _tus_upload(client, state, source, chunk_size, rep, fault)
    else:
        result = _put_upload(client, state, source, rep, fault)
    files = result.image.get("files") or []
    got = files[0] if files else {}
    if got.get("sha1") != state.sha1 or got.get("size") != state.size:
        raise ImgapiError(
            "ChecksumError",
            f"the image's file is sha1={got.get('sha1')} size={got.get('size')}, "
            f"expected sha1={state.sha1} size={state.size}",
        )
    return result


def _upload_params(client: Client, state: UploadState) -> dict[str, str | list[str]]:
    return client.scope({"compression": state.compression, "sha1": state.sha1, **state.extra})


def _put_upload(
    client: Client, state: UploadState, source: Path, rep: Reporter, fault: _Meter
) -> UploadResult:
    """AddImageFile: one streamed ``PUT`` (not resumable)."""

    def body() -> Iterator[bytes]:
        done = 0
        for data in _read_pieces(source, 0, state.size):
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
        raise ImgapiError("InvalidContent", f"HEAD {location}: no Upload-Offset")
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
        raise ImgapiError("InvalidContent", f"tus creation answered {r.status_code} without a Location")
    # Keep it relative to the server URL when possible (the state file then survives a --url alias).
    absolute = urljoin(client.url + "/", location)
    return absolute[len(client.url) :] if absolute.startswith(client.url + "/") else absolute


def _tus_upload(
    client: Client, state: UploadState, source: Path, chunk_size: int, rep: Reporter, fault: _Meter
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
            except ImgapiError as e:
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
                except ImgapiError as lost:
                    if lost.code != "ConnectionError":
                        raise
                    continue  # still unreachable: retry at the same offset (a 409 tells the real one)
                if again is None:
                    state.remove()
                    raise ImgapiError("UploadExpired", "the upload disappeared on the server") from e
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
    fault: _Meter,
) -> tuple[int, int]:
    """One checksummed ``PATCH`` of ``[offset, end)``: (the server's new offset, bytes sent)."""
    chunk = b"".join(_read_pieces(source, offset, end))
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
                raise ImgapiError("UploadExpired", "the upload disappeared on the server")
            return again, 0
        raise ImgapiError("InvalidContent", f"PATCH answered {r.status_code} without Upload-Offset")
    return int(raw), (len(chunk) if r.status_code < 300 else 0)


# --- download ----------------------------------------------------------------------------------------


@dataclass
class DownloadResult:
    path: Path
    size: int
    sha1: str
    md5: str
    resumed_from: int
    fetched: int

    def summary(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "size": self.size,
            "sha1": self.sha1,
            "content_md5": self.md5,
            "resumed_from": self.resumed_from,
            "fetched": self.fetched,
        }


def image_with_file(client: Client, uuid: str) -> tuple[Image, str, int]:
    """Image ``uuid`` and the sha1 and size of its file (ResourceNotFound when it has none)."""
    image = client.get_image(uuid)
    files = image.get("files") or []
    if not files:
        raise ImgapiError("ResourceNotFound", f'image "{uuid}" has no file')
    return image, str(files[0].get("sha1", "")), int(files[0].get("size", 0))


def default_download_name(image: Image) -> str:
    files = image.get("files") or [{}]
    ext = EXTENSIONS.get(str(files[0].get("compression")), "")
    return f"{image.get('uuid')}-file{ext}"


def _hash_prefix(path: Path, length: int, rep: Reporter) -> tuple[Any, Any]:
    md5, sha1 = hashlib.md5(), hashlib.sha1()
    if length:
        rep.start(f"verify {path.name}", length)
        done = 0
        for data in _read_pieces(path, 0, length):
            md5.update(data)
            sha1.update(data)
            done += len(data)
            rep.update(done)
        rep.finish()
    return md5, sha1


def download(
    client: Client,
    uuid: str,
    dest: Path | None = None,
    *,
    resume: bool = True,
    reporter: Reporter | None = None,
    limit_rate: int | None = None,
) -> DownloadResult:
    """Download the file of image ``uuid`` to ``dest``; see the module docstring."""
    rep = reporter or NullReporter()
    image, want_sha1, want_size = image_with_file(client, uuid)
    if dest is None:
        dest = Path(default_download_name(image))
    elif dest.is_dir():
        dest = dest / default_download_name(image)
    part = dest.with_name(dest.name + ".part")
    sidecar = dest.with_name(dest.name + ".part.json")
    ident = {"url": client.url, "uuid": uuid, "sha1": want_sha1, "size": want_size}
    have, md5_header = 0, ""
    if resume and part.exists():
        try:
            saved = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            saved = None
        if isinstance(saved, dict) and all(saved.get(k) == v for k, v in ident.items()):
            have = part.stat().st_size
            md5_header = str(saved.get("content_md5") or "")
            if have > want_size or not md5_header:
                have, md5_header = 0, ""
    if have == 0:
        part.unlink(missing_ok=True)
    md5, sha1 = _hash_prefix(part, have, rep)
    resumed_from, fetched = have, 0
    fault = _Meter(limit_rate)
    if have:
        rep.message(f"resuming download at byte {have} of {want_size}")
    if have < want_size or not md5_header:
        headers = {"Accept": "*/*"}
        if have:
            headers.update({"Range": f"bytes={have}-", "If-Range": want_sha1})
        with client.stream("GET", f"/images/{uuid}/file", params=client.scope(), headers=headers) as r:
            if r.status_code == 416 or (
                r.status_code == 206 and not r.headers.get("content-range", "").startswith(f"bytes {have}-")
            ):
                # Our partial file does not fit the server's file: start from zero next time.
                part.unlink(missing_ok=True)
                sidecar.unlink(missing_ok=True)
                raise ImgapiError(
                    "InvalidContent", "the server did not accept the resume range; run again to restart"
                )
            if r.status_code == 200:
                if have:
                    rep.message("the server ignored Range: downloading the whole file again")
                have = resumed_from = 0
                md5, sha1 = hashlib.md5(), hashlib.sha1()
                md5_header = r.headers.get("content-md5", "")
                if not md5_header:
                    raise ImgapiError("ChecksumError", "the server sent no Content-MD5 header")
                sidecar.write_text(json.dumps({**ident, "content_md5": md5_header}))
            rep.start(f"download {dest.name}", want_size, have)
            done = have
            try:
                with part.open("ab" if have else "wb") as out:
                    for data in r.iter_bytes(64 << 10):
                        fault.take(len(data))
                        out.write(data)
                        md5.update(data)
                        sha1.update(data)
                        done += len(data)
                        fetched += len(data)
                        rep.update(done)
            except ImgapiError as e:
                if isinstance(e, TransferInterrupted) or e.code == "ConnectionError":
                    raise TransferInterrupted(
                        f"download interrupted after {done} bytes ({reason(e)}); run the same command "
                        "again to resume"
                    ) from e
                raise
            finally:
                rep.finish()
    total = part.stat().st_size if part.exists() else 0
    got_md5 = base64.b64encode(md5.digest()).decode()
    got_sha1 = sha1.hexdigest()
    problems = []
    if total != want_size:
        problems.append(f"size {total} != manifest size {want_size}")
    if got_md5 != md5_header:
        problems.append(f"MD5 {got_md5} != Content-MD5 {md5_header}")
    if got_sha1 != want_sha1:
        problems.append(f"sha1 {got_sha1} != manifest sha1 {want_sha1}")
    if problems:
        part.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)
        raise ImgapiError("ChecksumError", f"{dest}: " + "; ".join(problems) + " (partial file removed)")
    part.replace(dest)
    sidecar.unlink(missing_ok=True)
    return DownloadResult(dest, total, got_sha1, got_md5, resumed_from, fetched)
