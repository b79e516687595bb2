"""gateway/routes/tus.py's handlers, header by header, on one real embedded stack (catalog on SQLite, the
local blob directory, the gateway under uvicorn, all in this process).

test_tus.py drives whole uploads with the tuspy client on both shapes; this module asserts the
exact status, headers and messages of each handler and branch, fast enough for scripts/mutation
(one stack for the module, small bodies, no waiting).
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
import pytest

import gateway.routes.tus
from gateway.routes.tus import UploadRef
from tests.gateway.conftest import SDC, Stack, start_stack

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"
DATA = bytes(range(256)) * 4  # 1 KiB
DATA_SHA1 = hashlib.sha1(DATA).hexdigest()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("tus"), mode="dc", replication=False)
    yield s
    s.stop()


@pytest.fixture()
def c(stack: Stack) -> Iterator[httpx.Client]:
    with stack.client(**{"Accept-Version": "*"}) as client:
        yield client


def new_image(c: httpx.Client) -> str:
    body = {"name": "tus", "version": "1", "os": "smartos", "type": "zone-dataset", "owner": SDC}
    r = c.post("/images", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["uuid"])


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def create(c: httpx.Client, uuid: str, length: int, query: str = "compression=none", **headers: str) -> str:
    r = c.post(
        f"/images/{uuid}/file/uploads?{query}" if query else f"/images/{uuid}/file/uploads",
        headers={**TUS, "Upload-Length": str(length), **headers},
    )
    assert r.status_code == 201, r.text
    return r.headers["location"]


def patch(c: httpx.Client, loc: str, offset: int, data: bytes, **headers: str) -> httpx.Response:
    h = {**TUS, "Upload-Offset": str(offset), "Content-Type": OCTETS, **headers}
    return c.patch(loc, content=data, headers=h)


def failure(r: httpx.Response, status: int, code: str, message: str) -> None:
    assert (r.status_code, r.json()) == (status, {"code": code, "message": message}), r.text
    assert r.headers["tus-resumable"] == "1.0.0"


def token_of(loc: str) -> str:
    return loc.split("?")[0].rsplit("/", 1)[1]


def expires_in(r: httpx.Response) -> timedelta:
    return parsedate_to_datetime(r.headers["upload-expires"]) - datetime.now(UTC)


# --- OPTIONS and the protocol version -----------------------------------------------------------


def test_options_lists_the_capabilities(c: httpx.Client) -> None:
    r = c.options(f"/images/{new_image(c)}/file/uploads")
    assert r.status_code == 204 and r.content == b""
    assert {k: v for k, v in r.headers.items() if k.startswith("tus-")} == {
        "tus-resumable": "1.0.0",
        "tus-version": "1.0.0",
        "tus-extension": "creation,expiration,checksum,termination",
        "tus-max-size": str(20 * 1024**3),
        "tus-checksum-algorithm": "sha1,md5,sha256,crc32",
    }


@pytest.mark.parametrize("version", [None, "0.2.2", "1.0"])
def test_other_protocol_versions_are_refused(c: httpx.Client, version: str | None) -> None:
    headers = {"Upload-Length": "10"} | ({"Tus-Resumable": version} if version else {})
    r = c.post(f"/images/{new_image(c)}/file/uploads?compression=none", headers=headers)
    failure(r, 412, "PreconditionFailed", f"unsupported Tus-Resumable {version!r} (supported: 1.0.0)")
    assert r.headers["tus-version"] == "1.0.0"


def test_handler_errors_carry_tus_resumable(c: httpx.Client) -> None:
    r = c.head(f"/images/{new_image(c)}/file/uploads/garbage", headers=TUS)
    assert r.status_code == 404 and r.headers["tus-resumable"] == "1.0.0"


# --- creation -----------------------------------------------------------------------------------


def test_creation_headers_and_upload_id(c: httpx.Client) -> None:
    uuid = new_image(c)
    r = c.post(
        f"/images/{uuid}/file/uploads?compression=gzip&account={SDC}",
        headers={
            **TUS,
            "Upload-Length": "1000",
            "Upload-Metadata": f"sha1 {b64('a' * 40)},dataset_guid {b64('dg')}",
        },
    )
    assert (r.status_code, r.content) == (201, b"")
    loc = r.headers["location"]
    prefix = f"/images/{uuid}/file/uploads/"
    assert loc.startswith(prefix) and loc.endswith(f"?compression=gzip&account={SDC}")
    assert (r.headers["upload-offset"], r.headers["upload-length"]) == ("0", "1000")
    assert "cache-control" not in r.headers
    assert timedelta(hours=23) < expires_in(r) <= timedelta(hours=24)  # TTL_SECONDS, not the default
    ref = UploadRef.decode(token_of(loc), uuid)
    assert (ref.uuid, ref.length, ref.compression, ref.sha1, ref.dataset_guid) == (
        uuid,
        1000,
        "gzip",
        "a" * 40,
        "dg",
    )
    assert ref.storage == "local" and len(ref.upload_id) == 32


def test_parameters_from_metadata_and_query(c: httpx.Client) -> None:
    uuid = new_image(c)
    meta = f"compression {b64('bzip2')}, sha1 {b64('b' * 40)},filename {b64('x.bz2')},empty"
    loc = create(c, uuid, 10, "", **{"Upload-Metadata": meta})
    assert "?" not in loc
    ref = UploadRef.decode(token_of(loc), uuid)
    assert (ref.compression, ref.sha1, ref.dataset_guid) == ("bzip2", "b" * 40, None)
    # the query string wins over the metadata
    loc = create(c, uuid, 10, "compression=xz&sha1=" + "c" * 40, **{"Upload-Metadata": meta})
    ref = UploadRef.decode(token_of(loc), uuid)
    assert (ref.compression, ref.sha1) == ("xz", "c" * 40)


@pytest.mark.parametrize("length", [None, "", "ten", "-1", "1.5"])
def test_creation_needs_an_upload_length(c: httpx.Client, length: str | None) -> None:
    headers = TUS | ({"Upload-Length": length} if length is not None else {})
    r = c.post(f"/images/{new_image(c)}/file/uploads?compression=none", headers=headers)
    failure(r, 400, "BadRequestError", "a valid Upload-Length header is required")


def test_creation_of_an_empty_file_is_refused(c: httpx.Client) -> None:
    r = c.post(f"/images/{new_image(c)}/file/uploads?compression=none", headers={**TUS, "Upload-Length": "0"})
    failure(r, 400, "Download", "image file size is 0 bytes, empty files are not allowed")


def test_bad_metadata_is_refused(c: httpx.Client) -> None:
    r = c.post(
        f"/images/{new_image(c)}/file/uploads?compression=none",
        headers={**TUS, "Upload-Length": "5", "Upload-Metadata": "sha1 !!"},
    )
    failure(r, 400, "BadRequestError", "invalid Upload-Metadata value for 'sha1'")


def test_storage_is_checked_at_creation(c: httpx.Client) -> None:
    uuid = new_image(c)
    r = c.post(
        f"/images/{uuid}/file/uploads?compression=none",
        headers={**TUS, "Upload-Length": "5", "Upload-Metadata": f"storage {b64('nowhere')}"},
    )
    assert r.status_code == 422 and r.headers["tus-resumable"] == "1.0.0"
    assert r.json()["message"].startswith('invalid storage "nowhere" (must be one of ')
    assert r.json()["errors"] == [{"field": "storage", "code": "Invalid"}]
    loc = create(c, uuid, 5, "compression=none&storage=local")
    assert UploadRef.decode(token_of(loc), uuid).storage == "local"


def test_creation_beyond_the_maximum_file_size(c: httpx.Client) -> None:
    n = 20 * 1024**3 + 1
    r = c.post(
        f"/images/{new_image(c)}/file/uploads?compression=none", headers={**TUS, "Upload-Length": str(n)}
    )
    failure(r, 400, "Upload", f"file size, {n}, exceeds the maximum allowed file size, {n - 1}")


def test_the_upload_lives_for_the_tus_ttl(c: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway.routes.tus, "TTL_SECONDS", 3600)  # not the blob service's 24-hour default
    loc = create(c, new_image(c), 10)
    assert timedelta(minutes=59) < expires_in(c.head(loc, headers=TUS)) <= timedelta(hours=1)


# --- HEAD and DELETE ------------------------------------------------------------------------------


def test_head_tells_the_resume_point(c: httpx.Client) -> None:
    uuid = new_image(c)
    loc = create(c, uuid, len(DATA))
    assert patch(c, loc, 0, DATA[:100]).status_code == 204
    r = c.head(loc, headers=TUS)
    assert r.status_code == 200
    assert (r.headers["upload-offset"], r.headers["upload-length"]) == ("100", str(len(DATA)))
    assert (r.headers["cache-control"], r.headers["tus-resumable"]) == ("no-store", "1.0.0")
    assert timedelta(hours=23) < expires_in(r) <= timedelta(hours=24)


def test_unknown_and_foreign_upload_ids(c: httpx.Client) -> None:
    uuid = new_image(c)
    loc = create(c, uuid, 10)
    token = token_of(loc)
    ref = UploadRef.decode(token, uuid)
    unknown = UploadRef(**{**ref.__dict__, "upload_id": "0" * 32}).encode()
    for t in (unknown, "garbage", token.replace(".", ".x", 1)):
        r = c.head(f"/images/{uuid}/file/uploads/{t}", headers=TUS)
        assert r.status_code == 404 and r.headers["tus-resumable"] == "1.0.0"
    r = c.delete(f"/images/{uuid}/file/uploads/{unknown}", headers=TUS)
    failure(r, 404, "ResourceNotFound", f"upload {unknown} not found")
    r = patch(c, f"/images/{uuid}/file/uploads/{unknown}", 0, b"x")
    failure(r, 404, "ResourceNotFound", f"upload {unknown} not found")
    other = new_image(c)
    r = c.delete(f"/images/{other}/file/uploads/{token}", headers=TUS)
    failure(r, 404, "ResourceNotFound", f"upload {token} not found")
    assert c.head(loc, headers=TUS).status_code == 200  # untouched by the refused calls


def test_upload_ids_the_blob_service_refuses_are_not_found(c: httpx.Client) -> None:
    uuid = new_image(c)
    ref = UploadRef.decode(token_of(create(c, uuid, 10)), uuid)
    not_hex = UploadRef(**{**ref.__dict__, "upload_id": "z" * 32}).encode()
    failure(
        c.delete(f"/images/{uuid}/file/uploads/{not_hex}", headers=TUS),
        404,
        "ResourceNotFound",
        f"upload {not_hex} not found",
    )
    # a real upload id with a length that is not a number
    packed = base64.urlsafe_b64encode(
        json.dumps({"uuid": uuid, "length": "10", "compression": "none"}).encode()
    )
    bad = f"{ref.upload_id}.{packed.decode().rstrip('=')}"
    failure(
        c.delete(f"/images/{uuid}/file/uploads/{bad}", headers=TUS),
        404,
        "ResourceNotFound",
        f"upload {bad} not found",
    )


def test_termination(c: httpx.Client) -> None:
    uuid = new_image(c)
    loc = create(c, uuid, 10)
    r = c.delete(loc, headers=TUS)
    assert (r.status_code, r.content, r.headers["tus-resumable"]) == (204, b"", "1.0.0")
    token = token_of(loc)
    failure(c.delete(loc, headers=TUS), 404, "ResourceNotFound", f"upload {token} not found")


# --- PATCH ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/octet-stream"])
def test_patch_needs_the_offset_content_type(c: httpx.Client, ctype: str | None) -> None:
    loc = create(c, new_image(c), 10)
    headers = {**TUS, "Upload-Offset": "0"} | ({"Content-Type": ctype} if ctype else {})
    r = c.patch(loc, content=b"x", headers=headers)
    failure(r, 415, "InvalidContent", "Content-Type must be application/offset+octet-stream")


def test_patch_content_type_parameters_and_case_are_ignored(c: httpx.Client) -> None:
    loc = create(c, new_image(c), 10)
    r = patch(c, loc, 0, b"abc", **{"Content-Type": "Application/Offset+Octet-Stream ; x=1"})
    assert r.status_code == 204 and r.headers["upload-offset"] == "3"


@pytest.mark.parametrize("offset", [None, "", "-1", "x"])
def test_patch_needs_an_upload_offset(c: httpx.Client, offset: str | None) -> None:
    loc = create(c, new_image(c), 10)
    headers = {**TUS, "Content-Type": OCTETS} | ({"Upload-Offset": offset} if offset is not None else {})
    r = c.patch(loc, content=b"x", headers=headers)
    failure(r, 400, "BadRequestError", "a valid Upload-Offset header is required")


def test_patch_at_another_offset_is_a_conflict(c: httpx.Client) -> None:
    loc = create(c, new_image(c), 10)
    assert patch(c, loc, 0, b"abcd").status_code == 204
    for offset in (0, 3, 5):
        r = patch(c, loc, offset, b"x")
        failure(r, 409, "Conflict", f"Upload-Offset {offset} does not match the current offset 4")
        assert r.headers["upload-offset"] == "4"


def test_patch_beyond_upload_length(c: httpx.Client) -> None:
    loc = create(c, new_image(c), 10)
    assert patch(c, loc, 0, b"abcd").status_code == 204
    message = "the body would exceed Upload-Length 10"
    failure(patch(c, loc, 4, b"x" * 7), 400, "BadRequestError", message)  # by its Content-Length
    assert c.head(loc, headers=TUS).headers["upload-offset"] == "4"  # nothing was read

    def chunks(*sizes: int) -> Iterator[bytes]:
        yield from (b"y" * n for n in sizes)

    # no Content-Length (chunked): cut as soon as the body passes what is left (6 bytes)
    r = patch(c, loc, 4, chunks(7))  # type: ignore[arg-type]
    failure(r, 400, "BadRequestError", message)
    assert c.head(loc, headers=TUS).headers["upload-offset"] == "4"
    r = patch(c, loc, 4, chunks(3, 3))  # type: ignore[arg-type]  # exactly the rest
    assert r.status_code == 204 and r.headers["upload-offset"] == "10"


def test_a_declared_body_beyond_upload_length_is_not_read(c: httpx.Client) -> None:
    """Refused on its Content-Length before any byte is read. Read instead, the whole chunks the
    blob client sends (1 MiB) before the cut would be stored."""
    length = 3 << 20
    loc = create(c, new_image(c), length)
    assert patch(c, loc, 0, DATA).status_code == 204
    r = patch(c, loc, len(DATA), bytes(4 << 20))
    failure(r, 400, "BadRequestError", f"the body would exceed Upload-Length {length}")
    assert c.head(loc, headers=TUS).headers["upload-offset"] == str(len(DATA))


def test_a_checksummed_chunked_body_is_cut_before_its_checksum(c: httpx.Client) -> None:
    loc = create(c, new_image(c), 10)
    assert patch(c, loc, 0, b"abcd").status_code == 204
    wrong = base64.b64encode(bytes(20)).decode()
    body = iter([b"x" * 7])  # no Content-Length: 7 bytes where 6 are left
    r = patch(c, loc, 4, body, **{"Upload-Checksum": f"sha1 {wrong}"})  # type: ignore[arg-type]
    failure(r, 400, "BadRequestError", "the body would exceed Upload-Length 10")  # not 460
    assert c.head(loc, headers=TUS).headers["upload-offset"] == "4"


def test_partial_and_final_patch_answers(c: httpx.Client) -> None:
    uuid = new_image(c)
    loc = create(
        c,
        uuid,
        len(DATA),
        f"compression=gzip&sha1={DATA_SHA1}",
        **{"Upload-Metadata": f"dataset_guid {b64('dg-1')}"},
    )
    r = patch(c, loc, 0, DATA[:300])
    assert (r.status_code, r.content) == (204, b"")
    assert r.headers["upload-offset"] == "300" and r.headers["tus-resumable"] == "1.0.0"
    assert "upload-length" not in r.headers and "cache-control" not in r.headers
    assert timedelta(hours=23) < expires_in(r) <= timedelta(hours=24)
    r = patch(c, loc, 300, DATA[300:])
    assert (r.status_code, r.headers["upload-offset"]) == (204, str(len(DATA)))
    assert "upload-expires" not in r.headers and "upload-length" not in r.headers
    img = c.get(f"/images/{uuid}?inclAdminFields=true").json()
    assert img["files"] == [
        {"sha1": DATA_SHA1, "size": len(DATA), "compression": "gzip", "dataset_guid": "dg-1", "stor": "local"}
    ]
    assert c.get(f"/images/{uuid}/file").content == DATA
    assert c.head(loc, headers=TUS).status_code == 404  # the finished upload is gone


def test_the_final_patch_runs_the_end_checks(c: httpx.Client) -> None:
    uuid = new_image(c)
    loc = create(c, uuid, 4, "compression=none&sha1=" + "0" * 40)
    r = patch(c, loc, 0, b"abcd")
    sha1 = hashlib.sha1(b"abcd").hexdigest()
    failure(
        r, 400, "Download", f'"sha1" hash, {"0" * 40}, does not match the uploaded file sha1 hash, {sha1}'
    )
    assert c.get(f"/images/{uuid}").json()["files"] == []


@pytest.mark.parametrize("algo", ["sha1", "md5", "sha256", "crc32"])
def test_checksummed_patch(c: httpx.Client, algo: str) -> None:
    loc = create(c, new_image(c), 10)
    if algo == "crc32":
        good = zlib.crc32(b"abcde").to_bytes(4, "big")
    else:
        good = hashlib.new(algo, b"abcde").digest()
    bad = base64.b64encode(bytes(len(good))).decode()
    r = patch(c, loc, 0, b"abcde", **{"Upload-Checksum": f"{algo} {bad}"})
    failure(r, 460, "ChecksumMismatch", f"{algo} checksum of the request body does not match")
    assert c.head(loc, headers=TUS).headers["upload-offset"] == "0"
    r = patch(c, loc, 0, b"abcde", **{"Upload-Checksum": f"{algo.upper()} {base64.b64encode(good).decode()}"})
    assert r.status_code == 204 and r.headers["upload-offset"] == "5"
    r = patch(c, loc, 5, b"fghij", **{"Upload-Checksum": "whirlpool AAAA"})
    failure(r, 400, "BadRequestError", "unsupported checksum algorithm 'whirlpool'")


def test_tus_error_bodies_are_json(c: httpx.Client) -> None:
    loc = create(c, new_image(c), 10)
    r = c.patch(loc, content=b"x", headers={**TUS, "Upload-Offset": "0"})
    assert r.headers["content-type"].startswith("application/json")
    assert json.loads(r.content)["code"] == "InvalidContent"
