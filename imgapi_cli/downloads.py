"""Resumable, verified downloads of image files (HTTP ``Range``).

Bytes go to ``<dest>.part`` next to a ``<dest>.part.json`` sidecar recording the image, the file
sha1/size and the whole-file ``Content-MD5`` from the first (200) response. A rerun continues with
``Range: bytes=<have>-`` and ``If-Range: <file sha1>``; a server that ignores ``Range`` (200)
restarts from zero. At the end the MD5 (vs ``Content-MD5``), the SHA-1 (vs the manifest) and the
size are verified before ``<dest>.part`` is renamed to ``<dest>``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgapi_cli.client import Client, CliError, Image
from imgapi_cli.transfer import Meter, NullReporter, Reporter, TransferInterrupted, read_pieces, reason

EXTENSIONS = {"gzip": ".gz", "bzip2": ".bz2", "xz": ".xz"}


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
        raise CliError("ResourceNotFound", f'image "{uuid}" has no file')
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
        for data in read_pieces(path, 0, length):
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
    """Download the file of image ``uuid`` to ``dest``; see :mod:`imgapi_cli.downloads`."""
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
    fault = Meter(limit_rate)
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
                raise CliError(
                    "InvalidContent", "the server did not accept the resume range; run again to restart"
                )
            if r.status_code == 200:
                if have:
                    rep.message("the server ignored Range: downloading the whole file again")
                have = resumed_from = 0
                md5, sha1 = hashlib.md5(), hashlib.sha1()
                md5_header = r.headers.get("content-md5", "")
                if not md5_header:
                    raise CliError("ChecksumError", "the server sent no Content-MD5 header")
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
            except CliError as e:
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
        raise CliError("ChecksumError", f"{dest}: " + "; ".join(problems) + " (partial file removed)")
    part.replace(dest)
    sidecar.unlink(missing_ok=True)
    return DownloadResult(dest, total, got_sha1, got_md5, resumed_from, fetched)
