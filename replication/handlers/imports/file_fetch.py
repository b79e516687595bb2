"""AddImageFile from a source and AddImageFileFromUrl: an image's file fetched by the replication
service and stored as a verified blob (:mod:`imgapi_common.image_uploads`), no job involved.

* From a ``source`` IMGAPI: its manifest of the image says the size and sha1 the file must have;
  the file is ``<source>/images/<uuid>/file``.
* From a URL: one HTTPS GET, no redirects; the caller may give the sha1 the file must have.

Every fetch goes through :mod:`imgapi_common.fetch` (SSRF rules + the operator allow-list).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from urllib.parse import quote

from imgapi.v1 import catalog_pb2, replication_pb2

from imgapi_common.errors import ImgapiError
from imgapi_common.fetch import FetchError, FetchResponse, FetchTooLarge, SafeFetcher
from imgapi_common.image_uploads import KIND_FILE, EndChecks, FileMeta, prepare, store_file_from
from imgapi_common.remote_imgapi import (
    MANIFEST_LIMIT,
    Remote,
    RemoteHttpError,
    fetch_manifest,
    json_or_none,
    source_url,
)
from replication.handlers.imports.work import Scope

#: Longest a from-url fetch may wait for the next bytes (seconds).
URL_READ_TIMEOUT = 300.0


@dataclass(frozen=True)
class Fetched:
    """One GET of an image file: ``refused`` words a non-200 answer, ``failed`` a broken fetch."""

    opening: AbstractAsyncContextManager[FetchResponse]
    refused: Callable[[FetchResponse], Awaitable[ImgapiError]]
    failed: Callable[[BaseException], ImgapiError]

    async def store(
        self,
        scope: Scope,
        uuid: str,
        prep: catalog_pb2.PrepareImageUploadResponse,
        checks: EndChecks,
        meta: FileMeta,
        *,
        too_big_code: str,
    ) -> catalog_pb2.ImageResponse:
        """The answer's body streamed into a verified blob, attached as the image's file."""
        try:
            async with self.opening as r:
                if r.status_code != 200:
                    raise await self.refused(r)
                return await store_file_from(
                    scope,
                    uuid,
                    r.iter_bytes(),
                    max_size=prep.max_size,
                    checks=checks,
                    meta=meta,
                    too_big_code=too_big_code,
                    on_source_error=self.failed,
                )
        except FetchError as e:
            raise self.failed(e) from None


async def add_file_from_source(
    scope: Scope, uuid: str, source: str, storage: str
) -> catalog_pb2.ImageResponse:
    """AddImageFile from a source: pre-checks, remote manifest, remote file streamed into a blob, attach."""
    prep = await prepare(scope, uuid, KIND_FILE, compression="none", storage=storage)
    remote = Remote(scope.services.remote, source)
    manifest = await fetch_manifest(remote, uuid)
    files = manifest.get("files")
    f0 = files[0] if isinstance(files, list) and files and isinstance(files[0], dict) else {}
    size = f0.get("size")
    sha1 = f0.get("sha1")
    dataset_guid = f0.get("dataset_guid")
    checks = EndChecks(
        "Download",
        prep.max_size,
        expected_length=size if isinstance(size, int) and size else None,
        length_label="remote image file size",
        sha1=sha1 if isinstance(sha1, str) else None,
        sha1_label="remote image file sha1",
    )
    meta = FileMeta(
        str(f0.get("compression") or "none"),
        prep.stor,
        dataset_guid if isinstance(dataset_guid, str) else None,
    )
    url = source_url(source, f"images/{quote(uuid)}/file")

    def stream_error(e: BaseException) -> ImgapiError:
        if isinstance(e, FetchTooLarge):
            return ImgapiError("Download", f"image file exceeds the maximum size, {prep.max_size} bytes")
        return ImgapiError(
            "RemoteSourceError", f"Unable to get stream for image file {uuid}. Error from remote: {e}"
        )

    async def refused(r: FetchResponse) -> ImgapiError:
        detail = RemoteHttpError(r.status_code, json_or_none(await r.read(MANIFEST_LIMIT))).detail
        return ImgapiError(
            "RemoteSourceError", f"Unable to get stream for image file {uuid}. Error from remote: {detail}"
        )

    fetched = Fetched(remote.file_fetcher.open(url, headers={"Accept-Version": "*"}), refused, stream_error)
    return await fetched.store(scope, uuid, prep, checks, meta, too_big_code="Download")


async def add_file_from_url(
    scope: Scope, uuid: str, req: replication_pb2.FileUrl, storage: str
) -> catalog_pb2.ImageResponse:
    """AddImageFileFromUrl of a checked ``https:`` URL."""
    prep = await prepare(scope, uuid, KIND_FILE, compression=req.compression, storage=storage)
    fetcher = SafeFetcher(
        scope.services.remote.policy(
            https_only=True, max_size=prep.max_size + 1, read_timeout=URL_READ_TIMEOUT
        )
    )
    checks = EndChecks("Download", prep.max_size, sha1=req.sha1 if req.HasField("sha1") else None)
    meta = FileMeta(req.compression, prep.stor, req.dataset_guid if req.HasField("dataset_guid") else None)

    def stream_error(e: BaseException) -> ImgapiError:
        if isinstance(e, FetchTooLarge):
            return ImgapiError("Upload", f"image file exceeds the maximum size, {prep.max_size} bytes")
        return ImgapiError("Download", f"Error getting image: {e}")

    async def refused(r: FetchResponse) -> ImgapiError:
        return ImgapiError("Download", f"HTTP {r.status_code} error attempting to download image")

    fetched = Fetched(fetcher.open(req.file_url, follow_redirects=False), refused, stream_error)
    return await fetched.store(scope, uuid, prep, checks, meta, too_big_code="Upload")
