"""Image files to stdout and from stdin (``download -o -``, ``upload U -`` / ``create -f -``).

A pipe cannot be rewound: these transfers are not resumable, and an interrupted one says so (exit 3,
"run the whole command again"; for a resumable transfer use a file). Standard input redirected from
a regular file (``< disk.zfs``) *is* a file: the caller uploads it as one (resumable), see
:func:`stdin_file`.

Downloads to stdout verify the file as the bytes go (MD5 against ``Content-MD5``, SHA-1 and size
against the manifest); a mismatch is reported after the fact (the bytes were already written) with
a non-zero exit, so a pipeline like ``imgapi download U -o - | zfs receive`` can check ``PIPESTATUS``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import httpx

from imgapi_cli.client import Client, CliError
from imgapi_cli.downloads import DownloadResult, image_with_file
from imgapi_cli.transfer import PIECE, Meter, NullReporter, Reporter, TransferInterrupted, reason
from imgapi_cli.uploads import UploadResult

STDIO = "-"
DOWNLOAD_INSTEAD = "download with -o FILE, which resumes"
UPLOAD_INSTEAD = "upload a file, which resumes"


def _pipe_cut(what: str, done: int, why: str, instead: str) -> TransferInterrupted:
    """A transfer through a pipe was cut: it cannot resume, so say what can."""
    return TransferInterrupted(
        f"{what} interrupted after {done} bytes ({why}); a pipe cannot be resumed: "
        f"run the whole command again (or {instead})"
    )


def stdin_file() -> Path | None:
    """A path that reopens standard input when it is a regular file (resumable), else None."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return Path(f"/proc/self/fd/{sys.stdin.fileno()}").resolve()
    return None


def download_to_stream(
    client: Client,
    uuid: str,
    out: BinaryIO,
    *,
    reporter: Reporter | None = None,
    limit_rate: int | None = None,
) -> DownloadResult:
    """Stream the file of image ``uuid`` to ``out`` (e.g. stdout), verified as it goes."""
    rep = reporter or NullReporter()
    _image, want_sha1, want_size = image_with_file(client, uuid)
    md5, sha1 = hashlib.md5(), hashlib.sha1()
    meter = Meter(limit_rate)
    done = 0
    with client.stream("GET", f"/images/{uuid}/file", params=client.scope(), headers={"Accept": "*/*"}) as r:
        md5_header = r.headers.get("content-md5", "")
        rep.start(f"download {uuid}", want_size)
        try:
            for data in r.iter_bytes(PIECE):
                meter.take(len(data))
                try:
                    out.write(data)
                except BrokenPipeError:
                    raise CliError(
                        "BrokenPipe", f"the reader of stdout went away after {done} bytes"
                    ) from None
                md5.update(data)
                sha1.update(data)
                done += len(data)
                rep.update(done)
            out.flush()
        except httpx.TransportError as e:
            raise _pipe_cut("download to stdout", done, str(e or type(e).__name__), DOWNLOAD_INSTEAD) from e
        except CliError as e:
            if isinstance(e, TransferInterrupted) or e.code == "ConnectionError":
                raise _pipe_cut("download to stdout", done, reason(e), DOWNLOAD_INSTEAD) from e
            raise
        finally:
            rep.finish()
    got_md5 = base64.b64encode(md5.digest()).decode()
    problems = []
    if done != want_size:
        problems.append(f"size {done} != manifest size {want_size}")
    if md5_header and got_md5 != md5_header:
        problems.append(f"MD5 {got_md5} != Content-MD5 {md5_header}")
    if sha1.hexdigest() != want_sha1:
        problems.append(f"sha1 {sha1.hexdigest()} != manifest sha1 {want_sha1}")
    if problems:
        raise CliError("ChecksumError", "the bytes written to stdout are wrong: " + "; ".join(problems))
    return DownloadResult(Path(STDIO), done, sha1.hexdigest(), got_md5, 0, done)


def upload_from_stream(
    client: Client,
    uuid: str,
    source: BinaryIO,
    *,
    compression: str,
    sha1: str | None = None,
    dataset_guid: str | None = None,
    storage: str | None = None,
    reporter: Reporter | None = None,
    limit_rate: int | None = None,
) -> UploadResult:
    """AddImageFile from a pipe: one streamed ``PUT``; the server computes size and SHA-1."""
    rep = reporter or NullReporter()
    meter = Meter(limit_rate)
    digest = hashlib.sha1()
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        while True:
            data = source.read(PIECE)
            if not data:
                return
            meter.take(len(data))
            digest.update(data)
            sent += len(data)
            rep.update(sent)
            yield data

    params = {"compression": compression, "dataset_guid": dataset_guid, "storage": storage, "sha1": sha1}
    rep.start("upload from stdin", None)
    try:
        r = client.request(
            "PUT",
            f"/images/{uuid}/file",
            params=client.scope({k: v for k, v in params.items() if v}),
            headers={"Content-Type": "application/octet-stream"},
            content=body(),
        )
    except CliError as e:
        if isinstance(e, TransferInterrupted) or e.code == "ConnectionError":
            raise _pipe_cut("upload from stdin", sent, reason(e), UPLOAD_INSTEAD) from e
        raise
    finally:
        rep.finish()
    image = r.json()
    if sent == 0:
        raise CliError("EmptyFile", "standard input was empty (IMGAPI refuses empty image files)")
    files = image.get("files") or []
    got = files[0] if files else {}
    if got.get("sha1") != digest.hexdigest() or got.get("size") != sent:
        raise CliError(
            "ChecksumError",
            f"the image's file is sha1={got.get('sha1')} size={got.get('size')}, "
            f"sent sha1={digest.hexdigest()} size={sent}",
        )
    return UploadResult(image, "put", sent, digest.hexdigest(), compression, 0, sent)
